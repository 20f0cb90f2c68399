"""Hosted pages over plain HTTP: Checkout, the portal (and its deep links), invoices."""

from __future__ import annotations

import urllib.parse

import pytest
import requests
import stripe

from flask_lattice.sandbox import StripeSandbox

from .conftest import Catalog, signup


def checkout(
    stripe_client: stripe.StripeClient, catalog: Catalog, **extra: object
) -> stripe.checkout.Session:
    return stripe_client.v1.checkout.sessions.create(
        params={  # type: ignore[arg-type]
            "mode": "subscription",
            "line_items": [{"price": catalog.pro_monthly.id, "quantity": 1}],
            "success_url": "http://app.test/success?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://app.test/pricing",
            **extra,
        }
    )


def test_checkout_page(stripe_client: stripe.StripeClient, catalog: Catalog) -> None:
    session = checkout(
        stripe_client,
        catalog,
        customer_email="ann@example.com",
        subscription_data={"trial_period_days": 7},
    )
    page = requests.get(str(session.url), timeout=5)
    assert page.status_code == 200
    for testid in (
        "line-item",
        "amount-total",
        "email",
        "card-number",
        "pay",
        "cancel",
        "trial-notice",
    ):
        assert f'data-testid="{testid}"' in page.text, testid
    assert "ann@example.com" in page.text and 'href="http://app.test/pricing"' in page.text
    declined = requests.post(
        str(session.url),
        data={"card_number": "4000 0000 0000 0002"},
        allow_redirects=False,
        timeout=5,
    )
    assert declined.status_code == 402 and 'data-testid="error"' in declined.text
    paid = requests.post(
        str(session.url),
        data={"card_number": "4242 4242 4242 4242"},
        allow_redirects=False,
        timeout=5,
    )
    assert paid.status_code == 303
    assert paid.headers["Location"] == f"http://app.test/success?session_id={session.id}"
    again = requests.get(str(session.url), allow_redirects=False, timeout=5)
    assert again.status_code == 303


def test_checkout_asks_for_email(stripe_client: stripe.StripeClient, catalog: Catalog) -> None:
    session = checkout(stripe_client, catalog)
    missing = requests.post(
        str(session.url), data={"card_number": "4242424242424242"}, allow_redirects=False, timeout=5
    )
    assert missing.status_code == 402 and "email" in missing.text
    ok = requests.post(
        str(session.url),
        data={"card_number": "4242424242424242", "email": "new@example.com"},
        allow_redirects=False,
        timeout=5,
    )
    assert ok.status_code == 303
    assert stripe_client.v1.customers.list().data[0].email == "new@example.com"


def portal(stripe_client: stripe.StripeClient, customer: str, **extra: object) -> str:
    session = stripe_client.v1.billing_portal.sessions.create(
        params={"customer": customer, "return_url": "http://app.test/account", **extra}  # type: ignore[typeddict-item]
    )
    return str(session.url)


def post(url: str, action: str, **data: str) -> requests.Response:
    return requests.post(f"{url}/{action}", data=data, allow_redirects=False, timeout=5)


