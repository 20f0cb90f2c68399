"""The sandbox is as strict as Stripe: keys, validation, idempotency, error codes, expand,
search, the portal's pause flow and rate limits, each driven through the official SDK over HTTP.

Every test cites the Stripe documentation page that defines the behaviour it checks.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import stripe

from flask_lattice.sandbox import StripeSandbox

from .conftest import FAST_RETRIES, Catalog, signup

HOUR = 3600


def call(
    sb: StripeSandbox,
    method: str,
    path: str,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One raw HTTP request to the sandbox's API: ``(status, headers, JSON body)``."""
    data = urllib.parse.urlencode(fields).encode() if fields is not None else None
    sent = {"Authorization": f"Bearer {sb.api_key}", **(headers or {})}
    request = urllib.request.Request(sb.url + path, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), json.loads(exc.read())


def basic(key: str) -> dict[str, str]:
    """HTTP Basic auth with the key as user name and an empty password (``curl -u KEY:``)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


# -- API keys: https://docs.stripe.com/api/authentication -----------------------------------


def test_only_the_configured_keys_are_accepted(sb: StripeSandbox) -> None:
    # Stripe authenticates with the account's own secret keys, by Bearer or by HTTP Basic auth
    # (key as user name, no password); any other key is a 401 that echoes a masked key.
    assert call(sb, "GET", "/v1/customers")[0] == 200
    assert call(sb, "GET", "/v1/customers", headers=basic(sb.api_key))[0] == 200
    wrong = "sk_test_someone_elses_key_1234"
    for headers in ({"Authorization": f"Bearer {wrong}"}, basic(wrong)):
        status, _, body = call(sb, "GET", "/v1/customers", headers=headers)
        assert status == 401
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["code"] == "api_key_invalid"
        assert body["error"]["message"].startswith("Invalid API Key provided: sk_test_")
        assert body["error"]["message"].endswith("1234") and wrong not in body["error"]["message"]
    status, _, body = call(sb, "GET", "/v1/customers", headers={"Authorization": ""})
    assert status == 401 and body["error"]["message"].startswith("You did not provide an API key")
    with pytest.raises(stripe.AuthenticationError) as refused:
        stripe.StripeClient(wrong, base_addresses={"api": sb.url}).v1.customers.list()
    assert refused.value.http_status == 401


def test_extra_keys_are_accepted_too() -> None:
    # https://docs.stripe.com/keys: an account may have several live secret keys at once
    # (rolled keys stay valid until they expire).
    with StripeSandbox(extra_api_keys=["sk_test_rolled_key"], retry_schedule=FAST_RETRIES) as sb:
        rolled = stripe.StripeClient("sk_test_rolled_key", base_addresses={"api": sb.url})
        assert rolled.v1.customers.create(params={"email": "a@example.com"}).id
        assert sb.client().v1.customers.list().data


# -- Checkout Session bounds: https://docs.stripe.com/api/checkout/sessions/create ------------


def _session_params(catalog: Catalog, **extra: Any) -> Any:
    return {
        "mode": "subscription",
        "line_items": [{"price": catalog.pro_monthly.id, "quantity": 1}],
        "success_url": "http://app.test/success",
        **extra,
    }


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"subscription_data": {"trial_period_days": 0}}, "subscription_data[trial_period_days]"),
        ({"subscription_data": {"trial_end": "+47h"}}, "subscription_data[trial_end]"),
        ({"expires_at": "-1h"}, "expires_at"),
        ({"expires_at": "+10m"}, "expires_at"),
        ({"expires_at": "+25h"}, "expires_at"),
    ],
)
def test_checkout_refuses_what_stripe_refuses(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog, extra: Any, param: str
) -> None:
    # trial_period_days "has to be at least 1"; trial_end "has to be at least 48 hours in the
    # future"; expires_at "can be anywhere from 30 minutes to 24 hours after creation".
    resolved = json.loads(json.dumps(extra), object_hook=lambda node: _times(node, sb.now()))
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.checkout.sessions.create(params=_session_params(catalog, **resolved))
    assert refused.value.param == param
    assert stripe_client.v1.checkout.sessions.list().data == []


def _times(node: dict[str, Any], now: int) -> dict[str, Any]:
    units = {"h": HOUR, "m": 60}
    return {
        key: now + int(value[:-1]) * units[value[-1]]
        if isinstance(value, str) and value[0] in "+-"
        else value
        for key, value in node.items()
    }


def test_checkout_accepts_the_bounds(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    now = sb.now()
    expires = now + HOUR
    session = stripe_client.v1.checkout.sessions.create(
        params=_session_params(
            catalog,
            expires_at=expires,
            subscription_data={"trial_end": now + 49 * HOUR},
        )
    )
    assert session.expires_at == expires
    stripe_client.v1.checkout.sessions.create(
        params=_session_params(catalog, subscription_data={"trial_period_days": 1})
    )


# -- Idempotency: https://docs.stripe.com/api/idempotent_requests ---------------------------


def test_a_request_that_failed_validation_saves_no_result(sb: StripeSandbox) -> None:
    # "If incoming parameters fail validation ... no idempotent result is saved because no API
    # endpoint began execution. You can retry these requests."
    key = {"Idempotency-Key": "signup-42"}
    status, headers, body = call(sb, "POST", "/v1/customers", {"emial": "a@x.test"}, key)
    assert status == 400 and body["error"]["code"] == "parameter_unknown"
    assert headers["Idempotency-Key"] == "signup-42"
    status, headers, first = call(sb, "POST", "/v1/customers", {"email": "a@x.test"}, key)
    assert status == 200 and headers["Idempotency-Key"] == "signup-42"
    assert "Idempotent-Replayed" not in headers
    status, headers, again = call(sb, "POST", "/v1/customers", {"email": "a@x.test"}, key)
    assert status == 200 and again["id"] == first["id"]
    assert headers["Idempotent-Replayed"] == "true" and headers["Idempotency-Key"] == "signup-42"
    status, _, body = call(sb, "POST", "/v1/customers", {"email": "b@x.test"}, key)
    assert status == 400 and body["error"]["type"] == "idempotency_error"


def test_a_card_error_is_saved_and_replayed(
    stripe_client: stripe.StripeClient, sb: StripeSandbox
) -> None:
    # Stripe saves the result once the endpoint began executing, errors included.
    customer = stripe_client.v1.customers.create()
    key = {"Idempotency-Key": "attach-1"}
    path = "/v1/payment_methods/pm_card_chargeDeclined/attach"
    status, _, first = call(sb, "POST", path, {"customer": customer.id}, key)
    assert status == 402 and first["error"]["code"] == "card_declined"
    status, headers, again = call(sb, "POST", path, {"customer": customer.id}, key)
    assert status == 402 and again == first and headers["Idempotent-Replayed"] == "true"


@pytest.fixture
def held_store(sb: StripeSandbox) -> Iterator[threading.RLock]:
    """The sandbox's store lock, held by the test so that a request stays in flight."""
    lock = sb.core.store.lock
    lock.acquire()
    try:
        yield lock
    finally:
        if lock._is_owned():  # type: ignore[attr-defined]
            lock.release()


