"""Who owns a customer is the app's record, and only what Stripe confirms is projected.

``client_reference_id`` and metadata of a Checkout Session are set by whoever creates it;
Payment Links and pricing tables let the buyer set ``client_reference_id``
(https://docs.stripe.com/payment-links/url-parameters). They never move a customer.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_lattice import signals
from flask_lattice.models import Invoice, Subscription
from tests.helpers.lifecycle import EventFeed, customer_rows, status_of, stored_event
from tests.helpers.pipeline import post_event, price_ids
from tests.helpers.spine import post_checkout, signed_in
from tests.helpers.support import host, run_worker


def _foreign_session(sandbox: Any, claimed_by: str, customer: str | None = None) -> str:
    """A Checkout Session the app did not create, claiming ``claimed_by`` everywhere."""
    claim = {"lattice_billable": claimed_by}
    params: dict[str, Any] = {
        "mode": "subscription",
        "line_items": [{"price": price_ids(sandbox)["pro_monthly"], "quantity": 1}],
        "success_url": "https://example.com/done",
        "client_reference_id": claimed_by,
        "metadata": claim,
        "subscription_data": {"metadata": claim},
    }
    if customer is not None:
        params["customer"] = customer
    session_id: str = sandbox.client().v1.checkout.sessions.create(params=params).id
    return session_id


def _subscriptions(app: Flask) -> list[tuple[str | None, str]]:
    with app.app_context():
        rows = host(app).db.session.scalars(sa.select(Subscription)).all()
        return [(row.billable_key, row.status) for row in rows]


def test_a_session_naming_bob_on_alices_customer_leaves_bob_on_free(
    app: Flask, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    alice, alice_id = signed_in(app, email="alice@example.com")
    bob, bob_id = signed_in(app, email="bob@example.com")
    post_checkout(alice, "pro")  # Alice's customer is created and recorded
    ((_, alice_customer, _),) = customer_rows(app)
    feed = EventFeed(app, sandbox)
    conflicts: list[dict[str, Any]] = []

    def on_conflict(sender: Flask, **details: Any) -> None:
        conflicts.append(details)

    hijack = _foreign_session(sandbox, f"user:{bob_id}", customer=alice_customer)
    sandbox.complete_checkout(hijack)
    with (
        signals.ownership_conflict.connected_to(on_conflict, app),
        caplog.at_level(logging.WARNING, logger="flask_lattice"),
    ):
        feed.settle()

    assert status_of(bob) == {"plan": "free", "plan_name": "Free", "status": None, "active": False}
    assert status_of(alice)["plan"] == "pro"  # Alice's card pays for Alice's subscription
    assert customer_rows(app) == [(f"user:{alice_id}", alice_customer, False)]
    assert _subscriptions(app) == [(f"user:{alice_id}", "active")]
    assert conflicts == [
        {
            "customer_id": alice_customer,
            "owner": f"user:{alice_id}",
            "claimed_by": f"user:{bob_id}",
            "source": f"client_reference_id of checkout session {hijack}",
        }
    ]
    assert any(
        "ownership conflict" in record.getMessage() and alice_customer in record.getMessage()
        for record in caplog.records
    )


def test_a_session_the_app_did_not_create_links_nobody_by_default(app: Flask, sandbox: Any) -> None:
    bob, bob_id = signed_in(app, email="bob@example.com")
    feed = EventFeed(app, sandbox)
    sandbox.complete_checkout(_foreign_session(sandbox, f"user:{bob_id}"))
    feed.settle()
    assert status_of(bob)["plan"] == "free"
    assert customer_rows(app) == []
    assert _subscriptions(app) == [(None, "active")]


def test_the_checkout_owner_hook_decides_for_foreign_sessions(app: Flask, sandbox: Any) -> None:
    bob, bob_id = signed_in(app, email="bob@example.com")
    seen: list[str] = []

    @host(app).billing.checkout_owner
    def owner(session: dict[str, Any]) -> str | None:
        seen.append(session["id"])
        return (
            f"user:{bob_id}" if session["customer_details"]["email"] == "bob@example.com" else None
        )

    feed = EventFeed(app, sandbox)
    session_id = _foreign_session(sandbox, "user:somebody-else")
    sandbox.complete_checkout(session_id, email="bob@example.com")
    feed.settle()
    assert seen == [session_id]
    assert status_of(bob)["plan"] == "pro"
    ((billable, _, deleted),) = customer_rows(app)
    assert (billable, deleted) == (f"user:{bob_id}", False)


# -- mode and content --------------------------------------------------------------------


def test_a_live_mode_event_is_ignored_with_the_reason(app: Flask, sandbox: Any) -> None:
    client, _ = signed_in(app)
    feed = EventFeed(app, sandbox)
    post_checkout(client, "pro")
    created = next(e for e in sandbox.events if e["type"] == "customer.created")
    live = copy.deepcopy(created)
    live["id"], live["livemode"] = "evt_live_in_test_mode", True
    live["data"]["object"]["livemode"] = True
    assert post_event(app.test_client(), live, sandbox.webhook_secret).status_code == 200
    feed.seen = len(sandbox.events)
    run_worker(app)
    status, reason = stored_event(app, "evt_live_in_test_mode")
    assert status == "ignored"
    assert reason == "a live-mode event; this app uses a test-mode key"


def test_an_object_stripe_does_not_know_is_never_projected_from_the_payload(
    app: Flask, sandbox: Any
) -> None:
    client, _ = signed_in(app)
    feed = EventFeed(app, sandbox)
    post_checkout(client, "pro")
    feed.settle()
    ((_, customer_id, _),) = customer_rows(app)
    forged = {
        "id": "evt_unknown_subscription",
        "object": "event",
        "type": "customer.subscription.created",
        "created": sandbox.now(),
        "livemode": False,
        "api_version": "2026-10-28.endive",
        "data": {
            "object": {
                "id": "sub_not_in_stripe",
                "object": "subscription",
                "customer": customer_id,
                "status": "active",
                "livemode": False,
                "items": {"object": "list", "data": [], "has_more": False},
            }
        },
    }
    assert post_event(app.test_client(), forged, sandbox.webhook_secret).status_code == 200
    run_worker(app)
    assert stored_event(app, "evt_unknown_subscription") == ("processed", None)
    assert _subscriptions(app) == []
    assert status_of(client)["plan"] == "free"


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "http://evil.example/pay", "data:text/html,x"],
)
def test_an_invoice_url_that_is_not_https_is_not_stored(
    app_factory: Callable[..., Flask], sandbox: Any, url: str
) -> None:
    app = app_factory(sandbox=sandbox, LATTICE_TRUST_WEBHOOK_PAYLOADS="always-trust")
    client, _ = signed_in(app)
    feed = EventFeed(app, sandbox)
    response = post_checkout(client, "pro")
    sandbox.complete_checkout(response.headers["Location"].rsplit("/", 1)[1])
    feed.settle()
    paid = next(e for e in sandbox.events if e["type"] == "invoice.paid")
    invoice_id = paid["data"]["object"]["id"]
    with app.app_context():
        stored = host(app).db.session.scalar(
            sa.select(Invoice.hosted_invoice_url).where(Invoice.stripe_invoice_id == invoice_id)
        )
    assert stored is not None and stored.startswith(sandbox.url + "/")  # the sandbox base

    tampered = copy.deepcopy(paid)
    tampered["id"] = "evt_tampered_invoice_url"
    tampered["created"] = paid["created"] + 1
    tampered["data"]["object"]["hosted_invoice_url"] = url
    assert post_event(app.test_client(), tampered, sandbox.webhook_secret).status_code == 200
    run_worker(app)
    with app.app_context():
        stored = host(app).db.session.scalar(
            sa.select(Invoice.hosted_invoice_url).where(Invoice.stripe_invoice_id == invoice_id)
        )
    assert stored is None


def test_the_success_page_of_a_session_merely_naming_bob_is_not_found(
    app: Flask, sandbox: Any
) -> None:
    bob, bob_id = signed_in(app, email="bob@example.com")
    session_id = _foreign_session(sandbox, f"user:{bob_id}")
    response = bob.get(f"/billing/success?session_id={session_id}")
    assert response.status_code == 404
