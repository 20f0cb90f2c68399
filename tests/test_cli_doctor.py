"""``flask lattice doctor``'s checks of the running pipeline and the local state, and the
success page's warning when nothing processes webhooks."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from rq.utils import utcformat

from flask_lattice.models import Customer, EventStatus, Subscription, WebhookEvent, utcnow
from flask_lattice.web import waiting
from flask_lattice.webhooks.worker import build_worker
from tests.helpers.pipeline import deliver, signup
from tests.helpers.support import host, login, make_user, run_worker


def doctor(app: Flask) -> str:
    return str(app.test_cli_runner().invoke(args=["lattice", "doctor"]).output)


def line(output: str, check: str) -> str:
    """The check's line without its name: ``"FAIL what was found"``."""
    row = next(row for row in output.splitlines() if row[5:].startswith(f"{check}:"))
    return row[:5] + row[5 + len(check) + 2 :]


def test_a_worker_without_a_recent_heartbeat_is_reported(app: Flask) -> None:
    worker = build_worker(app, simple=True, name="stale-heartbeat")
    worker.register_birth()
    try:
        assert line(doctor(app), "worker heartbeat").startswith("OK   ")
        stale = utcnow() - timedelta(seconds=app.config["LATTICE_DRAIN_INTERVAL"] + 120)
        worker.connection.hset(worker.key, "last_heartbeat", utcformat(stale))
        output = doctor(app)
    finally:
        worker.register_death()
    assert line(output, "worker heartbeat").startswith("FAIL no worker has sent a heartbeat")
    assert line(output, "workers").startswith("OK   ")  # registered, but silent


def test_events_stuck_in_received_are_reported(app: Flask) -> None:
    old = utcnow() - timedelta(seconds=app.config["LATTICE_DRAIN_INTERVAL"] + 60)
    with app.app_context():
        session = host(app).db.session
        for event_id, received in (("evt_stuck", old), ("evt_fresh", utcnow())):
            session.add(
                WebhookEvent(
                    id=event_id,
                    type="customer.updated",
                    created=received,
                    payload="{}",
                    received_at=received,
                    status=EventStatus.RECEIVED,
                )
            )
        session.commit()
    found = line(doctor(app), "stuck events")
    assert found.startswith("FAIL 1 event(s) still 'received'")
    assert "oldest evt_stuck" in found


def test_customers_the_key_cannot_retrieve_are_reported(app: Flask, sandbox: Any) -> None:
    start = len(sandbox.events)
    ids = signup(sandbox, "user:kept")
    deliver(app.test_client(), sandbox.events[start:], sandbox.webhook_secret)
    run_worker(app)
    assert line(doctor(app), "stored customers").startswith("OK   every stored customer")

    gone = sandbox.client().v1.customers.create(params={"email": "gone@example.com"})
    sandbox.client().v1.customers.delete(gone.id)
    with app.app_context():
        session = host(app).db.session
        session.add(Customer(billable_key="user:gone", stripe_customer_id=gone.id))
        session.add(Customer(billable_key="user:other", stripe_customer_id="cus_otheraccount"))
        session.commit()
    found = line(doctor(app), "stored customers")
    assert found.startswith("FAIL 2 stored customer(s) do not exist in Stripe")
    assert gone.id in found and "cus_otheraccount" in found and ids["customer"] not in found


def test_billables_with_two_live_subscriptions_are_reported(app: Flask) -> None:
    with app.app_context():
        session = host(app).db.session
        for index, (key, status) in enumerate(
            [
                ("user:1", "active"),
                ("user:1", "past_due"),
                ("user:2", "active"),
                ("user:2", "canceled"),
            ]
        ):
            session.add(
                Subscription(
                    stripe_subscription_id=f"sub_{index}",
                    stripe_customer_id=f"cus_{key}",
                    billable_key=key,
                    status=status,
                )
            )
        session.commit()
    found = line(doctor(app), "one live subscription per billable")
    assert found == "FAIL 1 billable(s) with more than one live subscription: user:1 (2)"


def test_checks_of_missing_tables_fail_instead_of_crashing(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory()
    with app.app_context():
        host(app).db.session.execute(sa.text("DROP TABLE lattice_subscription_items"))
        host(app).db.session.execute(sa.text("DROP TABLE lattice_subscriptions"))
        host(app).db.session.commit()
    output = doctor(app)
    assert line(output, "one live subscription per billable").startswith(
        "FAIL cannot read the tables"
    )


@pytest.fixture
def fresh_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waiting, "_throttle", waiting._Throttle(waiting.CHECK_EVERY))


def poll(app: Flask, since: str) -> int:
    client = app.test_client()
    login(client, make_user(app, email=f"{time.time_ns()}@example.com"))
    return client.get(f"/billing/status.json?waiting_since={since}").status_code


def test_success_page_polls_warn_when_no_worker_is_alive(
    app: Flask, caplog: pytest.LogCaptureFixture, fresh_throttle: None
) -> None:
    caplog.set_level(logging.WARNING, logger="flask_lattice.web.waiting")
    assert poll(app, str(int(time.time()))) == 200  # just rendered: no warning
    for bad in ("abc", "nan", "inf", "-inf", ""):
        assert poll(app, bad) == 200
    assert caplog.records == []
    long_ago = str(int(time.time()) - app.config["LATTICE_SUCCESS_WAIT_WARNING"] - 5)
    assert poll(app, long_ago) == 200
    assert poll(app, long_ago) == 200  # throttled: one warning a minute
    assert [record.getMessage() for record in caplog.records] == [caplog.records[0].getMessage()]
    assert "no lattice worker is alive" in caplog.records[0].getMessage()


def test_success_page_polls_do_not_warn_while_a_worker_runs(
    app: Flask, caplog: pytest.LogCaptureFixture, fresh_throttle: None
) -> None:
    worker = build_worker(app, simple=True, name="alive")
    worker.register_birth()
    try:
        long_ago = str(int(time.time()) - app.config["LATTICE_SUCCESS_WAIT_WARNING"] - 5)
        assert poll(app, long_ago) == 200
    finally:
        worker.register_death()
    assert [r for r in caplog.records if r.name == "flask_lattice.web.waiting"] == []
