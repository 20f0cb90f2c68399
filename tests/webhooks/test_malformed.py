"""Signed events whose object is not what their type promises fail with a one-line reason.

Issue #15: such events used to fail in the worker with bare ``KeyError``/``TypeError``
tracebacks. Now each ends ``failed`` once its retries are spent, with ``last_error``
saying what is wrong, and no projected row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_lattice.models import Subscription, WebhookEvent, utcnow
from tests.helpers.pipeline import post_event
from tests.helpers.support import TEST_WEBHOOK_SECRET, host, run_worker

SUBSCRIPTION = {"id": "sub_malformed", "object": "subscription", "customer": "cus_malformed"}


def an_event(event_type: str, data: Any) -> dict[str, Any]:
    return {
        "id": "evt_malformed",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "api_version": "2026-10-28.endive",
        "data": data,
    }


def without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in mapping.items() if name != key}


@pytest.mark.parametrize(
    ("event_type", "data", "reason"),
    [
        ("customer.subscription.updated", {}, "the event has no data.object"),
        ("customer.subscription.updated", "nothing", "the event has no data.object"),
        (
            "customer.subscription.updated",
            {"object": None},
            "data.object is null, not a subscription object",
        ),
        (
            "customer.subscription.updated",
            {"object": "sub_1"},
            "data.object is a string, not a subscription object",
        ),
        (
            "customer.subscription.updated",
            {"object": [SUBSCRIPTION]},
            "data.object is an array, not a subscription object",
        ),
        (
            "customer.subscription.updated",
            {"object": {**SUBSCRIPTION, "object": "invoice"}},
            "data.object is a 'invoice' object, not a subscription",
        ),
        (
            "customer.subscription.updated",
            {"object": without(SUBSCRIPTION, "customer")},
            "data.object has no customer",
        ),
        (
            "customer.subscription.deleted",
            {"object": {**SUBSCRIPTION, "customer": 42}},
            "data.object.customer is neither a Stripe id nor an object with one",
        ),
        (
            "customer.subscription.created",
            {"object": without(SUBSCRIPTION, "id")},
            "data.object has no id",
        ),
        (
            "customer.subscription.created",
            {"object": {**SUBSCRIPTION, "id": "sub_\u0000"}},
            "data.object.id is not a Stripe id",
        ),
        (
            "invoice.paid",
            {"object": {"id": "in_1", "object": "invoice"}},
            "data.object has no customer",
        ),
        ("customer.updated", {"object": {"object": "customer"}}, "data.object has no id"),
        (
            "checkout.session.completed",
            {"object": {"id": "cs_1", "object": "checkout.session", "customer": ["x"]}},
            "data.object.customer is neither a Stripe id nor an object with one",
        ),
    ],
    ids=[
        "no-data-object",
        "data-not-an-object",
        "object-null",
        "object-a-string",
        "object-an-array",
        "object-of-another-kind",
        "no-customer",
        "customer-a-number",
        "no-id",
        "nul-in-id",
        "invoice-without-customer",
        "customer-without-id",
        "session-customer-a-list",
    ],
)
def test_a_malformed_object_fails_with_a_reason_after_its_retries(
    app_factory: Callable[..., Flask], event_type: str, data: Any, reason: str
) -> None:
    app = app_factory(LATTICE_TRUST_WEBHOOK_PAYLOADS="always-trust")
    response = post_event(app.test_client(), an_event(event_type, data), TEST_WEBHOOK_SECRET)
    assert response.status_code == 200, response.get_data(as_text=True)
    run_worker(app)
    retries = len(app.extensions["lattice"].config.job_retry_intervals)
    with app.app_context():
        session = host(app).db.session
        row = session.get(WebhookEvent, "evt_malformed")
        assert row is not None
        assert (row.status, row.attempts, row.last_error) == ("failed", retries + 1, reason)
        assert session.scalars(sa.select(Subscription)).all() == []
    # Nothing is left to retry: another worker run changes nothing.
    run_worker(app)
    with app.app_context():
        row = host(app).db.session.get(WebhookEvent, "evt_malformed")
        assert row is not None
        assert row.attempts == retries + 1


def test_a_legacy_payload_too_deep_to_parse_fails_with_a_reason(
    app_factory: Callable[..., Flask],
) -> None:
    """An event stored before the route limited depth fails cleanly, not with RecursionError."""
    from flask_lattice.webhooks import queue

    app = app_factory()
    deep = "[" * 5000 + "]" * 5000
    with app.app_context():
        session = host(app).db.session
        session.add(
            WebhookEvent(
                id="evt_legacy_deep",
                type="customer.updated",
                created=utcnow(),
                payload=f'{{"id": "evt_legacy_deep", "type": "customer.updated", "data": {deep}}}',
            )
        )
        session.commit()
        queue.enqueue_event("evt_legacy_deep", app)
    run_worker(app)
    with app.app_context():
        row = host(app).db.session.get(WebhookEvent, "evt_legacy_deep")
        assert row is not None
        assert row.status == "failed"
        assert row.last_error == (
            "the stored payload is not an event: The body nests deeper than 64 levels."
        )
