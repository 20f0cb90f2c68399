"""The wire protocol: auth, errors, idempotency, pagination, search, expand, robustness."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_lattice.sandbox import StripeSandbox


def raw(
    sb: StripeSandbox,
    method: str,
    path: str,
    body: bytes | None = None,
    key: str | None = "default",
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if key:
        headers["Authorization"] = f"Bearer {sb.api_key if key == 'default' else key}"
    request = urllib.request.Request(sb.url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def test_authentication_is_required(sb: StripeSandbox) -> None:
    status, headers, body = raw(sb, "GET", "/v1/customers", key=None)
    assert status == 401
    assert b'"invalid_request_error"' in body  # Stripe's type for a 401
    assert headers["Request-Id"].startswith("req_")
    bad = stripe.StripeClient("sk_live_nope", base_addresses={"api": sb.url})
    with pytest.raises(stripe.AuthenticationError):
        bad.v1.customers.list()


def test_error_classes(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.v1.customers.create(params={"bogus": "x"})  # type: ignore[typeddict-unknown-key]
    assert unknown.value.param == "bogus"
    assert "unknown parameter" in unknown.value.user_message  # type: ignore[operator]
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.products.create(params={})  # type: ignore[typeddict-item]
    assert missing.value.param == "name"
    assert missing.value.code == "parameter_missing"
    with pytest.raises(stripe.InvalidRequestError) as wrong_type:
        stripe_client.v1.customers.list(params={"limit": "many"})  # type: ignore[typeddict-item]
    assert wrong_type.value.param == "limit"
    with pytest.raises(stripe.InvalidRequestError) as not_found:
        stripe_client.v1.customers.retrieve("cus_missing")
    assert not_found.value.http_status == 404
    assert not_found.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as enum:
        stripe_client.v1.checkout.sessions.create(params={"mode": "rent"})  # type: ignore[typeddict-item]
    assert enum.value.param == "mode"


def test_card_error_on_attach(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create()
    with pytest.raises(stripe.CardError) as declined:
        stripe_client.v1.payment_methods.attach(
            "pm_card_visa_chargeDeclinedInsufficientFunds", params={"customer": customer.id}
        )
    assert declined.value.code == "card_declined"
    assert declined.value.error.decline_code == "insufficient_funds"  # type: ignore[union-attr]
    with pytest.raises(stripe.CardError) as generic:
        stripe_client.v1.payment_methods.attach(
            "pm_card_chargeDeclined", params={"customer": customer.id}
        )
    assert generic.value.error.decline_code == "generic_decline"  # type: ignore[union-attr]


def test_unknown_url_is_json_404(sb: StripeSandbox) -> None:
    status, _, body = raw(sb, "GET", "/v1/nothing_here")
    assert status == 404
    assert b"Unrecognized request URL" in body


def test_idempotent_replay_and_conflict(stripe_client: stripe.StripeClient) -> None:
    first = stripe_client.v1.customers.create(
        params={"email": "a@example.com"}, options={"idempotency_key": "key-1"}
    )
    again = stripe_client.v1.customers.create(
        params={"email": "a@example.com"}, options={"idempotency_key": "key-1"}
    )
    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(stripe_client.v1.customers.list().data) == 1
    with pytest.raises(stripe.IdempotencyError):
        stripe_client.v1.customers.create(
            params={"email": "b@example.com"}, options={"idempotency_key": "key-1"}
        )


def test_pagination_auto_paging_and_cursors(stripe_client: stripe.StripeClient) -> None:
    ids = [
        stripe_client.v1.customers.create(params={"email": f"c{i}@x.test"}).id for i in range(25)
    ]
    page = stripe_client.v1.customers.list(params={"limit": 10})
    assert page.has_more and page.url == "/v1/customers"
    assert [c.id for c in page.data] == ids[::-1][:10]
    walked = [c.id for c in stripe_client.v1.customers.list(params={"limit": 7}).auto_paging_iter()]
    assert walked == ids[::-1]
    before = stripe_client.v1.customers.list(params={"limit": 3, "ending_before": ids[10]})
    assert [c.id for c in before.data] == ids[13:10:-1]
    last = stripe_client.v1.customers.list(params={"limit": 10, "starting_after": ids[5]})
    assert [c.id for c in last.data] == ids[4::-1] and not last.has_more


def test_search(stripe_client: stripe.StripeClient, sb: StripeSandbox) -> None:
    for i in range(5):
        stripe_client.v1.customers.create(
            params={"email": f"s{i}@x.test", "metadata": {"team": "a" if i % 2 else "b"}}
        )
    sb.wait_for_search()
    hit = stripe_client.v1.customers.search(params={"query": "email:'s3@x.test'"})
    assert hit.object == "search_result" and [c.email for c in hit.data] == ["s3@x.test"]
    both = stripe_client.v1.customers.search(
        params={"query": "metadata['team']:'a' AND email:'s1@x.test'"}
    )
    assert [c.email for c in both.data] == ["s1@x.test"]
    page = stripe_client.v1.customers.search(params={"query": "metadata['team']:'b'", "limit": 2})
    assert page.has_more and page.next_page
    rest = stripe_client.v1.customers.search(
        params={"query": "metadata['team']:'b'", "limit": 2, "page": page.next_page}
    )
    assert len(rest.data) == 1 and not rest.has_more
    everything = stripe_client.v1.customers.search(
        params={"query": "metadata['team']:'b'", "limit": 1}
    ).auto_paging_iter()
    assert len(list(everything)) == 3
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.customers.search(params={"query": "balance>5"})


def test_expand_dotted_and_list(stripe_client: stripe.StripeClient, catalog: object) -> None:
    prices = stripe_client.v1.prices.list(params={"expand": ["data.product"], "limit": 100})
    assert all(p.product.object == "product" for p in prices.data)  # type: ignore[union-attr]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.prices.list(params={"expand": ["data.nope"]})


JUNK = st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=6)
PATHS = [
    "/v1/customers",
    "/v1/subscriptions",
    "/v1/checkout/sessions",
    "/v1/prices",
    "/v1/invoices/create_preview",
    "/v1/billing_portal/sessions",
    "/v1/customers/search",
    "/v1/test_helpers/test_clocks",
    "/v1/webhook_endpoints",
    "/v1/payment_methods",
]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pairs=JUNK, path=st.sampled_from(PATHS), method=st.sampled_from(["GET", "POST"]))
def test_junk_never_500s(
    sb: StripeSandbox, pairs: list[tuple[str, str]], path: str, method: str
) -> None:
    body = "&".join(f"{k}={v}" for k, v in pairs).encode()
    if method == "GET":
        status, _, _ = raw(sb, "GET", path + "?" + urllib.request.quote(body, safe="=&[]"))
    else:
        status, _, _ = raw(sb, "POST", path, body)
    assert status < 500


@pytest.mark.parametrize(
    "body",
    [
        b"a[=1",
        b"metadata=1&metadata[x]=2",
        b"items[0]=x&items[0][price]=y",
        b"expand[0][x]=1",
        b"\xff\xfe=\x00",
        b"limit=999",
        b"line_items[9999999999999]=x",
        b"%%%",
    ],
)
def test_specific_junk(sb: StripeSandbox, body: bytes) -> None:
    for path in PATHS:
        status, _, payload = raw(sb, "POST", path, body)
        assert status < 500, (path, payload)
