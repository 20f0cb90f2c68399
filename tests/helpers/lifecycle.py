"""Helpers for the identity and lifecycle tests: deliver the sandbox's new events through
the webhook route, process them with a worker, and read what the app shows."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_lattice.models import CheckoutSession, Customer, WebhookEvent
from tests.helpers.pipeline import deliver, events_since
from tests.helpers.support import host, run_worker


class EventFeed:
    """The sandbox's events, handed to the app in steps: each :meth:`settle` posts the
    events emitted since the last one to ``/billing/webhook`` and runs a burst worker."""

    def __init__(self, app: Flask, sandbox: Any) -> None:
        self.app = app
        self.sandbox = sandbox
        self.seen = len(sandbox.events)

    def settle(self) -> list[dict[str, Any]]:
        """Deliver and process every new event; returns them (oldest first)."""
        fresh = events_since(self.sandbox, self.seen)
        self.seen += len(fresh)
        deliver(self.app.test_client(), fresh, self.sandbox.webhook_secret)
        run_worker(self.app)
        return fresh


def status_of(client: FlaskClient) -> dict[str, Any]:
    """``/billing/status.json`` for the client's user: plan, status, active (without the
    opaque ``revision``, which tests of the success page check)."""
    response = client.get("/billing/status.json")
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    body.pop("revision", None)
    return body


def recorded_sessions(app: Flask) -> dict[str, str]:
    """Checkout Session id → status, as ``lattice_checkout_sessions`` records them."""
    with app.app_context():
        rows = host(app).db.session.scalars(sa.select(CheckoutSession)).all()
        return {row.stripe_session_id: row.status for row in rows}


def customer_rows(app: Flask) -> list[tuple[str, str, bool]]:
    """Every ``lattice_customers`` row as (billable key, customer id, deleted)."""
    with app.app_context():
        rows = host(app).db.session.scalars(sa.select(Customer).order_by(Customer.id)).all()
        return [(row.billable_key, row.stripe_customer_id, row.deleted) for row in rows]


def stored_event(app: Flask, event_id: str) -> tuple[str, str | None]:
    """A stored webhook event's (status, last_error)."""
    with app.app_context():
        row = host(app).db.session.get(WebhookEvent, event_id)
        assert row is not None, event_id
        return row.status, row.last_error
