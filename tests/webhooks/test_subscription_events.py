"""End to end: each operation changes the local row only after its webhook is processed.

The sandbox forwards webhooks to the app served over real HTTP (``live_server``); the
worker runs in bursts, so each test can look at the local row between delivery and
processing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_lattice import signals
from flask_lattice.models import Subscription
from tests.helpers.subscriptions import Subscriber, subscribe
from tests.helpers.support import run_worker

_FIELD = re.compile(
    r'name="(?P<name>preview|plan|interval|subscription|quantity)" value="(?P<value>[^"]*)"'
)


def form_fields(subscriber: Subscriber, preview_path: str) -> dict[str, str]:
    """The confirm form of a swap or seat preview page."""
    page = subscriber.client.get(f"/billing/subscription/{preview_path}")
    assert page.status_code == 200, page.get_data(as_text=True)
    return {m["name"]: m["value"] for m in _FIELD.finditer(page.get_data(as_text=True))}


@pytest.fixture
def provisioned(app: Flask, sandbox: Any, live_server: str) -> Subscriber:
    """A Pro subscriber whose checkout webhooks have been processed."""
    subscriber = subscribe(app, sandbox)
    assert sandbox.wait_for_deliveries()
    run_worker(app)
    row = subscriber.row()
    assert row is not None and row.status == "active" and row.plan_key == "pro"
    return subscriber


def confirmed_by_webhook(
    subscriber: Subscriber,
    operate: Callable[[], Any],
    changed: Callable[[Subscription], bool],
) -> None:
    """Run ``operate``; the row stays as it was until the worker processes the webhook."""
    before = subscriber.row()
    assert before is not None and not changed(before)
    response = operate()
    assert response.status_code == 303, response.get_data(as_text=True)
    assert subscriber.sandbox.wait_for_deliveries()
    unchanged = subscriber.row()
    assert unchanged is not None and not changed(unchanged)
    run_worker(subscriber.app)
    after = subscriber.row()
    assert after is not None and changed(after)


def test_swap_and_quantity_are_confirmed_by_webhook(provisioned: Subscriber) -> None:
    swap = form_fields(provisioned, "swap?plan=team&interval=month")
    confirmed_by_webhook(
        provisioned,
        lambda: provisioned.post("swap", **swap),
        lambda row: row.plan_key == "team",
    )
    seats = form_fields(provisioned, "seats?quantity=4")
    confirmed_by_webhook(
        provisioned,
        lambda: provisioned.post("quantity", **seats),
        lambda row: row.quantity == 4,
    )


def test_cancel_and_resume_are_confirmed_by_webhook(provisioned: Subscriber) -> None:
    confirmed_by_webhook(
        provisioned, lambda: provisioned.post("cancel"), lambda row: row.cancel_at_period_end
    )
    confirmed_by_webhook(
        provisioned,
        lambda: provisioned.post("resume"),
        lambda row: not row.cancel_at_period_end and row.cancel_at is None,
    )


def test_pause_and_unpause_are_confirmed_by_webhook(provisioned: Subscriber) -> None:
    confirmed_by_webhook(
        provisioned,
        lambda: provisioned.post("pause", behavior="keep_as_draft"),
        lambda row: row.pause_collection_behavior == "keep_as_draft",
    )
    confirmed_by_webhook(
        provisioned,
        lambda: provisioned.post("unpause"),
        lambda row: row.pause_collection_behavior is None,
    )


def test_repeating_a_change_after_its_webhook_is_not_collapsed(provisioned: Subscriber) -> None:
    """Without a form token, the last applied webhook scopes the idempotency key."""
    for _ in range(2):
        provisioned.post("cancel")
        provisioned.sandbox.wait_for_deliveries()
        run_worker(provisioned.app)
        provisioned.post("resume")
        provisioned.sandbox.wait_for_deliveries()
        run_worker(provisioned.app)
    provisioned.post("cancel")
    assert provisioned.stripe()["cancel_at_period_end"] is True


def test_trial_will_end_reaches_a_receiver(app: Flask, sandbox: Any, live_server: str) -> None:
    received: list[dict[str, Any]] = []

    def receiver(sender: Flask, **details: Any) -> None:
        received.append(details)

    signals.trial_will_end.connect(receiver, app)
    try:
        subscriber = subscribe(app, sandbox, plan="team")
        assert sandbox.wait_for_deliveries()
        run_worker(app)
        row = subscriber.row()
        assert row is not None and row.status == "trialing" and row.trial_end is not None
        assert received == []
        sandbox.advance(days=11.5)  # the notice goes out three days before the trial ends
        assert sandbox.wait_for_deliveries()
        assert received == []  # delivered and stored, not yet processed
        run_worker(app)
    finally:
        signals.trial_will_end.disconnect(receiver, app)
    assert len(received) == 1
    assert received[0]["billable_key"] == f"user:{subscriber.user_id}"
    assert received[0]["subscription_id"] == subscriber.subscription_id
    assert received[0]["trial_end"] == row.trial_end
