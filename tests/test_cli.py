"""``flask lattice`` commands: events, replay, drain, worker and doctor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask

from flask_lattice.models import Customer
from flask_lattice.webhooks import queue
from flask_lattice.webhooks.worker import build_worker
from tests.helpers.pipeline import deliver, event_statuses, signup
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
    assert result.exit_code == 0 and "enqueued 1 event(s)" in result.output
    run_worker(app)
    assert event_statuses(app)[event_id] == ("processed", 1)
    with app.app_context():
        assert host(app).db.session.scalar(sa.select(Customer.billable_key)) == "user:cli"
    assert cli.invoke(args=["lattice", "replay", "evt_nope"]).exit_code == 1
    assert cli.invoke(args=["lattice", "replay"]).exit_code == 2
    assert cli.invoke(args=["lattice", "replay", event_id, "--failed"]).exit_code == 2


def test_drain_enqueues_only_events_without_a_job(app: Flask, sandbox: Any) -> None:
    _signed_up(app, sandbox)
    cli = app.test_cli_runner()
    assert "enqueued 0 stored event(s)" in cli.invoke(args=["lattice", "drain"]).output
    with app.app_context():
        queue.redis_connection(app).flushdb()  # the queue lost its jobs
    count = len(event_statuses(app))
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
    assert all(attempts == 1 for _, attempts in statuses.values())


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