def test_concurrent_requests_with_one_key_conflict(
    sb: StripeSandbox, held_store: threading.RLock
) -> None:
    # "the request conflicted with another that was executing concurrently": the second one is
    # answered 409 (idempotency_error) and saves nothing.
    key = {"Idempotency-Key": "double-click"}
    results: list[tuple[int, dict[str, str], Any]] = []
    first = threading.Thread(
        target=lambda: results.append(call(sb, "POST", "/v1/customers", {"name": "A"}, key))
    )
    first.start()
    deadline = time.monotonic() + 10
    while f"{sb.api_key}:double-click" not in sb.core.idempotency.in_flight():
        assert time.monotonic() < deadline, "the first request never started"
        time.sleep(0.01)
    status, _, body = call(sb, "POST", "/v1/customers", {"name": "A"}, key)
    assert status == 409
    assert body["error"]["type"] == "idempotency_error"
    assert body["error"]["code"] == "idempotency_key_in_use"
    held_store.release()
    first.join(10)
    [(status, _, created)] = results
    assert status == 200
    status, headers, replayed = call(sb, "POST", "/v1/customers", {"name": "A"}, key)
    assert replayed["id"] == created["id"] and headers["Idempotent-Replayed"] == "true"


# -- Error codes: https://docs.stripe.com/error-codes ---------------------------------------


