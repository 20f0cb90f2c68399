"""Stripe's resource-level rules the sandbox enforces (prices, currencies, items, time)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
import stripe

from flask_lattice.sandbox import StripeSandbox
from flask_lattice.sandbox.billing import format_money
from flask_lattice.sandbox.clock import DAY, MAX_TIMESTAMP, add_interval

from .conftest import Catalog, signup


def refused(call: Any, **params: Any) -> stripe.InvalidRequestError:
    """The 400 ``invalid_request_error`` that ``call(params=params)`` raises."""
    with pytest.raises(stripe.InvalidRequestError) as caught:
        call(params=params)
    assert caught.value.http_status == 400
    assert caught.value.error is not None and caught.value.error.type == "invalid_request_error"
    return caught.value


def new_price(
    client: stripe.StripeClient, product: str, currency: str = "usd", amount: int = 1000
) -> Any:
    return client.v1.prices.create(
        params={
            "product": product,
            "currency": currency,
            "unit_amount": amount,
            "recurring": {"interval": "month"},
        }
    )


def customer_with_card(client: stripe.StripeClient) -> Any:
    return client.v1.customers.create(
        params={
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )


def subscribe(client: stripe.StripeClient, customer: Any, *prices: Any) -> Any:
    return client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id} for price in prices]}
    )


def checkout_params(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "mode": "subscription",
        "customer_email": "ada@example.com",
        "line_items": list(items),
        "success_url": "https://app.test/done",
    }


# -- 1. prices ---------------------------------------------------------------------------


def test_price_interval_count_and_amount_rules(
    stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    product = str(catalog.pro_monthly.product)
    create = stripe_client.v1.prices.create
    base = {"product": product, "currency": "usd", "unit_amount": 500}
    error = refused(create, **base, recurring={"interval": "month", "interval_count": 0})
    assert error.param == "recurring[interval_count]"
    for interval, too_many in (("year", 4), ("month", 37), ("week", 157), ("day", 1096)):
        error = refused(
            create, **base, recurring={"interval": interval, "interval_count": too_many}
        )
        assert error.param == "recurring[interval_count]" and "3 years" in str(error.user_message)
    for interval, most in (("year", 3), ("month", 36), ("week", 156), ("day", 1095)):
        price = create(params={**base, "recurring": {"interval": interval, "interval_count": most}})  # type: ignore[arg-type]
        assert price.recurring and price.recurring.interval_count == most
    error = refused(
        create, product=product, currency="usd", unit_amount=500, unit_amount_decimal="500"
    )
    assert error.code == "parameters_exclusive" and error.param == "unit_amount"


def test_interval_arithmetic_refuses_a_non_positive_count() -> None:
    assert add_interval(0, "month", 1) == 31 * DAY
    for count in (0, -1):
        with pytest.raises(ValueError, match="at least 1"):
            add_interval(0, "month", count)


# -- 2. currencies ------------------------------------------------------------------------


def test_one_currency_per_subscription_and_customer(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    product = str(catalog.pro_monthly.product)
    usd, eur = catalog.pro_monthly, new_price(stripe_client, product, "eur")
    customer = customer_with_card(stripe_client)
    create = stripe_client.v1.subscriptions.create
    items = [{"price": usd.id}, {"price": eur.id}]
    error = refused(create, customer=customer.id, items=items)
    assert error.user_message == "All prices on a subscription must have the same currency."
    assert stripe_client.v1.subscriptions.list(params={"customer": customer.id}).data == []

    sub = subscribe(stripe_client, customer, usd)
    error = refused(create, customer=customer.id, items=[{"price": eur.id}])
    assert error.user_message == (
        "You cannot combine currencies on a single customer. This customer has an active "
        "subscription, subscription schedule, discount, quote, or invoice item with currency usd."
    )
    item = sub["items"].data[0]
    update = stripe_client.v1.subscriptions.update
    for change in ([{"id": item.id, "price": eur.id}], [{"price": eur.id}]):
        error = refused(lambda params: update(sub.id, params=params), items=change)
        assert "same currency" in str(error.user_message)
    kept = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert [i.price.id for i in kept["items"].data] == [usd.id] and kept.currency == "usd"

    sessions = stripe_client.v1.checkout.sessions.create
    error = refused(
        sessions,
        **checkout_params({"price": usd.id, "quantity": 1}, {"price": eur.id, "quantity": 1}),
    )
    assert "same currency" in str(error.user_message) and error.param == "line_items"
    error = refused(
        sessions,
        mode="subscription",
        customer=customer.id,
        line_items=[{"price": eur.id, "quantity": 1}],
        success_url="https://app.test/done",
    )
    assert "cannot combine currencies" in str(error.user_message)

    stripe_client.v1.subscriptions.cancel(sub.id)  # nothing binds the customer any more
    assert subscribe(stripe_client, customer, eur).currency == "eur"


def test_portal_offers_only_prices_in_the_subscription_currency(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    eur = new_price(stripe_client, str(catalog.pro_monthly.product), "eur", 2500)
    _, sub = signup(stripe_client, sb, catalog.basic_monthly)
    portal = stripe_client.v1.billing_portal.sessions.create(
        params={"customer": str(sub.customer), "return_url": "https://app.test/account"}
    )
    page = requests.get(f"{portal.url}?step=subscription_update", timeout=5).text
    offered = set(re.findall(r'data-testid="plan-option" data-price-id="([^"]+)"', page))
    assert catalog.pro_monthly.id in offered and catalog.pro_yearly.id in offered
    assert eur.id not in offered
    switched = requests.post(
        f"{portal.url}/switch",
        data={"subscription": sub.id, "price": eur.id},
        timeout=5,
        allow_redirects=False,
    )
    assert switched.status_code == 402 and "not available" in switched.text
    assert stripe_client.v1.subscriptions.retrieve(sub.id).currency == "usd"


# -- 3. the same price twice ----------------------------------------------------------------


def test_the_same_price_twice_is_refused(
    stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    price = catalog.pro_monthly
    message = f"Cannot add multiple subscription items with the same price: {price.id}"
    customer = customer_with_card(stripe_client)
    create = stripe_client.v1.subscriptions.create
    error = refused(create, customer=customer.id, items=[{"price": price.id}, {"price": price.id}])
    assert error.user_message == message
    sub = subscribe(stripe_client, customer, price)
    update = stripe_client.v1.subscriptions.update
    error = refused(lambda params: update(sub.id, params=params), items=[{"price": price.id}])
    assert error.user_message == message
    assert len(stripe_client.v1.subscriptions.retrieve(sub.id)["items"].data) == 1
    error = refused(
        stripe_client.v1.checkout.sessions.create,
        **checkout_params({"price": price.id, "quantity": 1}, {"price": price.id, "quantity": 2}),
    )
    assert error.user_message == message


# -- 4. quantities --------------------------------------------------------------------------


def test_checkout_quantity_is_required_and_positive(
    stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    create = stripe_client.v1.checkout.sessions.create
    error = refused(create, **checkout_params({"price": catalog.pro_monthly.id}))
    assert error.user_message == "Quantity is required. Add `quantity` to `line_items[0]`."
    assert error.param == "line_items[0][quantity]"
    error = refused(create, **checkout_params({"price": catalog.pro_monthly.id, "quantity": 0}))
    assert error.param == "line_items[0][quantity]"


def test_subscription_quantity_may_be_zero_never_negative(
    stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    customer = customer_with_card(stripe_client)
    create = stripe_client.v1.subscriptions.create
    refused(create, customer=customer.id, items=[{"price": catalog.pro_monthly.id, "quantity": -1}])
    sub = subscribe(stripe_client, customer, catalog.pro_monthly)
    item = sub["items"].data[0]
    update = stripe_client.v1.subscriptions.update
    refused(lambda params: update(sub.id, params=params), items=[{"id": item.id, "quantity": -2}])
    zero = update(sub.id, params={"items": [{"id": item.id, "quantity": 0}]})
    assert zero["items"].data[0].quantity == 0


# -- 5. scheduled cancellation ---------------------------------------------------------------


def test_cancel_at_rules(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(stripe_client, sb, catalog.pro_monthly)
    update = stripe_client.v1.subscriptions.update

    def change(params: Any) -> Any:
        return update(sub.id, params=params)

    error = refused(change, cancel_at=sb.now() + 10 * DAY, cancel_at_period_end=True)
    assert error.code == "parameters_exclusive"
    error = refused(change, cancel_at=sb.now() - DAY)
    assert error.param == "cancel_at"
    error = refused(
        stripe_client.v1.subscriptions.create,
        customer=str(sub.customer),
        items=[{"price": catalog.basic_monthly.id}],
        cancel_at=sb.now() - DAY,
    )
    assert error.param == "cancel_at"
    kept = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert kept.cancel_at is None and kept.cancel_at_period_end is False
    at = sb.now() + 10 * DAY
    assert change({"cancel_at": at}).cancel_at == at


# -- 6. clocks ------------------------------------------------------------------------------


def test_sandbox_clock_advance_is_parsed_strictly(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    url = f"{sb.url}/_sandbox/clock/advance"
    now = sb.now()
    for form in (
        {"seconds": "inf"},
        {"seconds": "nan"},
        {"seconds": "1.5"},
        {"seconds": "-5"},
        {"seconds": "1e3"},
        {"seconds": "9" * 25},
        {"to": "99999999999999999999"},
        {"to": str(MAX_TIMESTAMP + 1)},
        {"to": str(now - DAY)},
    ):
        answer = requests.post(url, data=form, timeout=5)
        assert answer.status_code == 400, form
        assert answer.json()["error"]["type"] == "invalid_request_error"
    assert sb.now() - now < 60
    signup(stripe_client, sb, catalog.pro_monthly)  # two months at most past its period
    too_far = requests.post(url, data={"seconds": str(120 * DAY)}, timeout=5)
    assert too_far.status_code == 400 and "two intervals" in too_far.json()["error"]["message"]
    moved = requests.post(url, data={"seconds": str(40 * DAY)}, timeout=5)
    assert moved.status_code == 200 and moved.json()["now"] >= now + 40 * DAY


def test_sandbox_clock_cannot_hang_on_a_zero_interval(sb: StripeSandbox) -> None:
    """A price with interval_count=0 once wedged ``clock/advance`` in an endless loop."""
    client = sb.client()
    product = client.v1.products.create(params={"name": "x"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.create(
            params={
                "product": product.id,
                "currency": "usd",
                "unit_amount": 500,
                "recurring": {"interval": "month", "interval_count": 0},
            }
        )
    answer = requests.post(f"{sb.url}/_sandbox/clock/advance", data={"seconds": "86400"}, timeout=5)
    assert answer.status_code == 200


def test_test_clock_frozen_time_bounds(
    stripe_client: stripe.StripeClient, sb: StripeSandbox
) -> None:
    clocks = stripe_client.v1.test_helpers.test_clocks
    for frozen_time in (0, -1, MAX_TIMESTAMP + 1):
        error = refused(clocks.create, frozen_time=frozen_time)
        assert error.param == "frozen_time"
    clock = clocks.create(params={"frozen_time": sb.now()})
    advancing = clocks.advance(clock.id, params={"frozen_time": sb.now() + DAY})
    assert advancing.status in ("advancing", "ready")


# -- 7. create_preview timestamps -------------------------------------------------------------


def test_preview_subscription_details_timestamps(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(stripe_client, sb, catalog.pro_monthly, trial_days=7)
    preview = stripe_client.v1.invoices.create_preview

    def details(**values: Any) -> Any:
        return preview(params={"subscription": sub.id, "subscription_details": values})  # type: ignore[typeddict-item]

    assert details(trial_end="now").object == "invoice"
    assert details(resume_at="now").object == "invoice"
    assert details(cancel_at=sb.now() + 5 * DAY).object == "invoice"
    for bad in (
        {"trial_end": 0},
        {"trial_end": -1},
        {"trial_end": 10**20},
        {"trial_end": MAX_TIMESTAMP + 1},
        {"proration_date": 0},
        {"proration_date": 10**20},
        {"proration_date": MAX_TIMESTAMP + 1},
        {"cancel_at": 0},
        {"cancel_at": 10**20},
        {"cancel_at": sb.now() - DAY},
    ):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            details(**bad)
        assert caught.value.http_status == 400, bad
    # a subscription update cannot store a time that previews then fail on
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.subscriptions.update(sub.id, params={"trial_end": 10**12})
    assert details().object == "invoice"


# -- 8. amounts in each currency's units ------------------------------------------------------


def test_money_follows_stripe_decimal_rules() -> None:
    assert format_money(1999, "usd") == "$19.99"
    assert format_money(-1999, "usd") == "-$19.99"
    assert format_money(150000, "eur") == "€1,500.00"
    assert format_money(500, "jpy") == "¥500"
    assert format_money(500000, "krw") == "₩500,000"
    assert format_money(5000, "ugx") == "UGX 5,000"
    assert format_money(1234, "kwd") == "KWD 1.234"
    assert format_money(1000, "bhd") == "BHD 1.000"


def test_hosted_pages_show_zero_and_three_decimal_currencies(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    product = str(catalog.pro_monthly.product)
    shown = {}
    for currency, amount in (("jpy", 500), ("kwd", 1234)):
        price = new_price(stripe_client, product, currency, amount)
        session = stripe_client.v1.checkout.sessions.create(
            params=checkout_params({"price": price.id, "quantity": 1})  # type: ignore[arg-type]
        )
        page = requests.get(str(session.url), timeout=5).text
        shown[currency] = re.findall(r'data-testid="amount-total">([^<]*)<', page)
    assert shown == {"jpy": ["¥500"], "kwd": ["KWD 1.234"]}
    jpy = new_price(stripe_client, product, "jpy", 500)
    _, sub = signup(stripe_client, sb, jpy, email="yen@example.com")
    invoice = stripe_client.v1.invoices.retrieve(str(sub.latest_invoice))
    page = requests.get(str(invoice.hosted_invoice_url), timeout=5).text
    assert re.findall(r'data-testid="invoice-total"[^>]*>([^<]*)<', page) == ["¥500"]
    assert "(at ¥500 / month)" in invoice.lines.data[0].description  # type: ignore[operator]


# -- 9. lists filtered by an unknown customer ---------------------------------------------------


def test_lists_by_unknown_customer(stripe_client: stripe.StripeClient) -> None:
    for call in (stripe_client.v1.invoices.list, stripe_client.v1.subscriptions.list):
        error = refused(call, customer="cus_nope")
        assert error.code == "resource_missing" and error.param == "customer"
        assert error.user_message == "No such customer: 'cus_nope'"
    customer = stripe_client.v1.customers.create(params={})
    assert stripe_client.v1.invoices.list(params={"customer": customer.id}).data == []
    stripe_client.v1.customers.delete(customer.id)
    assert stripe_client.v1.subscriptions.list(params={"customer": customer.id}).data == []
