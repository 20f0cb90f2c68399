"""Console writes: replay, replay of failed events by type, drain, recover, resync.

Each goes through the same function as the CLI and leaves an audit row and a signal.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_lattice import signals
from flask_lattice.models import AdminAudit, Customer, Subscription, WebhookEvent
from flask_lattice.webhooks import queue
from flask_lattice.webhooks.projection import handled_types
from tests.admin.conftest import Console
from tests.admin.helpers import PREFIX, post
from tests.helpers.pipeline import deliver, event_statuses, signup, waiting_for_a_job
from tests.helpers.support import host, locked_for_writes, run_worker

CHECKOUT = "checkout.session.completed"


def _failing_checkouts(console: Console, sandbox: Any, *billables: str) -> dict[str, str]:
    """Sign ``billables`` up; their checkout events fail until the returned flag is off."""
    app = console.app
    broken = {"on": True}

    @host(app).billing.on_event(CHECKOUT)
    def flaky(event: dict[str, Any]) -> None:
        if broken["on"]:
            raise RuntimeError("the host's handler is broken")

    start = len(sandbox.events)
    for key in billables:
        signup(sandbox, key)
    deliver(app.test_client(), sandbox.events[start:], sandbox.webhook_secret)
    run_worker(app)
    checkouts = {}
    with app.app_context():
        for event in sandbox.events[start:]:
            if event["type"] == CHECKOUT:
                key = event["data"]["object"]["metadata"].get("lattice_billable") or ""
                checkouts[event["id"]] = key
    broken["on"] = False
    return checkouts


def _audit(app: Flask) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    with app.app_context():
        rows = host(app).db.session.scalars(sa.select(AdminAudit).order_by(AdminAudit.id))
        return [(row.actor, row.action, row.target, row.parameters) for row in rows]


def _backdate_audit(app: Flask, by: timedelta) -> None:
    """Move every audit row back in time, as if ``by`` had passed since."""
    with app.app_context():
        session = host(app).db.session
        for row in session.scalars(sa.select(AdminAudit)):
            row.created_at = row.created_at - by
        session.commit()


def _event_row(app: Flask, event_id: str) -> tuple[str, int, str | None]:
    with app.app_context():
        row = host(app).db.session.get(WebhookEvent, event_id)
        assert row is not None
        return row.status, row.attempts, row.last_error


def test_a_failed_event_is_found_read_and_replayed_like_the_cli(
    console: Console, sandbox: Any
) -> None:
    app = console.app
    failed = _failing_checkouts(console, sandbox, "user:a", "user:b")
    assert len(failed) == 2
    by_cli, by_console = sorted(failed)
    assert {event_statuses(app)[event_id][0] for event_id in failed} == {"failed"}

    listing = console.operator.get(f"{PREFIX}/events?status=failed").get_data(as_text=True)
    assert by_cli in listing and by_console in listing
    page = console.operator.get(f"{PREFIX}/events/{by_console}").get_data(as_text=True)
    assert "the host&#39;s handler is broken" in page

    sent: list[dict[str, Any]] = []
    signals.admin_action.connect(lambda sender, **kw: sent.append(kw), app, weak=False)
    cli = app.test_cli_runner().invoke(args=["lattice", "replay", by_cli])
    assert cli.exit_code == 0, cli.output
    response = post(console.operator, f"/events/{by_console}/replay")
    assert response.status_code == 303
    # Both paths process the event now, in the caller's process: one more attempt each,
    # and the same row afterwards.
    cli_row, console_row = _event_row(app, by_cli), _event_row(app, by_console)
    assert cli_row == console_row
    assert cli_row[0] == "processed" and cli_row[2] is None
    with app.app_context():
        keys = host(app).db.session.scalars(sa.select(Customer.billable_key)).all()
    assert sorted(keys) == ["user:a", "user:b"]
    assert "processed" in console.operator.get(f"{PREFIX}/events/{by_console}").get_data(
        as_text=True
    )
    assert _audit(app) == [("user:1", "replay", by_console, {})]
    assert sent == [
        {
            "actor": "user:1",
            "action": "replay",
            "target": by_console,
            "parameters": {},
            "audit_id": 1,
        }
    ]


def test_replay_all_failed_of_a_type_counts_first_and_respects_the_cap(
    console: Console, sandbox: Any
) -> None:
    app = console.app
    failed = _failing_checkouts(console, sandbox, "user:a", "user:b", "user:c")
    dry_run = post(console.operator, "/failed/replay", type=CHECKOUT, cap="2")
    assert dry_run.status_code == 200
    assert "2 failed event(s) of this type would be replayed" in dry_run.get_data(as_text=True)
    assert {event_statuses(app)[event_id][0] for event_id in failed} == {"failed"}
    assert _audit(app) == []
    assert post(console.operator, "/failed/replay", type=CHECKOUT, cap="0").status_code == 400
    assert post(console.operator, "/failed/replay", type=CHECKOUT, cap="x").status_code == 400
    done = post(console.operator, "/failed/replay", type=CHECKOUT, cap="2", confirm="yes")
    assert done.status_code == 303
    run_worker(app)
    statuses = sorted(event_statuses(app)[event_id][0] for event_id in failed)
    assert statuses == ["failed", "processed", "processed"]
    ((actor, action, target, parameters),) = _audit(app)
    assert (actor, action, target) == ("user:1", "replay-failed", CHECKOUT)
    assert parameters["cap"] == 2 and parameters["count"] == 2
    # The remaining one, through the CLI's --failed: the same function picks it.
    assert app.test_cli_runner().invoke(args=["lattice", "replay", "--failed"]).exit_code == 0
    run_worker(app)
    assert {event_statuses(app)[event_id][0] for event_id in failed} == {"processed"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_action_is_answered_503_while_the_database_is_locked(console: Console) -> None:
    with locked_for_writes(console.app):
        refused = post(console.operator, "/drain")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "5"
    assert _audit(console.app) == []
    assert post(console.operator, "/drain").status_code == 303
    assert [row[1] for row in _audit(console.app)] == ["drain"]


def test_drain_now_enqueues_what_lost_its_job(console: Console, sandbox: Any) -> None:
    app = console.app
    start = len(sandbox.events)
    signup(sandbox, "user:a")
    deliver(app.test_client(), sandbox.events[start:], sandbox.webhook_secret)
    with app.app_context():
        queue.flush_enqueued(app)
        queue.redis_connection(app).flushdb()  # the queue lost its jobs
    # Events stored ignored (a type nothing handles) never had a job to lose.
    count = waiting_for_a_job(event_statuses(app))
    assert 0 < count < len(event_statuses(app))
    response = post(console.operator, "/drain")
    assert response.status_code == 303
    run_worker(app)
    assert {status for status, _ in event_statuses(app).values()} <= {"processed", "ignored"}
    assert _audit(app) == [("user:1", "drain", None, {"count": count})]


def test_recover_stores_undelivered_events_once(console: Console, sandbox: Any) -> None:
    app = console.app
    # Stripe could not reach the endpoint: every delivery fails.
    sandbox.set_forward_to("http://127.0.0.1:9/billing/webhook")
    start = len(sandbox.events)
    signup(sandbox, "user:a")
    missed = sandbox.events[start:]
    assert missed and event_statuses(app) == {}
    response = post(console.operator, "/recover")
    assert response.status_code == 303
    stored = event_statuses(app)
    assert set(stored) == {event["id"] for event in missed}
    with app.app_context():
        rows = host(app).db.session.scalars(sa.select(WebhookEvent)).all()
        # The same rows the webhook route stores: the event JSON, unprocessed (received),
        # or ignored when nothing handles its type.
        handled = handled_types()
        for row in rows:
            original = next(event for event in missed if event["id"] == row.id)
            assert json.loads(row.payload) == original
            status = "received" if row.type in handled else "ignored"
            assert (row.type, row.status, row.attempts) == (original["type"], status, 0)
            assert row.object_id == original["data"]["object"]["id"]
    run_worker(app)
    with app.app_context():
        assert host(app).db.session.scalar(sa.select(Customer.billable_key)) == "user:a"
        assert host(app).db.session.scalar(sa.select(sa.func.count(Subscription.id))) == 1
    before = event_statuses(app)
    too_soon = post(console.operator, "/recover")  # it pages through Stripe: once a minute
    assert too_soon.status_code == 429 and int(too_soon.headers["Retry-After"]) > 0
    _backdate_audit(app, timedelta(minutes=2))
    assert post(console.operator, "/recover").status_code == 303
    assert event_statuses(app) == before  # nothing added, nothing reset
    first, second = _audit(app)
    assert first[:3] == second[:3] == ("user:1", "recover", None)
    assert sorted(first[3]["stored"]) == sorted(event["id"] for event in missed)
    assert first[3]["listed"] == second[3]["listed"] == len(missed)
    assert second[3]["stored"] == []


def test_a_billable_page_resyncs_its_customer(console: Console, sandbox: Any) -> None:
    app = console.app
    start = len(sandbox.events)
    ids = signup(sandbox, "user:a")
    deliver(app.test_client(), sandbox.events[start:], sandbox.webhook_secret)
    run_worker(app)
    page = console.operator.get(f"{PREFIX}/billables/user:a")
    assert page.status_code == 200 and ids["customer"] in page.get_data(as_text=True)
    with app.app_context():
        session = host(app).db.session
        session.execute(sa.update(Subscription).values(status="canceled"))
        session.commit()
    assert post(console.operator, "/billables/user:a/resync").status_code == 303
    with app.app_context():
        assert host(app).db.session.scalar(sa.select(Subscription.status)) == "active"
    ((_, action, target, parameters),) = _audit(app)
    assert (action, target, parameters["subscriptions"]) == ("resync", ids["customer"], 1)
    assert post(console.operator, "/billables/user:a/resync").status_code == 429
    assert len(_audit(app)) == 1
    assert console.operator.get(f"{PREFIX}/billables/user:nobody").status_code == 404


def _inbox(app: Flask) -> list[tuple[Any, ...]]:
    with app.app_context():
        rows = host(app).db.session.scalars(sa.select(WebhookEvent).order_by(WebhookEvent.id))
        return [
            (row.id, row.type, row.created, row.object_id, row.payload, row.status, row.attempts)
            for row in rows
        ]


def test_recover_stores_the_same_rows_as_the_cli(console: Console, sandbox: Any) -> None:
    app = console.app
    sandbox.set_forward_to("http://127.0.0.1:9/billing/webhook")
    signup(sandbox, "user:a")
    result = app.test_cli_runner().invoke(args=["lattice", "recover"])
    assert result.exit_code == 0, result.output
    by_cli = _inbox(app)
    assert by_cli and f"stored {len(by_cli)} of {len(by_cli)} undelivered" in result.output
    with app.app_context():
        queue.flush_enqueued(app)
        session = host(app).db.session
        session.execute(sa.delete(WebhookEvent))
        session.commit()
    assert post(console.operator, "/recover").status_code == 303
    assert _inbox(app) == by_cli
    again = app.test_cli_runner().invoke(args=["lattice", "recover"])
    assert f"stored 0 of {len(by_cli)} undelivered" in again.output
