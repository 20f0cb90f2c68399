"""The sandbox refuses the parameter values Stripe refuses, on every endpoint, by parameter
name and type: integers, timestamps, amounts, decimals, metadata, URLs, emails, currencies and
string lengths. Each case goes through the official SDK over HTTP and must be a 400
``invalid_request_error`` naming the parameter; the edge values Stripe accepts still pass.

Limits: https://docs.stripe.com/api/metadata (50 keys, keys up to 40 characters without square
brackets, values up to 500), https://docs.stripe.com/api/prices/create (``unit_amount`` is a
non-negative integer, ``unit_amount_decimal`` has at most 12 decimal places),
https://docs.stripe.com/currencies (lowercase ISO codes), https://docs.stripe.com/error-codes
(``parameter_invalid_integer``, ``email_invalid``, ``url_invalid``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import stripe

from flask_lattice.sandbox import StripeSandbox
from flask_lattice.sandbox.params import MAX_TIMESTAMP

from .conftest import Catalog, signup

Call = Callable[[stripe.StripeClient, dict[str, Any]], Any]

PRICE: dict[str, Any] = {"currency": "usd", "product": "prod_x", "unit_amount": 1000}
SESSION: dict[str, Any] = {
    "mode": "subscription",
    "line_items": [{"price": "price_x", "quantity": 1}],
    "success_url": "http://app.test/success",
}
TIERED: dict[str, Any] = {
    "currency": "usd",
    "product": "prod_x",
    "billing_scheme": "tiered",
    "tiers_mode": "graduated",
    "recurring": {"interval": "month"},
}


def prices(client: stripe.StripeClient, params: dict[str, Any]) -> Any:
    return client.v1.prices.create(params=params)  # type: ignore[arg-type]


def products(client: stripe.StripeClient, params: dict[str, Any]) -> Any:
    return client.v1.products.create(params=params)  # type: ignore[arg-type]


def customers(client: stripe.StripeClient, params: dict[str, Any]) -> Any:
    return client.v1.customers.create(params=params)  # type: ignore[arg-type]


def customer_update(client: stripe.StripeClient, params: dict[str, Any]) -> Any:
    customer = client.v1.customers.create()
    return client.v1.customers.update(customer.id, params=params)  # type: ignore[arg-type]


def customer_list(client: stripe.StripeClient, params: dict[str, Any]) -> Any:
    return client.v1.customers.list(params=params)  # type: ignore[arg-type]


def sessions(client: stripe.StripeClient, params: dict[str, Any]) -> Any:
    return client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]


def subscriptions(client: stripe.StripeClient, params: dict[str, Any]) -> Any:
    customer = client.v1.customers.create()
    return client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": "price_x"}], **params}  # type: ignore[typeddict-item]
    )


def subscription_update(client: stripe.StripeClient, params: dict[str, Any]) -> Any:
    return client.v1.subscriptions.update("sub_missing", params=params)  # type: ignore[arg-type]


def item_update(client: stripe.StripeClient, params: dict[str, Any]) -> Any:
    return client.v1.subscription_items.update("si_missing", params=params)  # type: ignore[arg-type]


def clocks(client: stripe.StripeClient, params: dict[str, Any]) -> Any:
    return client.v1.test_helpers.test_clocks.create(params=params)  # type: ignore[arg-type]


def portal(client: stripe.StripeClient, params: dict[str, Any]) -> Any:
    customer = client.v1.customers.create()
    return client.v1.billing_portal.sessions.create(
        params={"customer": customer.id, **params}  # type: ignore[typeddict-item]
    )


def webhooks(client: stripe.StripeClient, params: dict[str, Any]) -> Any:
    return client.v1.webhook_endpoints.create(
        params={"enabled_events": ["*"], **params}  # type: ignore[typeddict-item]
    )


def keys(count: int, width: int = 3) -> dict[str, str]:
    return {f"k{i:0{width}d}": "v" for i in range(count)}


INTEGERS = [
    pytest.param(prices, {**PRICE, "unit_amount": "9999999999999999999999999"}, id="huge"),
    pytest.param(prices, {**PRICE, "unit_amount": "9223372036854775808"}, id="int64+1"),
    pytest.param(prices, {**PRICE, "unit_amount": "1_000"}, id="underscore"),
    pytest.param(prices, {**PRICE, "unit_amount": " 5"}, id="space"),
    pytest.param(prices, {**PRICE, "unit_amount": "+5"}, id="plus"),
    pytest.param(prices, {**PRICE, "unit_amount": "\u0663"}, id="arabic-indic-digit"),
    pytest.param(prices, {**PRICE, "unit_amount": "1e3"}, id="exponent"),
    pytest.param(prices, {**PRICE, "unit_amount": "10.0"}, id="decimal"),
]


@pytest.mark.parametrize(("call", "params"), INTEGERS)
def test_integers_are_ascii_digits_in_64_bits(
    stripe_client: stripe.StripeClient, call: Call, params: dict[str, Any]
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        call(stripe_client, params)
    assert refused.value.http_status == 400
    assert refused.value.param == "unit_amount"
    assert refused.value.code == "parameter_invalid_integer"
    assert refused.value.user_message == f"Invalid integer: {params['unit_amount']}"


REFUSED = [
    # Unix timestamps: 0 .. 253402300799 (before the year 10000).
    pytest.param(subscriptions, {"trial_end": -1}, "trial_end", id="trial_end-negative"),
    pytest.param(
        subscriptions, {"trial_end": MAX_TIMESTAMP + 1}, "trial_end", id="trial_end-year-10000"
    ),
    pytest.param(subscriptions, {"cancel_at": -5}, "cancel_at", id="cancel_at"),
    pytest.param(
        subscriptions,
        {"billing_cycle_anchor": 99999999999999},
        "billing_cycle_anchor",
        id="billing_cycle_anchor",
    ),
    pytest.param(subscriptions, {"backdate_start_date": -1}, "backdate_start_date", id="backdate"),
    pytest.param(
        subscription_update,
        {"pause_collection": {"behavior": "void", "resumes_at": -1}},
        "pause_collection[resumes_at]",
        id="resumes_at",
    ),
    pytest.param(
        subscription_update,
        {"proration_date": MAX_TIMESTAMP + 1},
        "proration_date",
        id="proration_date",
    ),
    pytest.param(clocks, {"frozen_time": -1}, "frozen_time", id="frozen_time-negative"),
    pytest.param(clocks, {"frozen_time": 10**15}, "frozen_time", id="frozen_time-year-10000"),
    pytest.param(sessions, {**SESSION, "expires_at": -1}, "expires_at", id="expires_at"),
    pytest.param(
        sessions,
        {**SESSION, "subscription_data": {"trial_end": -1}},
        "subscription_data[trial_end]",
        id="session-trial_end",
    ),
    pytest.param(customer_list, {"created": {"gte": -1}}, "created[gte]", id="created-filter"),
    # Amounts and quantities: never negative; amounts take at most 8 digits.
    pytest.param(prices, {**PRICE, "unit_amount": -1}, "unit_amount", id="unit_amount-negative"),
    pytest.param(
        prices, {**PRICE, "unit_amount": 100000000}, "unit_amount", id="unit_amount-9-digits"
    ),
    pytest.param(
        prices,
        {**TIERED, "tiers": [{"up_to": "inf", "flat_amount": -1}]},
        "tiers[0][flat_amount]",
        id="flat_amount",
    ),
    pytest.param(
        prices,
        {**TIERED, "tiers": [{"up_to": 0, "unit_amount": 1}, {"up_to": "inf", "unit_amount": 1}]},
        "tiers[0][up_to]",
        id="up_to-zero",
    ),
    pytest.param(
        prices,
        {**PRICE, "recurring": {"interval": "month", "interval_count": 0}},
        "recurring[interval_count]",
        id="interval_count-zero",
    ),
    pytest.param(
        prices,
        {**PRICE, "recurring": {"interval": "month", "trial_period_days": 731}},
        "recurring[trial_period_days]",
        id="trial_period_days-731",
    ),
    pytest.param(
        subscriptions, {"trial_period_days": -1}, "trial_period_days", id="trial_period_days-neg"
    ),
    pytest.param(
        subscriptions,
        {"items": [{"price": "price_x", "quantity": -1}]},
        "items[0][quantity]",
        id="items-quantity",
    ),
    pytest.param(item_update, {"quantity": -1}, "quantity", id="item-quantity"),
    pytest.param(
        sessions,
        {**SESSION, "line_items": [{"price": "price_x", "quantity": -2}]},
        "line_items[0][quantity]",
        id="line_items-quantity",
    ),
    pytest.param(
        sessions,
        {
            **SESSION,
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "usd",
                        "product": "prod_x",
                        "unit_amount": -5,
                        "recurring": {"interval": "month"},
                    },
                }
            ],
        },
        "line_items[0][price_data][unit_amount]",
        id="price_data-unit_amount",
    ),
    # Decimal strings: finite, non-negative, ASCII digits, at most 12 decimal places.
    *[
        pytest.param(
            prices,
            {"currency": "usd", "product": "prod_x", "unit_amount_decimal": value},
            "unit_amount_decimal",
            id=f"unit_amount_decimal-{value!r}",
        )
        for value in (
            "true",
            "",
            "abc",
            "inf",
            "NaN",
            "-1",
            "1.2.3",
            "1e3",
            "1_0",
            "\u0661",
            "0.1234567890123",
            "100000000",
            "9" * 400,
        )
    ],
    pytest.param(
        prices,
        {**TIERED, "tiers": [{"up_to": "inf", "flat_amount_decimal": "ten"}]},
        "tiers[0][flat_amount_decimal]",
        id="flat_amount_decimal",
    ),
    *[
        pytest.param(
            products,
            {
                "name": "Box",
                "package_dimensions": {"height": value, "length": 1, "weight": 1, "width": 1},
            },
            "package_dimensions[height]",
            id=f"number-{value!r}",
        )
        for value in ("nan", "inf", "-inf", "1e3", "1_0", "\u0661", "-1")
    ],
    pytest.param(
        subscriptions, {"application_fee_percent": 101}, "application_fee_percent", id="percent"
    ),
    # Metadata: 50 keys, keys up to 40 characters without brackets, values up to 500.
    pytest.param(customers, {"metadata": keys(51)}, "metadata", id="metadata-51-keys"),
    pytest.param(
        customers, {"metadata": {"k" * 41: "v"}}, f"metadata[{'k' * 41}]", id="metadata-long-key"
    ),
    pytest.param(
        customers, {"metadata": {"a[b]": "v"}}, "metadata[a[b]]", id="metadata-bracket-key"
    ),
    pytest.param(
        customers, {"metadata": {"note": "x" * 501}}, "metadata[note]", id="metadata-long-value"
    ),
    pytest.param(
        products, {"name": "Box", "metadata": keys(51)}, "metadata", id="product-metadata"
    ),
    pytest.param(
        subscriptions,
        {"items": [{"price": "price_x", "metadata": {"k" * 41: "v"}}]},
        f"items[0][metadata][{'k' * 41}]",
        id="nested-metadata",
    ),
    # URLs: absolute http(s) with a host.
    *[
        pytest.param(
            sessions, {**SESSION, "success_url": url}, "success_url", id=f"success_url-{url!r}"
        )
        for url in (
            "app.test/success",
            "/success",
            "ftp://app.test/x",
            "http://",
            "javascript:alert(1)",
            "http://app .test/",
            "http://[::1",
        )
    ],
    pytest.param(sessions, {**SESSION, "cancel_url": "pricing"}, "cancel_url", id="cancel_url"),
    pytest.param(portal, {"return_url": "not a url"}, "return_url", id="return_url"),
    pytest.param(webhooks, {"url": "example.com/hook"}, "url", id="webhook-url"),
    pytest.param(products, {"name": "Box", "url": "www.example.com"}, "url", id="product-url"),
    # Email addresses.
    pytest.param(customers, {"email": "nope"}, "email", id="email-no-at"),
    pytest.param(customers, {"email": "ada@localhost"}, "email", id="email-no-tld"),
    pytest.param(customers, {"email": "ada lovelace@example.com"}, "email", id="email-space"),
    pytest.param(customers, {"email": "a@b@example.com"}, "email", id="email-two-ats"),
    pytest.param(
        sessions, {**SESSION, "customer_email": "x"}, "customer_email", id="customer_email"
    ),
    # Currencies: lowercase ISO 4217 codes in use.
    *[
        pytest.param(prices, {**PRICE, "currency": code}, "currency", id=f"currency-{code!r}")
        for code in ("usx", "USD", "us", "dem", "xts", "")
    ],
    pytest.param(
        prices,
        {**PRICE, "currency_options": {"usx": {"unit_amount": 5}}},
        "currency_options[usx]",
        id="currency_options-key",
    ),
    # String lengths: 5000 in general, tighter where Stripe documents it.
    pytest.param(customers, {"description": "x" * 5001}, "description", id="description-5001"),
    pytest.param(products, {"name": "x" * 5001}, "name", id="product-name-5001"),
    pytest.param(customers, {"name": "x" * 257}, "name", id="customer-name-257"),
    pytest.param(
        sessions,
        {**SESSION, "client_reference_id": "x" * 201},
        "client_reference_id",
        id="client_reference_id-201",
    ),
]


@pytest.mark.parametrize(("call", "params", "param"), REFUSED)
def test_values_stripe_refuses_are_400s(
    stripe_client: stripe.StripeClient, call: Call, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        call(stripe_client, params)
    assert refused.value.http_status == 400
    assert refused.value.error is not None
    assert refused.value.error.type == "invalid_request_error"
    assert refused.value.param == param


def test_error_messages_and_codes(stripe_client: stripe.StripeClient) -> None:
    def error(call: Call, params: dict[str, Any]) -> tuple[str | None, str | None]:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            call(stripe_client, params)
        return refused.value.code, refused.value.user_message

    assert error(sessions, {**SESSION, "customer_email": "x"}) == (
        "email_invalid",
        "Invalid email address: x",
    )
    assert error(sessions, {**SESSION, "success_url": "/done"}) == (
        "url_invalid",
        "Not a valid URL",
    )
    assert error(prices, {**PRICE, "currency": "usx"})[1] == "Invalid currency: usx"
    assert error(prices, {**PRICE, "unit_amount": -1})[1] == "Invalid non-negative integer"
    assert "99999999" in str(error(prices, {**PRICE, "unit_amount": 100000000})[1])
    decimal = {"currency": "usd", "product": "prod_x", "unit_amount_decimal": "inf"}
    assert error(prices, decimal)[1] == "Invalid decimal: inf"
    _, message = error(subscriptions, {"trial_end": -1})
    assert str(message).startswith("Invalid timestamp: must be an integer Unix timestamp")
    assert error(customers, {"metadata": keys(51)})[1] == "Metadata can have at most 50 keys."
    assert "40 characters" in str(error(customers, {"metadata": {"k" * 41: "v"}})[1])
    assert "500 characters" in str(error(customers, {"metadata": {"k": "v" * 501}})[1])
    assert "at most 5000 characters" in str(error(customers, {"description": "x" * 5001})[1])


# -- what Stripe accepts still works ----------------------------------------------------------


def test_metadata_at_the_limits(stripe_client: stripe.StripeClient) -> None:
    full = {**keys(49), "k" * 40: "v" * 500}
    customer = stripe_client.v1.customers.create(params={"metadata": full})
    assert customer.metadata is not None and customer.metadata.to_dict() == full
    customer = stripe_client.v1.customers.update(
        customer.id,
        params={"metadata": {"k000": ""}},  # an empty value unsets a key
    )
    assert customer.metadata is not None
    assert customer.metadata.to_dict() == {
        key: value for key, value in full.items() if key != "k000"
    }
    customer = stripe_client.v1.customers.update(customer.id, params={"metadata": ""})
    assert customer.metadata is not None and customer.metadata.to_dict() == {}


def test_amounts_decimals_and_currencies_at_the_limits(stripe_client: stripe.StripeClient) -> None:
    product = stripe_client.v1.products.create(params={"name": "Edge"})
    for amount in (0, 99999999):
        price = stripe_client.v1.prices.create(
            params={"product": product.id, "currency": "usd", "unit_amount": amount}
        )
        assert price.unit_amount == amount
    for decimal in ("0", "1.5", "0.123456789012", "99999999", "7."):
        stripe_client.v1.prices.create(
            params={"product": product.id, "currency": "usd", "unit_amount_decimal": decimal}
        )
    for currency in ("eur", "jpy", "gbp", "xof"):
        price = stripe_client.v1.prices.create(
            params={"product": product.id, "currency": currency, "unit_amount": 100}
        )
        assert price.currency == currency
    stripe_client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 100,
            "recurring": {"interval": "month", "trial_period_days": 730},
        }
    )


def test_urls_emails_and_lengths_at_the_limits(
    stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    customer = stripe_client.v1.customers.create(
        params={
            "email": "ada.lovelace+billing@mail.example.co.uk",
            "name": "n" * 256,
            "description": "d" * 5000,
        }
    )
    assert customer.name == "n" * 256
    customer = stripe_client.v1.customers.update(customer.id, params={"email": ""})
    assert customer.email is None
    session = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": catalog.pro_monthly.id, "quantity": 1}],
            "success_url": "https://app.test/done?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://localhost:5000/pricing",
            "client_reference_id": "r" * 200,
            "customer_email": "grace@example.com",
        }
    )
    assert session.success_url == "https://app.test/done?session_id={CHECKOUT_SESSION_ID}"
    assert session.client_reference_id == "r" * 200
    # A list filter is matched, not checked as a URL.
    stripe_client.v1.products.list(params={"url": "not a url"})


def test_timestamps_now_and_quantity_zero(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(stripe_client, sb, catalog.pro_monthly, trial_days=7)
    stripe_client.v1.subscriptions.update(sub.id, params={"trial_end": "now"})
    item = sub["items"].data[0]
    item = stripe_client.v1.subscription_items.update(item.id, params={"quantity": 0})
    assert item.quantity == 0
    clock = stripe_client.v1.test_helpers.test_clocks.create(params={"frozen_time": sb.now()})
    assert clock.frozen_time == sb.now()
    window = {"gte": 0, "lte": MAX_TIMESTAMP}
    listed = stripe_client.v1.customers.list(params={"created": window})  # type: ignore[typeddict-item]
    assert [customer.id for customer in listed.data] == [sub.customer]
