"""Each resource's endpoints, through the stripe SDK."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from flask_lattice.sandbox import StripeSandbox

from .conftest import Catalog, signup


def test_customers_crud_list_and_events(
    stripe_client: stripe.StripeClient, sb: StripeSandbox
) -> None:
    customer = stripe_client.v1.customers.create(
        params={"email": "ada@example.com", "name": "Ada", "metadata": {"user_id": "7"}}
    )
    assert customer.metadata["user_id"] == "7" and customer.test_clock is None
    assert stripe_client.v1.customers.retrieve(customer.id).email == "ada@example.com"
    updated = stripe_client.v1.customers.update(
        customer.id, params={"name": "Ada L.", "metadata": {"user_id": "", "plan": "pro"}}
    )
    assert updated.name == "Ada L." and updated.metadata.to_dict() == {"plan": "pro"}
    event = stripe_client.v1.events.list(params={"type": "customer.updated"}).data[0]
    assert event.data.previous_attributes["name"] == "Ada"  # type: ignore[index]
    assert event.api_version == "2026-10-28.endive" and event.livemode is False
    assert event.request.id and event.request.id.startswith("req_")  # type: ignore[union-attr]
    assert (
        stripe_client.v1.customers.list(params={"email": "ada@example.com"}).data[0].id
        == customer.id
    )
    deleted = stripe_client.v1.customers.delete(customer.id)
    assert deleted.deleted is True
    assert stripe_client.v1.customers.retrieve(customer.id).deleted is True
    assert [e["type"] for e in sb.events][-1] == "customer.deleted"


def test_products_and_prices(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    assert catalog.pro_yearly.recurring.interval == "year"  # type: ignore[union-attr]
    found = stripe_client.v1.prices.list(params={"lookup_keys": ["pro_monthly", "basic_monthly"]})
    assert {p.lookup_key for p in found.data} == {"pro_monthly", "basic_monthly"}
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.prices.create(
            params={
                "product": catalog.pro_monthly.product,
                "currency": "usd",  # type: ignore[typeddict-item]
                "unit_amount": 3500,
                "recurring": {"interval": "month"},
                "lookup_key": "pro_monthly",
            }
        )
    moved = stripe_client.v1.prices.create(
        params={
            "product": catalog.pro_monthly.product,
            "currency": "usd",  # type: ignore[typeddict-item]
            "unit_amount": 3500,
            "recurring": {"interval": "month"},
            "lookup_key": "pro_monthly",
            "transfer_lookup_key": True,
        }
    )
    assert stripe_client.v1.prices.retrieve(catalog.pro_monthly.id).lookup_key is None
    assert (
        stripe_client.v1.prices.list(params={"lookup_keys": ["pro_monthly"]}).data[0].id == moved.id
    )
    stripe_client.v1.prices.update(catalog.basic_monthly.id, params={"active": False})
    active = stripe_client.v1.prices.list(params={"active": True}).data
    assert catalog.basic_monthly.id not in {p.id for p in active}
    product = stripe_client.v1.products.update(
        str(catalog.pro_monthly.product), params={"name": "Pro+"}
    )
    assert product.name == "Pro+"
    assert stripe_client.v1.products.retrieve(product.id).name == "Pro+"
    assert len(stripe_client.v1.products.list().data) == 2
    sb.wait_for_search()  # search is eventually consistent, like Stripe's
    assert stripe_client.v1.prices.search(params={"query": "lookup_key:'pro_yearly'"}).data[
        0
    ].id == (catalog.pro_yearly.id)
    assert (
        stripe_client.v1.products.search(params={"query": "name:'Basic'"}).data[0].name == "Basic"
    )


def test_payment_methods(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create()
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    assert pm.card.last4 == "4242" and pm.customer == customer.id  # type: ignore[union-attr]
    raw = stripe_client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {
                "number": "5555555555554444",
                "exp_month": 1,  # type: ignore[typeddict-item]
                "exp_year": 2031,
            },
        }
    )
    assert raw.card.brand == "mastercard"  # type: ignore[union-attr]
    stripe_client.v1.payment_methods.attach(raw.id, params={"customer": customer.id})
    updated = stripe_client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": raw.id}}
    )
    assert updated.invoice_settings.default_payment_method == raw.id  # type: ignore[union-attr]
    listed = stripe_client.v1.customers.payment_methods.list(customer.id)
    assert {p.id for p in listed.data} == {pm.id, raw.id}
    assert stripe_client.v1.customers.payment_methods.retrieve(customer.id, pm.id).id == pm.id
    assert len(stripe_client.v1.payment_methods.list(params={"customer": customer.id}).data) == 2
    detached = stripe_client.v1.payment_methods.detach(pm.id)
    assert detached.customer is None
    assert stripe_client.v1.payment_methods.retrieve(pm.id).customer is None
    with pytest.raises(stripe.CardError):
        stripe_client.v1.payment_methods.create(
            params={"type": "card", "card": {"number": "4242424242424241"}}
        )  # type: ignore[typeddict-item]
    fails_later = stripe_client.v1.customers.create(
        params={"payment_method": "pm_card_chargeCustomerFail"}
    )
    assert len(stripe_client.v1.customers.payment_methods.list(fails_later.id).data) == 1


def test_webhook_endpoints(stripe_client: stripe.StripeClient) -> None:
    endpoint = stripe_client.v1.webhook_endpoints.create(
        params={"url": "http://127.0.0.1:9/hook", "enabled_events": ["invoice.paid"]}
    )
    assert endpoint.secret and endpoint.secret.startswith("whsec_")
    assert stripe_client.v1.webhook_endpoints.retrieve(endpoint.id).secret is None
    stripe_client.v1.webhook_endpoints.update(endpoint.id, params={"enabled_events": ["*"]})
    assert stripe_client.v1.webhook_endpoints.list().data[0].enabled_events == ["*"]
    assert stripe_client.v1.webhook_endpoints.delete(endpoint.id).deleted is True
    assert stripe_client.v1.webhook_endpoints.list().data == []


def test_events_filters(stripe_client: stripe.StripeClient, sb: StripeSandbox) -> None:
    stripe_client.v1.customers.create()
    start = sb.now()
    sb.advance(days=1)
    stripe_client.v1.products.create(params={"name": "Later"})
    assert [
        e.type for e in stripe_client.v1.events.list(params={"types": ["product.created"]}).data
    ] == ["product.created"]
    assert len(stripe_client.v1.events.list(params={"type": "customer.*"}).data) == 1
    recent = stripe_client.v1.events.list(params={"created": {"gte": start + 3600}}).data
    # The advance itself reports the sandbox clock's new time, as a test clock would.
    assert {e.type for e in recent} == {"product.created", "test_helpers.test_clock.ready"}
    assert stripe_client.v1.events.retrieve(recent[0].id).id == recent[0].id


def test_test_clocks(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    clock = stripe_client.v1.test_helpers.test_clocks.create(
        params={"frozen_time": sb.now(), "name": "t"}
    )
    assert clock.status == "ready"
    customer = stripe_client.v1.customers.create(
        params={
            "test_clock": clock.id,
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )
    assert customer.test_clock == clock.id
    pm = stripe_client.v1.customers.payment_methods.list(customer.id).data[0]
    assert customer.invoice_settings.default_payment_method == pm.id  # type: ignore[union-attr]
    sub = stripe_client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": catalog.pro_monthly.id}]}
    )
    assert sub.status == "active" and sub.test_clock == clock.id
    end = sub["items"].data[0].current_period_end
    advanced = stripe_client.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": end + 60}
    )
    assert advanced.status == "advancing"
    assert advanced.status_details.advancing.target_frozen_time == end + 60  # type: ignore[union-attr]
    assert stripe_client.v1.test_helpers.test_clocks.retrieve(clock.id).status == "ready"
    renewed = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert renewed["items"].data[0].current_period_start == end
    invoices = stripe_client.v1.invoices.list(params={"subscription": sub.id}).data
    assert [i.billing_reason for i in invoices] == ["subscription_cycle", "subscription_create"]
    assert stripe_client.v1.test_helpers.test_clocks.retrieve(clock.id).frozen_time == end + 60
    assert len(stripe_client.v1.test_helpers.test_clocks.list().data) == 1
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": end})
    assert stripe_client.v1.test_helpers.test_clocks.delete(clock.id).deleted is True
    assert stripe_client.v1.customers.retrieve(customer.id).deleted is True


def test_portal_configurations_and_sessions(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    default = stripe_client.v1.billing_portal.configurations.list().data
    assert len(default) == 1 and default[0].is_default
    config = stripe_client.v1.billing_portal.configurations.create(
        params={
            "features": {
                "subscription_update": {  # type: ignore[typeddict-item]
                    "enabled": True,
                    "default_allowed_updates": ["price"],
                    "products": [
                        {
                            "product": str(catalog.pro_monthly.product),
                            "prices": [catalog.pro_monthly.id, catalog.pro_yearly.id],
                        }
                    ],
                }
            },
        }
    )
    products = config.features.subscription_update.products  # type: ignore[union-attr]
    assert products and products[0].prices == [catalog.pro_monthly.id, catalog.pro_yearly.id]
    updated = stripe_client.v1.billing_portal.configurations.update(
        config.id,
        params={"features": {"subscription_cancel": {"enabled": True, "mode": "immediately"}}},
    )
    assert updated.features.subscription_cancel.mode == "immediately"
    assert stripe_client.v1.billing_portal.configurations.retrieve(config.id).id == config.id
    _, sub = signup(stripe_client, sb, catalog.pro_monthly)
    session = stripe_client.v1.billing_portal.sessions.create(
        params={
            "customer": str(sub.customer),
            "return_url": "http://app.test/account",
            "configuration": config.id,
        }
    )
    assert session.url.startswith(sb.url + "/p/session/") and session.configuration == config.id
    flows: list[tuple[dict[str, Any], str]] = [
        ({"type": "subscription_cancel"}, "flow_data[subscription_cancel]"),
        (
            {"type": "subscription_cancel", "subscription_cancel": {}},
            "flow_data[subscription_cancel]",
        ),
        (
            {"type": "subscription_update", "subscription_update": {"retention": "x"}},
            "flow_data[subscription_update][retention]",
        ),
        (
            {
                "type": "subscription_update_confirm",
                "subscription_update_confirm": {"subscription": sub.id},
            },
            "flow_data[subscription_update_confirm][items]",
        ),
        (
            {"type": "payment_method_update", "after_completion": {"type": "redirect"}},
            "flow_data[after_completion][redirect]",
        ),
    ]
    for flow, param in flows:
        with pytest.raises(stripe.InvalidRequestError) as missing:
            stripe_client.v1.billing_portal.sessions.create(
                params={"customer": str(sub.customer), "flow_data": flow}  # type: ignore[typeddict-item]
            )
        assert missing.value.param is not None and missing.value.param.startswith(param), flow
    deep = stripe_client.v1.billing_portal.sessions.create(
        params={
            "customer": str(sub.customer),
            "flow_data": {
                "type": "subscription_update_confirm",
                "subscription_update_confirm": {
                    "subscription": sub.id,
                    "items": [{"id": sub["items"].data[0].id, "price": catalog.pro_yearly.id}],
                },
                "after_completion": {
                    "type": "redirect",
                    "redirect": {"return_url": "http://app.test/done"},
                },
            },
        }
    )
    assert deep.flow and deep.flow.type == "subscription_update_confirm"


def test_checkout_sessions(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "c@example.com"})
    session = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "client_reference_id": "user-9",
            "metadata": {"user_id": "9"},
            "allow_promotion_codes": True,
            "line_items": [{"price": catalog.pro_monthly.id, "quantity": 2}],
            "subscription_data": {"metadata": {"plan": "pro"}},
            "success_url": "http://app.test/s?id={CHECKOUT_SESSION_ID}",
        }
    )
    assert session.url == f"{sb.url}/c/pay/{session.id}" and session.amount_total == 6000
    assert session.status == "open" and session.client_reference_id == "user-9"
    items = stripe_client.v1.checkout.sessions.line_items.list(session.id)
    assert items.data[0].quantity == 2 and items.data[0].price.id == catalog.pro_monthly.id  # type: ignore[union-attr]
    expanded = stripe_client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["line_items"]}
    )
    assert expanded.line_items is not None and len(expanded.line_items.data) == 1
    assert sb.complete_checkout(session.id) == f"http://app.test/s?id={session.id}"
    done = stripe_client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["subscription"]}
    )
    assert done.customer == customer.id and done.payment_status == "paid"
    assert done.subscription.metadata["plan"] == "pro"  # type: ignore[union-attr]
    assert done.subscription["items"].data[0].quantity == 2  # type: ignore[union-attr]
    listed = stripe_client.v1.checkout.sessions.list(params={"customer": customer.id})
    assert [s.id for s in listed.data] == [session.id]
    other = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer_email": "x@example.com",
            "line_items": [{"price": catalog.basic_monthly.id, "quantity": 1}],
        }
    )
    expired = stripe_client.v1.checkout.sessions.expire(other.id)
    assert expired.status == "expired"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.checkout.sessions.expire(other.id)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.checkout.sessions.create(
            params={
                "mode": "subscription",
                "customer": customer.id,
                "customer_email": "x@example.com",
                "line_items": [{"price": catalog.basic_monthly.id}],
            }
        )
    assert [e["type"] for e in sb.events][-1] == "checkout.session.expired"


def test_subscriptions_items_and_invoices(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(stripe_client, sb, catalog.basic_monthly)
    assert sub.status == "active" and sub.latest_invoice
    item = sub["items"].data[0]
    assert item.current_period_start == sub.start_date
    items = stripe_client.v1.subscription_items.list(params={"subscription": sub.id})
    assert [i.id for i in items.data] == [item.id]
    assert (
        stripe_client.v1.subscription_items.retrieve(item.id).price.id == catalog.basic_monthly.id
    )
    bumped = stripe_client.v1.subscription_items.update(
        item.id, params={"quantity": 3, "proration_behavior": "none"}
    )
    assert bumped.quantity == 3
    assert (
        stripe_client.v1.subscriptions.list(params={"customer": str(sub.customer)}).data[0].id
        == sub.id
    )
    assert stripe_client.v1.subscriptions.list(params={"price": catalog.pro_monthly.id}).data == []
    assert stripe_client.v1.subscriptions.list(params={"status": "active"}).data[0].id == sub.id
    sb.wait_for_search()
    found = stripe_client.v1.subscriptions.search(
        params={"query": f"status:'active' AND customer:'{sub.customer}'"}
    )
    assert [s.id for s in found.data] == [sub.id]
    invoice = stripe_client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert invoice.status == "paid" and invoice.billing_reason == "subscription_create"
    assert invoice.parent.subscription_details.subscription == sub.id  # type: ignore[union-attr]
    assert invoice.hosted_invoice_url and invoice.hosted_invoice_url.startswith(sb.url)
    assert invoice.payments and invoice.payments.data[0].status == "paid"
    intent = stripe_client.v1.payment_intents.retrieve(
        invoice.payments.data[0].payment.payment_intent
    )  # type: ignore[arg-type]
    assert intent.status == "succeeded" and intent.amount == 1000
    assert stripe_client.v1.invoices.line_items.list(invoice.id).data[0].amount == 1000
    assert (
        stripe_client.v1.invoices.list(params={"customer": str(sub.customer)}).data[0].id
        == invoice.id
    )
    assert (
        stripe_client.v1.invoices.search(params={"query": f"subscription:'{sub.id}'"}).data[0].id
        == invoice.id
    )
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoices.pay(invoice.id)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoices.void_invoice(invoice.id)


def test_subscription_create_without_payment(
    stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    customer = stripe_client.v1.customers.create()
    sub = stripe_client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": catalog.pro_monthly.id}]}
    )
    assert sub.status == "incomplete"
    invoice = stripe_client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert invoice.status == "open" and invoice.attempt_count == 1
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.subscriptions.create(
            params={
                "customer": customer.id,
                "items": [{"price": catalog.pro_monthly.id}],
                "payment_behavior": "error_if_incomplete",
            }
        )
    failing = stripe_client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer.id}
    )
    with pytest.raises(stripe.CardError):
        stripe_client.v1.subscriptions.create(
            params={
                "customer": customer.id,
                "items": [{"price": catalog.pro_monthly.id}],
                "payment_behavior": "error_if_incomplete",
                "default_payment_method": failing.id,
            }
        )
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    paid = stripe_client.v1.invoices.pay(invoice.id, params={"payment_method": pm.id})
    assert paid.status == "paid"
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "active"
    draft = stripe_client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": catalog.basic_monthly.id}],
            "payment_behavior": "default_incomplete",
            "default_payment_method": pm.id,
        }
    )
    opened = stripe_client.v1.invoices.retrieve(str(draft.latest_invoice))
    assert opened.status == "open" and opened.attempt_count == 0
    assert stripe_client.v1.invoices.mark_uncollectible(opened.id).status == "uncollectible"
    assert stripe_client.v1.invoices.void_invoice(opened.id).status == "void"


def test_the_request_log_keeps_every_api_request(
    stripe_client: stripe.StripeClient, sb: StripeSandbox
) -> None:
    mark = len(sb.requests)
    customer = stripe_client.v1.customers.create(params={"email": "log@example.com"})
    stripe_client.v1.customers.retrieve(customer.id)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.customers.retrieve("cus_missing")
    logged = [(entry.method, entry.path) for entry in sb.requests[mark:]]
    assert logged == [
        ("POST", "/v1/customers"),
        ("GET", f"/v1/customers/{customer.id}"),
        ("GET", "/v1/customers/cus_missing"),
    ]
    assert ("email", "log@example.com") in sb.requests[mark].params
    sb.reset()
    assert sb.requests == []