def test_parameter_error_codes(stripe_client: stripe.StripeClient, catalog: Catalog) -> None:
    cases: list[tuple[Any, str, str]] = [
        (
            lambda: stripe_client.v1.customers.create(params={"emial": "x"}),
            "parameter_unknown",
            "emial",
        ),
        (
            lambda: stripe_client.v1.customers.list(params={"limit": "many"}),
            "parameter_invalid_integer",
            "limit",
        ),
        (lambda: stripe_client.v1.products.create(params={}), "parameter_missing", "name"),
        (
            lambda: stripe_client.v1.customers.list(params={"limit": ""}),
            "parameter_invalid_empty",
            "limit",
        ),
        (
            lambda: stripe_client.v1.checkout.sessions.create(
                params=_session_params(catalog, customer="cus_x", customer_email="a@x.test")
            ),
            "parameters_exclusive",
            "customer",
        ),
    ]
    for make, code, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            make()
        assert (refused.value.code, refused.value.param) == (code, param)


# -- Expanding a deleted object: https://docs.stripe.com/api/customers/delete ---------------


def test_expanding_a_deleted_customer_gives_the_deleted_stub(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    # Deleting a customer returns, and expand then yields, {"id", "object", "deleted": true}
    # (https://docs.stripe.com/expand for expanding references).
    _, sub = signup(stripe_client, sb, catalog.basic_monthly)
    stripe_client.v1.customers.delete(str(sub.customer))
    expanded = stripe_client.v1.subscriptions.retrieve(sub.id, params={"expand": ["customer"]})
    assert expanded.customer.to_dict() == {  # type: ignore[union-attr]
        "id": sub.customer,
        "object": "customer",
        "deleted": True,
    }


# -- Search: https://docs.stripe.com/search -------------------------------------------------


def test_search_is_eventually_consistent() -> None:
    # "Don't use search for read-after-write flows ... data is searchable in under 1 minute."
    with StripeSandbox(search_delay=600, retry_schedule=FAST_RETRIES) as sb:
        stripe_client = sb.client()
        customer = stripe_client.v1.customers.create(params={"email": "late@x.test"})
        assert stripe_client.v1.customers.list().data[0].id == customer.id
        assert stripe_client.v1.customers.search(params={"query": "email:'late@x.test'"}).data == []
    with StripeSandbox(search_delay=0.2, retry_schedule=FAST_RETRIES) as sb:
        stripe_client = sb.client()
        customer = stripe_client.v1.customers.create(params={"email": "soon@x.test"})
        sb.wait_for_search()
        found = stripe_client.v1.customers.search(params={"query": "email:'soon@x.test'"})
        assert [c.id for c in found.data] == [customer.id]


def test_search_total_count_only_when_expanded(
    stripe_client: stripe.StripeClient, sb: StripeSandbox
) -> None:
    # total_count is included only with expand[]=total_count.
    for i in range(3):
        stripe_client.v1.customers.create(params={"email": f"c{i}@x.test"})
    sb.wait_for_search()
    plain = stripe_client.v1.customers.search(params={"query": "email~'x.test'", "limit": 1})
    assert "total_count" not in plain
    counted = stripe_client.v1.customers.search(
        params={"query": "email~'x.test'", "limit": 1, "expand": ["total_count"]}
    )
    assert counted["total_count"] == 3 and len(counted.data) == 1


def test_search_query_language(stripe_client: stripe.StripeClient, sb: StripeSandbox) -> None:
    # https://docs.stripe.com/search#search-query-language: OR/AND, -negation, ~ substring,
    # numeric comparisons on created, double or single quotes, metadata['key'].
    made = [
        stripe_client.v1.customers.create(
            params={"email": email, "name": name, "metadata": {"tier": tier}}
        )
        for email, name, tier in [
            ("ada@lovelace.test", "Ada Lovelace", "gold"),
            ("grace@hopper.test", "Grace Hopper", "silver"),
            ("alan@turing.test", "Alan Turing", "gold"),
        ]
    ]
    sb.advance(seconds=120)
    later = stripe_client.v1.customers.create(params={"email": "new@x.test", "name": "Newcomer"})
    sb.wait_for_search()

    def emails(query: str) -> set[str]:
        found = stripe_client.v1.customers.search(params={"query": query, "limit": 100})
        return {str(customer.email) for customer in found.data}

    assert emails('email:"ada@lovelace.test" OR name:"Grace Hopper"') == {
        "ada@lovelace.test",
        "grace@hopper.test",
    }
    assert emails("metadata[\"tier\"]:'gold' AND -email:'alan@turing.test'") == {
        "ada@lovelace.test"
    }
    assert emails("name~'ring'") == {"alan@turing.test"}
    assert emails("email:'ADA@LOVELACE.TEST'") == {"ada@lovelace.test"}
    assert emails(f"created>{made[-1].created}") == {"new@x.test"}
    # The three were made before the clock moved, though not always within one second.
    assert emails(f"created<={made[-1].created} AND metadata['tier']:'silver'") == {
        "grace@hopper.test"
    }
    assert emails(f"created>={later.created}") == {"new@x.test"}
    for bad in [
        "email:'a' AND name:'b' OR name:'c'",  # AND and OR may not be mixed
        "name~'ab'",  # a substring needs 3 characters
        "email>5",  # comparisons are for numeric fields
        "balance:'5'",  # not a searchable field of customers
        "email:'unterminated",
    ]:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            stripe_client.v1.customers.search(params={"query": bad})
        assert refused.value.param == "query", bad


# -- Portal pause flow: https://docs.stripe.com/customer-management/portal-deep-links --------


def test_portal_subscription_pause_flow(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    # flow_data.type=subscription_pause deep-links to pausing one subscription; it needs the
    # configuration's subscription_pause feature (API 2026-10-28: billing_portal.session.Flow).
    _, sub = signup(stripe_client, sb, catalog.basic_monthly)
    flow: Any = {"type": "subscription_pause", "subscription_pause": {"subscription": sub.id}}
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.billing_portal.sessions.create(
            params={"customer": str(sub.customer), "flow_data": flow}
        )
    assert refused.value.param == "flow_data[type]"
    features: Any = {"subscription_pause": {"enabled": True}}
    config = stripe_client.v1.billing_portal.configurations.create(params={"features": features})
    session = stripe_client.v1.billing_portal.sessions.create(
        params={
            "customer": str(sub.customer),
            "configuration": config.id,
            "flow_data": {
                **flow,
                "after_completion": {
                    "type": "redirect",
                    "redirect": {"return_url": "http://app.test/paused"},
                },
            },
        }
    )
    assert session.flow is not None and session.flow.type == "subscription_pause"
    assert session.flow.subscription_pause.subscription == sub.id  # type: ignore[union-attr]
    page = requests.get(session.url, timeout=5)
    assert page.status_code == 200 and 'data-testid="confirm-pause"' in page.text
    done = requests.post(
        f"{session.url}/pause", data={"subscription": sub.id}, allow_redirects=False, timeout=5
    )
    assert done.status_code == 303 and done.headers["Location"] == "http://app.test/paused"
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "paused"
    assert "customer.subscription.paused" in [event["type"] for event in sb.events]


# -- Rate limits: https://docs.stripe.com/rate-limits ---------------------------------------


def test_rate_limit_answers_429_with_should_retry() -> None:
    # Over the limit Stripe answers 429 with code rate_limit; the SDK raises RateLimitError.
    with StripeSandbox(rate_limit=2, retry_schedule=FAST_RETRIES) as sb:
        answers = [call(sb, "GET", "/v1/customers") for _ in range(12)]
        limited = [(headers, body) for status, headers, body in answers if status == 429]
        assert limited, "twelve requests in a row never hit a 2 requests/s limit"
        headers, body = limited[0]
        assert body["error"]["code"] == "rate_limit"
        assert headers["Stripe-Should-Retry"] == "true"
        stripe_client = sb.client()
        with pytest.raises(stripe.RateLimitError):
            for _ in range(12):
                stripe_client.v1.customers.list()


def test_the_sdk_retries_a_rate_limited_request() -> None:
    # The SDK retries when Stripe-Should-Retry says so, with max_network_retries.
    with StripeSandbox(rate_limit=2, retry_schedule=FAST_RETRIES) as sb:
        stripe_client = sb.client(max_network_retries=5)
        for index in range(8):
            stripe_client.v1.customers.create(params={"name": f"n{index}"})
        assert len(sb.client(max_network_retries=5).v1.customers.list().data) == 8


def test_rate_limits_are_off_unless_asked_for(sb: StripeSandbox) -> None:
    assert all(call(sb, "GET", "/v1/customers")[0] == 200 for _ in range(60))
