"""Stripe objects that vanish: a deleted customer, or a stored id Stripe does not have.

Deleting a customer cancels its subscriptions and sends ``customer.deleted``
(https://docs.stripe.com/api/customers/delete). An id can also be unknown to Stripe
after a switch of keys, or after the sandbox restarted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_lattice.models import WebhookEvent
from flask_lattice.testing import ensure_prices
from tests.helpers.lifecycle import EventFeed, customer_rows, recorded_sessions, status_of
from tests.helpers.pipeline import empty_database
from tests.helpers.spine import objects, post_checkout, post_portal, session_id_of, signed_in
from tests.helpers.support import TEST_PRICES, host


def _subscribed(app: Flask, sandbox: Any, plan: str = "team") -> tuple[Any, EventFeed, str]:
    """A signed-in user subscribed to ``plan`` through Checkout, webhooks processed."""
    client, _ = signed_in(app)
    feed = EventFeed(app, sandbox)
    response = post_checkout(client, plan)
    sandbox.complete_checkout(session_id_of(response.headers["Location"]))
    feed.settle()
    assert status_of(client)["active"] is True
    ((_, customer_id, _),) = customer_rows(app)
    return client, feed, customer_id


def test_deleting_the_customer_ends_access_and_the_next_checkout_succeeds(
    app: Flask, sandbox: Any
) -> None:
    client, feed, customer_id = _subscribed(app, sandbox)
    assert status_of(client)["status"] == "trialing"

    sandbox.client().v1.customers.delete(customer_id)  # as in the Dashboard
    delivered = feed.settle()
    assert {"customer.deleted", "customer.subscription.deleted"} <= {
        event["type"] for event in delivered
    }
    with app.app_context():
        failed = host(app).db.session.query(WebhookEvent).filter_by(status="failed").count()
    assert failed == 0
    assert status_of(client) == {
        "plan": "free",
        "plan_name": "Free",
        "status": "canceled",
        "active": False,
    }
    assert customer_rows(app)[0][1:] == (customer_id, True)

    again = post_checkout(client, "team")
    assert again.status_code == 303
    session = sandbox.client().v1.checkout.sessions.retrieve(
        session_id_of(again.headers["Location"])
    )
    assert session.status == "open"
    assert session.customer != customer_id
    ((_, replacement, deleted),) = customer_rows(app)
    assert (replacement, deleted) == (session.customer, False)


def test_the_catalog_trial_is_granted_once_per_billable(app: Flask, sandbox: Any) -> None:
    client, feed, customer_id = _subscribed(app, sandbox, plan="team")  # 14-day trial
    sandbox.client().v1.customers.delete(customer_id)
    feed.settle()
    again = post_checkout(client, "team")
    sandbox.complete_checkout(session_id_of(again.headers["Location"]))
    feed.settle()
    newest = objects(sandbox, "subscription")[0]
    assert newest["customer"] != customer_id
    assert newest["trial_end"] is None
    assert newest["status"] == "active"
    assert status_of(client) == {
        "plan": "team",
        "plan_name": "Team",
        "status": "active",
        "active": True,
    }


@pytest.mark.parametrize("route", ["checkout", "portal"])
def test_a_stale_local_customer_is_replaced_without_a_503(
    app: Flask, sandbox: Any, caplog: pytest.LogCaptureFixture, route: str
) -> None:
    client, _ = signed_in(app)
    post_checkout(client, "pro")
    ((_, stale, _),) = customer_rows(app)
    # As after a switch of keys: Stripe does not have the stored id, and no webhook said so.
    sandbox.client().v1.customers.delete(stale)
    with caplog.at_level(logging.WARNING, logger="flask_lattice"):
        response = post_checkout(client, "pro") if route == "checkout" else post_portal(client)
    assert response.status_code == 303, response.get_data(as_text=True)
    ((_, replacement, deleted),) = customer_rows(app)
    assert replacement != stale and not deleted
    assert [customer["id"] for customer in objects(sandbox, "customer")] == [replacement]
    assert any(
        stale in record.getMessage() and replacement in record.getMessage()
        for record in caplog.records
    )


def test_sync_and_doctor_find_and_heal_vanished_customers(app: Flask, sandbox: Any) -> None:
    client, feed, deleted_id = _subscribed(app, sandbox)
    other, _ = signed_in(app, email="bob@example.com")
    post_checkout(other, "pro")
    stale_id = next(row[1] for row in customer_rows(app) if row[1] != deleted_id)
    # Neither deletion reaches the app as a webhook.
    sandbox.client().v1.customers.delete(deleted_id)
    sandbox.client().v1.customers.delete(stale_id)
    feed.seen = len(sandbox.events)
    assert status_of(client)["active"] is True

    cli = app.test_cli_runner()
    doctor = cli.invoke(args=["lattice", "doctor"])
    assert "FAIL stored customers: 2 stored customer(s) do not exist in Stripe" in doctor.output
    assert "flask lattice sync" in doctor.output

    result = cli.invoke(args=["lattice", "sync"])
    assert result.exit_code == 0, result.output
    assert "2 stored customer(s) no longer exist in Stripe" in result.output
    assert status_of(client)["active"] is False
    assert {row[1]: row[2] for row in customer_rows(app)} == {deleted_id: True, stale_id: True}
    assert "OK   stored customers" in cli.invoke(args=["lattice", "doctor"]).output
    assert post_checkout(client, "pro").status_code == 303


def test_sync_of_an_empty_database_ignores_deleted_customers(app: Flask, sandbox: Any) -> None:
    _, _, customer_id = _subscribed(app, sandbox)
    sandbox.client().v1.customers.delete(customer_id)
    empty_database(app)
    result = app.test_cli_runner().invoke(args=["lattice", "sync"])
    assert result.exit_code == 0, result.output
    assert customer_rows(app) == []


def test_a_restarted_sandbox_does_not_wedge_checkout(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    # Prices are not cached here: their ids change with the restart too.
    app = app_factory(sandbox=sandbox, LATTICE_PRICE_CACHE_SECONDS=0)
    client, _ = signed_in(app)
    first = session_id_of(post_checkout(client, "pro").headers["Location"])
    ((_, stale, _),) = customer_rows(app)
    sandbox.reset()
    ensure_prices(sandbox.client(), TEST_PRICES)
    response = post_checkout(client, "pro")
    assert response.status_code == 303, response.get_data(as_text=True)
    assert session_id_of(response.headers["Location"]) != first
    ((_, replacement, deleted),) = customer_rows(app)
    assert replacement != stale and not deleted
    assert recorded_sessions(app)[first] == "expired"