def test_portal_home_cancel_renew_switch(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(stripe_client, sb, catalog.basic_monthly)
    url = portal(stripe_client, str(sub.customer))
    home = requests.get(url, timeout=5).text
    for testid in (
        "current-plan",
        "subscription-status",
        "period-end",
        "invoice-row",
        "invoice-link",
        "update-payment-method",
        "cancel-subscription",
        "update-plan",
        "return",
        "current-card",
    ):
        assert f'data-testid="{testid}"' in home, testid
    assert "Basic" in home and "active" in home
    done = post(url, "cancel", subscription=sub.id)
    assert done.status_code == 303
    assert stripe_client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end
    home = requests.get(url, timeout=5).text
    assert 'data-testid="cancels-on"' in home and 'data-testid="renew-subscription"' in home
    post(url, "renew", subscription=sub.id)
    assert not stripe_client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end
    choose = requests.get(url, params={"step": "subscription_update"}, timeout=5).text
    assert f'data-price-id="{catalog.pro_yearly.id}"' in choose
    assert 'data-lookup-key="pro_monthly"' in choose
    post(url, "switch", subscription=sub.id, price=catalog.pro_monthly.id)
    switched = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert switched["items"].data[0].price.id == catalog.pro_monthly.id
    invoice_page = requests.get(
        str(stripe_client.v1.invoices.retrieve(str(switched.latest_invoice)).hosted_invoice_url),
        timeout=5,
    )
    assert invoice_page.status_code == 200 and 'data-testid="invoice-status"' in invoice_page.text


def test_portal_payment_method_update_pays_open_invoice(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(stripe_client, sb, catalog.pro_monthly, card="4000000000000341", trial_days=3)
    sb.advance(days=3, seconds=3605)
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    url = portal(
        stripe_client,
        str(sub.customer),
        flow_data={
            "type": "payment_method_update",
            "after_completion": {
                "type": "redirect",
                "redirect": {"return_url": "http://app.test/x"},
            },
        },
    )
    page = requests.get(url, timeout=5).text
    assert 'data-testid="save-payment-method"' in page
    bad = post(url, "payment_method", card_number="4000000000000002")
    assert bad.status_code == 402 and 'data-testid="error"' in bad.text
    ok = post(url, "payment_method", card_number="4242424242424242")
    assert ok.status_code == 303 and ok.headers["Location"] == "http://app.test/x"
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "active"


@pytest.mark.parametrize("mode", ["at_period_end", "immediately"])
def test_portal_cancel_flow(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog, mode: str
) -> None:
    _, sub = signup(stripe_client, sb, catalog.pro_monthly)
    config = stripe_client.v1.billing_portal.configurations.create(
        params={
            "features": {"subscription_cancel": {"enabled": True, "mode": mode}}  # type: ignore[typeddict-item]
        }
    )
    url = portal(
        stripe_client,
        str(sub.customer),
        configuration=config.id,
        flow_data={"type": "subscription_cancel", "subscription_cancel": {"subscription": sub.id}},
    )
    assert 'data-testid="confirm-cancel"' in requests.get(url, timeout=5).text
    done = post(url, "cancel", subscription=sub.id)
    assert done.status_code == 303 and "step=home" in done.headers["Location"]
    after = stripe_client.v1.subscriptions.retrieve(sub.id)
    if mode == "immediately":
        assert after.status == "canceled"
    else:
        assert after.cancel_at_period_end and after.status == "active"


def test_portal_update_confirm_deep_link(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(stripe_client, sb, catalog.basic_monthly)
    url = portal(
        stripe_client,
        str(sub.customer),
        flow_data={
            "type": "subscription_update_confirm",
            "subscription_update_confirm": {
                "subscription": sub.id,
                "items": [{"id": sub["items"].data[0].id, "price": catalog.pro_monthly.id}],
            },
            "after_completion": {
                "type": "redirect",
                "redirect": {"return_url": "http://app.test/ok"},
            },
        },
    )
    assert 'data-testid="confirm-update"' in requests.get(url, timeout=5).text
    done = post(url, "confirm_update")
    assert done.headers["Location"] == "http://app.test/ok"
    assert stripe_client.v1.subscriptions.retrieve(sub.id)["items"].data[0].price.id == (
        catalog.pro_monthly.id
    )
    update_url = portal(
        stripe_client,
        str(sub.customer),
        flow_data={"type": "subscription_update", "subscription_update": {"subscription": sub.id}},
    )
    assert 'data-testid="switch-plan"' in requests.get(update_url, timeout=5).text


def test_hosted_invoice_pay(stripe_client: stripe.StripeClient, catalog: Catalog) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "i@example.com"})
    sub = stripe_client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": catalog.pro_monthly.id}]}
    )
    invoice = stripe_client.v1.invoices.retrieve(str(sub.latest_invoice))
    page = requests.get(str(invoice.hosted_invoice_url), timeout=5)
    assert 'data-testid="pay-invoice"' in page.text
    paid = requests.post(
        f"{invoice.hosted_invoice_url}/pay", data={"card_number": "4242424242424242"}, timeout=5
    )
    assert paid.status_code == 200 and ">paid<" in paid.text
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert requests.get(str(invoice.invoice_pdf), timeout=5).text.startswith("Invoice ")


def test_clock_controls_over_http(sb: StripeSandbox) -> None:
    before = requests.get(f"{sb.url}/_sandbox/clock", timeout=5).json()["now"]
    after = requests.post(
        f"{sb.url}/_sandbox/clock/advance", data={"seconds": "3600"}, timeout=5
    ).json()["now"]
    assert after - before >= 3600
    target = after + 86_400
    assert (
        requests.post(
            f"{sb.url}/_sandbox/clock/advance", data={"to": str(target)}, timeout=5
        ).json()["now"]
        >= target
    )
    assert (
        requests.post(
            f"{sb.url}/_sandbox/clock/advance", data={"seconds": "x"}, timeout=5
        ).status_code
        == 400
    )
    assert urllib.parse.urlparse(sb.url).hostname == "127.0.0.1"
