"""``flask lattice`` commands: events, replay, drain, worker, doctor, sync and prune."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from flask_lattice.models import Customer, WebhookEvent, utcnow
from flask_lattice.webhooks import queue
from flask_lattice.webhooks.worker import build_worker
from tests.helpers.pipeline import (
    attempted_once,
    deliver,
    event_statuses,
    signup,
    waiting_for_a_job,
)
from tests.helpers.support import host, run_worker


def _signed_up(app: Flask, sandbox: Any) -> dict[str, str]:
    start = len(sandbox.events)
    ids = signup(sandbox, "user:cli")
    deliver(app.test_client(), sandbox.events[start:], sandbox.webhook_secret)
    return ids


def test_events_lists_newest_first_and_filters(app: Flask, sandbox: Any) -> None:
    _signed_up(app, sandbox)
    cli = app.test_cli_runner()
    listing = cli.invoke(args=["lattice", "events", "--limit", "3"])
    assert listing.exit_code == 0
    assert len(listing.output.splitlines()) == 3
    assert "received" in listing.output
    run_worker(app)
    assert "no events" in cli.invoke(args=["lattice", "events", "--status", "received"]).output
    processed = cli.invoke(args=["lattice", "events", "--status", "processed", "--limit", "100"])
    assert "checkout.session.completed" in processed.output


def test_replay_one_event_reprojects_it(app: Flask, sandbox: Any) -> None:
    _signed_up(app, sandbox)
    run_worker(app)
    # The customer's own metadata links it (the session was not created by the app).
    (event_id,) = [event["id"] for event in sandbox.events if event["type"] == "customer.created"]
    with app.app_context():
        session = host(app).db.session
        session.execute(sa.delete(Customer))
        session.commit()
    cli = app.test_cli_runner()
    result = cli.invoke(args=["lattice", "replay", event_id])
    assert result.exit_code == 0, result.output
    assert f"{event_id}  customer.created" in result.output
    assert "applied  attempts=2" in result.output  # the worker's attempt, then the replay
    assert result.output.splitlines()[-1] == "1 applied"
    assert event_statuses(app)[event_id] == ("processed", 2)
    with app.app_context():
        assert host(app).db.session.scalar(sa.select(Customer.billable_key)) == "user:cli"
    missing = cli.invoke(args=["lattice", "replay", "evt_nope"])
    assert missing.exit_code == 1 and "evt_nope  not stored" in missing.output
    bare = cli.invoke(args=["lattice", "replay"])
    assert bare.exit_code == 2
    assert "give the EVENT_ID(s) to replay" in bare.output and "not both" not in bare.output
    both = cli.invoke(args=["lattice", "replay", event_id, "--failed"])
    assert both.exit_code == 2 and "give EVENT_IDs or --failed, not both" in both.output


def test_drain_enqueues_only_events_without_a_job(app: Flask, sandbox: Any) -> None:
    _signed_up(app, sandbox)
    cli = app.test_cli_runner()
    assert "enqueued 0 stored event(s)" in cli.invoke(args=["lattice", "drain"]).output
    with app.app_context():
        queue.redis_connection(app).flushdb()  # the queue lost its jobs
    # Events stored ignored (a type nothing handles) never had a job to lose.
    count = waiting_for_a_job(event_statuses(app))
    assert 0 < count < len(event_statuses(app))
    assert f"enqueued {count} stored event(s)" in cli.invoke(args=["lattice", "drain"]).output
    run_worker(app)
    assert {status for status, _ in event_statuses(app).values()} <= {"processed", "ignored"}
    assert "enqueued 0 stored event(s)" in cli.invoke(args=["lattice", "drain"]).output


def test_worker_burst_processes_the_queue_in_forked_work_horses(app: Flask, sandbox: Any) -> None:
    _signed_up(app, sandbox)
    result = app.test_cli_runner().invoke(args=["lattice", "worker", "--burst", "--name", "cli"])
    assert result.exit_code == 0, result.output
    statuses = event_statuses(app)
    assert {status for status, _ in statuses.values()} <= {"processed", "ignored"}
    assert attempted_once(statuses), statuses


def test_doctor_passes_on_a_sound_setup_with_a_worker(app: Flask, sandbox: Any) -> None:
    worker = build_worker(app, simple=True, name="doctor-check")
    worker.register_birth()
    try:
        result = app.test_cli_runner().invoke(args=["lattice", "doctor"])
    finally:
        worker.register_death()
    assert result.exit_code == 0, result.output
    for check in ("stripe key", "webhook secret", "catalog prices", "redis", "tables", "workers"):
        assert f"OK   {check}" in result.output or f"OK   database {check}" in result.output
    assert "all checks passed" in result.output


def test_doctor_says_what_is_wrong_and_exits_1(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(LATTICE_REDIS_URL="redis://127.0.0.1:9/0")
    with app.app_context():
        host(app).db.session.execute(sa.text("DROP TABLE lattice_prices"))
        host(app).db.session.commit()
    result = app.test_cli_runner().invoke(args=["lattice", "doctor"])
    assert result.exit_code == 1
    output = result.output
    assert "FAIL stripe key" in output
    assert "FAIL redis" in output and "start Redis or fix LATTICE_REDIS_URL" in output
    assert "FAIL database tables: missing table(s): lattice_prices" in output
    assert "FAIL workers" in output
    assert "OK   webhook secret" in output


def test_replay_reports_skipped_and_failed_events(app: Flask, sandbox: Any) -> None:
    _signed_up(app, sandbox)
    run_worker(app)
    client = sandbox.client()
    subscription = [e for e in sandbox.events if e["type"] == "customer.subscription.created"]
    (created,) = subscription
    sandbox.advance(seconds=5)  # the update's event is strictly newer than the creation's
    start = len(sandbox.events)
    client.v1.subscriptions.update(
        created["data"]["object"]["id"], params={"metadata": {"note": "newer"}}
    )
    deliver(app.test_client(), sandbox.events[start:], sandbox.webhook_secret)
    run_worker(app)
    cli = app.test_cli_runner()
    stale = cli.invoke(args=["lattice", "replay", created["id"]])
    assert stale.exit_code == 0, stale.output
    assert "skipped" in stale.output and stale.output.splitlines()[-1] == "1 skipped"
    with app.app_context():
        outcome = host(app).db.session.scalar(
            sa.select(WebhookEvent.outcome).where(WebhookEvent.id == created["id"])
        )
    assert outcome == "skipped"  # recorded for the console's timeline

    with app.app_context():
        session = host(app).db.session
        session.execute(
            sa.update(WebhookEvent)
            .where(WebhookEvent.id == created["id"])
            .values(payload="{not json", status="failed", last_error="earlier")
        )
        session.commit()
    failed = cli.invoke(args=["lattice", "replay", "--failed"])
    assert failed.exit_code == 1
    assert f"{created['id']}  customer.subscription.created" in failed.output
    assert "failed   attempts=3  error=" in failed.output
    assert failed.output.splitlines()[-1] == "1 failed"
    assert event_statuses(app)[created["id"]] == ("failed", 3)
    assert cli.invoke(args=["lattice", "replay", "--failed"]).exit_code == 1
    assert event_statuses(app)[created["id"]] == ("failed", 4)  # the history keeps counting


def test_sync_since_only_takes_newer_objects_and_reports(app: Flask, sandbox: Any) -> None:
    signup(sandbox, "user:old")
    sandbox.advance(days=2)
    later = sandbox.now()
    signup(sandbox, "user:new")
    cli = app.test_cli_runner()
    since = datetime.fromtimestamp(later, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    result = cli.invoke(args=["lattice", "sync", "--since", since])
    assert result.exit_code == 0, result.output
    assert "synced 1 customer(s) and 1 subscription(s)" in result.output
    everything = cli.invoke(args=["lattice", "sync"])
    assert "synced 2 customer(s) and 2 subscription(s)" in everything.output
    both = cli.invoke(args=["lattice", "sync", "--since", "2026-01-01", "--customer", "cus_x"])
    assert both.exit_code == 2 and "cannot be combined" in both.output


def test_prune_deletes_only_old_done_events(app: Flask) -> None:
    now = utcnow()
    rows = {
        "evt_old_done": ("processed", now - timedelta(days=100)),
        "evt_old_ignored": ("ignored", now - timedelta(days=91)),
        "evt_recent_done": ("processed", now - timedelta(days=10)),
        "evt_old_failed": ("failed", None),
        "evt_waiting": ("received", None),
    }
    with app.app_context():
        session = host(app).db.session
        for event_id, (status, processed_at) in rows.items():
            session.add(
                WebhookEvent(
                    id=event_id,
                    type="customer.updated",
                    created=now - timedelta(days=200),
                    received_at=now - timedelta(days=200),
                    payload="{}",
                    status=status,
                    processed_at=processed_at,
                )
            )
        session.commit()
    cli = app.test_cli_runner()
    dry = cli.invoke(args=["lattice", "prune", "--older-than", "90d", "--dry-run"])
    assert dry.output.strip() == "would delete 2 event(s) processed more than 90d ago"
    assert len(event_statuses(app)) == 5
    done = cli.invoke(args=["lattice", "prune", "--older-than", "90d"])
    assert done.output.strip() == "deleted 2 event(s) processed more than 90d ago"
    assert set(event_statuses(app)) == {"evt_recent_done", "evt_old_failed", "evt_waiting"}
    short = cli.invoke(args=["lattice", "prune", "--older-than", "2d"])
    assert short.exit_code == 2 and "at least 3d" in short.output
    bad = cli.invoke(args=["lattice", "prune", "--older-than", "ninety days"])
    assert bad.exit_code == 2 and "is not an age such as 90d" in bad.output
