"""Webhook delivery: Stripe's signatures, retries, duplicates, shuffling, holding, delay."""

from __future__ import annotations

import json

import pytest
import stripe

from flask_lattice.sandbox import StripeSandbox
from flask_lattice.sandbox.delivery import sign

from .conftest import FAST_RETRIES, Catalog, Receiver, signup


def verify(receiver: Receiver, secret: str) -> list[stripe.Event]:
    return [
        stripe.Webhook.construct_event(body.decode(), headers["Stripe-Signature"], secret)
        for headers, body in receiver.requests
    ]


def test_signature_is_stripes_scheme() -> None:
    payload = b'{"id": "evt_1"}'
    header = sign(payload, "whsec_test", timestamp=1_700_000_000)
    expected = stripe.WebhookSignature._compute_signature(
        f"1700000000.{payload.decode()}", "whsec_test"
    )
    assert header == f"t=1700000000,v1={expected}"


@pytest.mark.ordered_delivery  # counts and orders single deliveries
def test_forward_to_delivers_signed_events(
    sb: StripeSandbox, stripe_client: stripe.StripeClient, catalog: Catalog, receiver: Receiver
) -> None:
    sb.set_forward_to(receiver.url)
    signup(stripe_client, sb, catalog.pro_monthly)
    sb.advance(days=40)
    assert sb.wait_for_deliveries(10)
    events = verify(receiver, sb.webhook_secret)
    delivered = [e.type for e in events]
    ids = {e.id for e in events}
    assert [e.id for e in events] == [e["id"] for e in sb.events if e["id"] in ids]
    assert "checkout.session.completed" in delivered and "invoice.paid" in delivered
    assert {e.id for e in events} <= {e["id"] for e in sb.events}
    sample = events[0]
    assert sample.api_version == "2026-10-28.endive" and sample.livemode is False
    assert sample.pending_webhooks == 1
    log = sb.deliveries
    assert all(d.status == 200 and d.attempt == 1 for d in log)
    assert len(log) == len(events)


@pytest.mark.ordered_delivery  # counts and orders single deliveries
def test_webhook_endpoints_get_their_own_secret_and_filter(
    sb: StripeSandbox, stripe_client: stripe.StripeClient, receiver: Receiver
) -> None:
    endpoint = stripe_client.v1.webhook_endpoints.create(
        params={"url": receiver.url, "enabled_events": ["customer.created"]}
    )
    stripe_client.v1.customers.create()
    stripe_client.v1.products.create(params={"name": "x"})
    assert sb.wait_for_deliveries(5)
    events = verify(receiver, str(endpoint.secret))
    assert [e.type for e in events] == ["customer.created"]


@pytest.mark.ordered_delivery  # counts and orders single deliveries
def test_retry_on_500(
    sb: StripeSandbox, stripe_client: stripe.StripeClient, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    sb.set_forward_to(receiver.url)
    stripe_client.v1.customers.create()
    assert sb.wait_for_deliveries(5)
    assert [(d.attempt, d.status) for d in sb.deliveries] == [(1, 500), (2, 500), (3, 200)]
    assert len({body for _, body in receiver.requests}) == 1


def test_exhausted_retries_give_up(receiver: Receiver) -> None:
    receiver.fail_first = 100
    with StripeSandbox(retry_schedule=(0.01, 0.01), forward_to=receiver.url) as sb:
        sb.client().v1.customers.create()
        assert sb.wait_for_deliveries(5)
        assert [d.attempt for d in sb.deliveries] == [1, 2, 3]


@pytest.mark.ordered_delivery  # counts and orders single deliveries
def test_unreachable_receiver_is_logged(
    sb: StripeSandbox, stripe_client: stripe.StripeClient
) -> None:
    sb.set_forward_to("http://127.0.0.1:9/nowhere")
    stripe_client.v1.customers.create()
    assert sb.wait_for_deliveries(10)
    assert len(sb.deliveries) == len(FAST_RETRIES) + 1
    assert all(d.status is None and d.error for d in sb.deliveries)


def test_duplicate_and_shuffle(receiver: Receiver) -> None:
    with StripeSandbox(forward_to=receiver.url, duplicate=2, shuffle=True, seed=3) as sb:
        stripe_client = sb.client()
        sb.hold_deliveries()
        for index in range(8):
            stripe_client.v1.customers.create(params={"email": f"{index}@x.test"})
        assert not receiver.requests
        sb.release_deliveries()
        assert sb.wait_for_deliveries(5)
        ids = [body["id"] for body in receiver.bodies()]
        emitted = [e["id"] for e in sb.events]
        assert sorted(ids) == sorted(emitted * 2)
        assert ids != [i for i in emitted for _ in range(2)]


def test_chaos_delivers_twice_and_out_of_order(receiver: Receiver) -> None:
    # Stripe "doesn't guarantee delivery of events in the order in which they're generated" and
    # "might occasionally send the same event more than once"
    # (https://docs.stripe.com/webhooks#event-ordering, #handle-duplicate-events).
    with StripeSandbox(forward_to=receiver.url, chaos=True, seed=7) as sb:
        stripe_client = sb.client()
        for index in range(8):
            stripe_client.v1.customers.create(params={"email": f"{index}@x.test"})
        assert sb.wait_for_deliveries(10)
        ids = [body["id"] for body in receiver.bodies()]
        emitted = [e["id"] for e in sb.events]
        assert sorted(ids) == sorted(emitted * 2)
        assert ids != [i for i in emitted for _ in range(2)]
        sb.set_chaos(False)
        receiver.requests.clear()
        stripe_client.v1.customers.create(params={"email": "calm@x.test"})
        assert sb.wait_for_deliveries(10)
        assert [body["id"] for body in receiver.bodies()] == [sb.events[-1]["id"]]


def test_hold_release_and_delay(receiver: Receiver) -> None:
    with StripeSandbox(forward_to=receiver.url, delay=0.2) as sb:
        sb.client().v1.customers.create()
        assert not sb.wait_for_deliveries(0.01)
        assert sb.wait_for_deliveries(5)
        assert len(receiver.requests) == 1
        sb.hold_deliveries()
        sb.client().v1.customers.create()
        assert not sb.wait_for_deliveries(0.3)
        assert len(receiver.requests) == 1
        sb.release_deliveries()
        assert sb.wait_for_deliveries(5)
        assert len(receiver.requests) == 2
        payload = json.loads(receiver.requests[1][1])
        assert payload["type"] == "customer.created"
