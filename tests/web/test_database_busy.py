"""A database that stays locked past its busy timeout: the routes answer 503, never 500.

SQLite only, where another process's write locks the whole file and SQLite gives up after
the busy timeout with "database is locked". Stripe retries a webhook that got a 503, and
a person can send the form again; nothing of the refused request was written.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_lattice import DatabaseBusy
from flask_lattice.web.http import database_busy
from tests.helpers.pipeline import post_event
from tests.helpers.spine import csrf_token, signed_in
from tests.helpers.support import host, locked_for_writes

on_sqlite = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def _event(event_id: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": "customer.subscription.updated",
        "created": int(time.time()),
        "livemode": False,
        "api_version": "2025-09-30.clover",
        "data": {"object": {"id": "sub_busy", "object": "subscription"}},
    }


def _stored_events(app: Flask) -> list[str]:
    with app.app_context():
        return list(host(app).db.session.scalars(sa.text("SELECT id FROM lattice_webhook_events")))


@on_sqlite
def test_a_webhook_is_answered_503_then_stored_when_stripe_retries(app: Flask) -> None:
    secret = app.config["LATTICE_WEBHOOK_SECRETS"][0]
    client = app.test_client()
    with locked_for_writes(app):
        refused = post_event(client, _event("evt_busy_1"), secret)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == str(DatabaseBusy.retry_after)
    assert _stored_events(app) == []
    assert post_event(client, _event("evt_busy_1"), secret).status_code == 200
    assert _stored_events(app) == ["evt_busy_1"]


@on_sqlite
def test_checkout_is_answered_503_and_works_once_the_lock_is_gone(app: Flask, sandbox: Any) -> None:
    client, _ = signed_in(app)
    form = {"plan": "pro", "interval": "month", "csrf_token": csrf_token(client)}
    with locked_for_writes(app):
        refused = client.post("/billing/checkout", data=form)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "5"
    assert "try again" in refused.get_data(as_text=True)
    accepted = client.post("/billing/checkout", data=form)
    assert accepted.status_code == 303


@on_sqlite
def test_a_host_handler_for_the_503_answers_it(app: Flask, sandbox: Any) -> None:
    @app.errorhandler(DatabaseBusy)
    def busy(error: DatabaseBusy) -> tuple[dict[str, str], int]:
        return {"error": "busy"}, 503

    client, _ = signed_in(app)
    form = {"plan": "pro", "interval": "month", "csrf_token": csrf_token(client)}
    with locked_for_writes(app):
        refused = client.post("/billing/checkout", data=form)
    assert (refused.status_code, refused.json) == (503, {"error": "busy"})


@on_sqlite
def test_only_a_lock_that_was_not_granted_counts_as_busy(app: Flask) -> None:
    with app.app_context():
        engine = host(app).db.engine
    with locked_for_writes(app), engine.connect() as connection:
        with pytest.raises(sa.exc.OperationalError) as locked:
            connection.execute(sa.text("DELETE FROM lattice_prices"))
        connection.rollback()
        with pytest.raises(sa.exc.OperationalError) as missing:
            connection.execute(sa.text("SELECT * FROM no_such_table"))
    assert isinstance(locked.value.orig, sqlite3.OperationalError)
    assert database_busy(locked.value)
    assert not database_busy(missing.value)


@on_postgresql
def test_a_postgresql_lock_timeout_counts_as_busy(app: Flask) -> None:
    with app.app_context():
        engine = host(app).db.engine
    with engine.connect() as holder, engine.connect() as waiter:
        holder.execute(sa.text("LOCK TABLE lattice_prices IN ACCESS EXCLUSIVE MODE"))
        waiter.execute(sa.text("SET lock_timeout = '50ms'"))
        with pytest.raises(sa.exc.OperationalError) as timed_out:
            waiter.execute(sa.text("SELECT count(*) FROM lattice_prices"))
        with pytest.raises(sa.exc.ProgrammingError) as missing:
            holder.execute(sa.text("SELECT * FROM no_such_table"))
    assert getattr(timed_out.value.orig, "sqlstate", None) == "55P03"
    assert database_busy(timed_out.value)
    assert not database_busy(missing.value)
