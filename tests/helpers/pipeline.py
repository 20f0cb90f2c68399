"""Helpers for the webhook pipeline tests: signed posts, sandbox scenarios, snapshots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_lattice.models import Base, Customer, Invoice, Subscription, WebhookEvent
from flask_lattice.testing import sign_payload
from flask_lattice.webhooks import queue
from tests.helpers.pipeline_app import config_env
from tests.helpers.support import host

REPO_ROOT = Path(__file__).resolve().parents[2]

JSON = dict[str, Any]
PRICE_LOOKUP = "pro_monthly"


def post_event(
    client: FlaskClient, event: JSON | bytes, secret: str, *, timestamp: int | None = None
) -> TestResponse:
    """POST ``event`` to the webhook route, signed with ``secret`` as Stripe signs."""
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    return client.post(
        "/billing/webhook",
        data=body,
        headers={"Stripe-Signature": sign_payload(body, secret, timestamp=timestamp)},
        content_type="application/json",
    )


def bare_event(event_id: str, event_type: str, created: int) -> JSON:
    """An event of ``event_type`` whose object is only an id: for types the projection
    does not take (an ``on_event`` handler may)."""
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": created,
        "livemode": False,
        "data": {"object": {"id": "issfr_1"}},
    }


def price_ids(sandbox: Any) -> dict[str, str]:
    """Lookup key → price id of the seeded catalog."""
    listed = sandbox.client().v1.prices.list(params={"limit": 100})
    return {price.lookup_key: price.id for price in listed.data if price.lookup_key}


def signup(
    sandbox: Any, billable_key: str = "user:1", lookup_key: str = PRICE_LOOKUP
) -> dict[str, str]:
    """A customer (linked to ``billable_key``) pays a Checkout Session; returns ids."""
    client = sandbox.client()
    customer = client.v1.customers.create(
        params={
            "email": f"{billable_key.replace(':', '')}@example.com",
            "metadata": {"lattice_billable": billable_key},
        }
    )
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price_ids(sandbox)[lookup_key], "quantity": 1}],
            "success_url": "http://127.0.0.1/billing/success?session_id={CHECKOUT_SESSION_ID}",
            "client_reference_id": billable_key,
        }
    )
    sandbox.complete_checkout(session.id)
    subscription = client.v1.checkout.sessions.retrieve(session.id).subscription
    return {"customer": customer.id, "subscription": subscription, "session": session.id}


def events_since(sandbox: Any, start: int) -> list[JSON]:
    """The sandbox's events from index ``start`` on, oldest first."""
    events: list[JSON] = sandbox.events[start:]
    return events


def snapshot(app: Flask) -> JSON:
    """The projected state, without surrogate keys and bookkeeping: timestamps, and the
    watermark, which depends on the order the events came in and on which of them
    needed a fetch (an ``invoice.paid`` that needs none leaves it where it was)."""
    skip = {
        "id",
        "created_at",
        "updated_at",
        "watermark_created",
        "watermark_event_id",
        "fetched_at",
        "subscription_id",
    }
    with app.app_context():
        session = host(app).db.session

        def rows(model: Any, order: Any) -> list[JSON]:
            return [
                {
                    column.key: getattr(row, column.key)
                    for column in sa.inspect(model).columns
                    if column.key not in skip
                }
                for row in session.scalars(sa.select(model).order_by(order))
            ]

        subscriptions = rows(Subscription, Subscription.stripe_subscription_id)
        for item, row in zip(
            subscriptions,
            session.scalars(sa.select(Subscription).order_by(Subscription.stripe_subscription_id)),
            strict=True,
        ):
            item["items"] = sorted(
                (entry.stripe_item_id, entry.price_id, entry.quantity, entry.current_period_end)
                for entry in row.items
            )
        return {
            "customers": rows(Customer, Customer.stripe_customer_id),
            "subscriptions": subscriptions,
            "invoices": rows(Invoice, Invoice.stripe_invoice_id),
        }


def event_statuses(app: Flask) -> dict[str, tuple[str, int]]:
    """Event id → (status, attempts) of every stored event."""
    with app.app_context():
        session = host(app).db.session
        return {
            row.id: (row.status, row.attempts) for row in session.scalars(sa.select(WebhookEvent))
        }


def attempted_once(statuses: dict[str, tuple[str, int]]) -> bool:
    """Each event of :func:`event_statuses` had the attempts of one processing: one when a
    job processed it, none when the route stored it ``ignored`` (a type nothing handles,
    which gets no job)."""
    return all(
        attempts == (0 if status == "ignored" else 1) for status, attempts in statuses.values()
    )


def waiting_for_a_job(statuses: dict[str, tuple[str, int]]) -> int:
    """How many events of :func:`event_statuses` are ``received``: stored with a job to
    run (an event of a type nothing handles is stored ``ignored``, with none)."""
    return sum(status == "received" for status, _ in statuses.values())


def deliver(
    client: FlaskClient,
    events: Iterable[JSON],
    secret: str,
    check: Callable[[int], bool] | None = None,
) -> None:
    """Post each event; every answer must be 200."""
    for event in events:
        response = post_event(client, event, secret)
        assert response.status_code == 200, response.get_data(as_text=True)


def start_worker(app: Flask, log: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    """Run ``flask lattice worker`` for an app like ``app`` in a new process group.

    Its output goes to the file ``log``.
    """
    environment = {**os.environ, **config_env(app), **env}
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "lattice", "worker", *args],
            cwd=REPO_ROOT,
            env=environment,
            start_new_session=True,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.1)


def empty_database(app: Flask) -> None:
    """Delete every lattice row and flush the queue: a fresh database for a replay."""
    with app.app_context():
        session = host(app).db.session
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())
        session.commit()
        queue.redis_connection(app).flushdb()


def switch_price(sandbox: Any, subscription_id: str, lookup_key: str) -> None:
    """Move the subscription's only item to the price ``lookup_key``, with prorations."""
    client = sandbox.client()
    item = client.v1.subscriptions.retrieve(subscription_id)["items"].data[0]
    client.v1.subscriptions.update(
        subscription_id,
        params={
            "items": [{"id": item.id, "price": price_ids(sandbox)[lookup_key]}],
            "proration_behavior": "create_prorations",
        },
    )
