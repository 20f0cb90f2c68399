"""Helpers and constants shared by the tests (fixtures live in ``conftest.py``)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from werkzeug.serving import make_server

from flask_lattice import LatticeBilling
from flask_lattice.models import Subscription
from flask_lattice.testing import PriceSpec

TEST_PLANS: list[dict[str, Any]] = [
    {"key": "free", "name": "Free", "rank": 0, "features": ["notes"]},
    {
        "key": "pro",
        "name": "Pro",
        "rank": 10,
        "prices": {"month": "pro_monthly", "year": "pro_yearly"},
        "features": ["notes", "unlimited_notes", "export"],
    },
    {
        "key": "team",
        "name": "Team",
        "rank": 20,
        "prices": {"month": "team_monthly", "year": "team_yearly"},
        "features": ["notes", "unlimited_notes", "export", "seats"],
        "trial_days": 14,
        "seats": {"min": 1, "max": 50},
    },
]
TEST_PRICES = {
    "pro_monthly": PriceSpec("Pro", 1200, "month"),
    "pro_yearly": PriceSpec("Pro", 12000, "year"),
    "team_monthly": PriceSpec("Team", 4900, "month"),
    "team_yearly": PriceSpec("Team", 49000, "year"),
}
UNREACHABLE_API = "http://127.0.0.1:9"
TEST_WEBHOOK_SECRET = "whsec_test_lattice_suite"


class HostParts:
    """What a test needs of the host app: its ``db``, ``User`` model and extension object."""

    def __init__(self, db: SQLAlchemy, user_model: type[Any], billing: LatticeBilling) -> None:
        self.db = db
        self.User = user_model
        self.billing = billing


def host(app: Flask) -> HostParts:
    """The test host's parts of ``app``."""
    parts: HostParts = app.extensions["lattice_test_host"]
    return parts


def make_user(app: Flask, email: str = "ada@example.com", name: str | None = "Ada") -> int:
    """Insert a user and return its id."""
    parts = host(app)
    with app.app_context():
        user = parts.User(email=email, name=name)
        parts.db.session.add(user)
        parts.db.session.commit()
        user_id: int = user.id
    return user_id


def login(client: FlaskClient, user_id: int) -> None:
    """Log ``user_id`` in on ``client`` the way Flask-Login's session does."""
    with client.session_transaction() as session:
        session["_user_id"] = str(user_id)
        session["_fresh"] = True


def run_worker(app: Flask) -> None:
    """Process every queued lattice job now, in this process (a burst worker)."""
    from flask_lattice.webhooks.worker import build_worker

    build_worker(app, simple=True).work(burst=True)


@contextmanager
def serving(app: Flask, sandbox: Any) -> Iterator[str]:
    """Serve ``app`` over real HTTP and forward the sandbox's webhooks to it; yields the URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_port}"
    prefix = app.config["LATTICE_URL_PREFIX"]
    sandbox.set_forward_to(f"{base_url}{prefix}/webhook")
    try:
        yield base_url
    finally:
        sandbox.set_forward_to(None)
        server.shutdown()
        thread.join()


def subscription_row(app: Flask, subscription_id: str) -> Subscription:
    """The local row of ``subscription_id``, detached from the session (it must exist)."""
    with app.app_context():
        session = host(app).db.session
        row = session.scalar(
            sa.select(Subscription).where(Subscription.stripe_subscription_id == subscription_id)
        )
        assert row is not None
        session.expunge(row)
        return row


@contextmanager
def driver_statements(app: Flask) -> Iterator[list[str]]:
    """Every SQL statement the database driver runs for ``app`` inside the block.

    Counted below SQLAlchemy, on each connection checked out meanwhile, so nothing that
    reaches the database is missed, whichever layer sent it.
    """
    statements: list[str] = []
    with app.app_context():
        engine = host(app).db.engine
    restore: dict[int, Any] = {}

    def trace(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if engine.dialect.name == "sqlite":
            dbapi_connection.set_trace_callback(statements.append)
            restore[id(dbapi_connection)] = lambda: dbapi_connection.set_trace_callback(None)
            return
        original = dbapi_connection.cursor_factory

        class RecordingCursor(original):  # type: ignore[misc,valid-type]
            def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
                statements.append(query if isinstance(query, str) else query.as_string(self))
                return super().execute(query, *args, **kwargs)

        dbapi_connection.cursor_factory = RecordingCursor
        restore[id(dbapi_connection)] = lambda: setattr(
            dbapi_connection, "cursor_factory", original
        )

    def untrace(dbapi_connection: Any, _record: Any) -> None:
        undo = restore.pop(id(dbapi_connection), None)
        if undo is not None:
            undo()

    sa.event.listen(engine, "checkout", trace)
    sa.event.listen(engine, "checkin", untrace)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "checkout", trace)
        sa.event.remove(engine, "checkin", untrace)


@contextmanager
def locked_for_writes(app: Flask) -> Iterator[None]:
    """Another process holds SQLite's write lock inside the block, and ``app`` waits at
    most 50 ms for it, so its writes fail with "database is locked" (SQLite only)."""
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
    database = engine.url.database
    assert engine.dialect.name == "sqlite" and database is not None

    def short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=50")

    engine.dispose()
    sa.event.listen(engine, "connect", short_busy_timeout)
    other_process = sqlite3.connect(database, timeout=0)
    other_process.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other_process.rollback()
        other_process.close()
        sa.event.remove(engine, "connect", short_busy_timeout)
        engine.dispose()


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run pytest in ``folder`` as a host app's own suite would: a new interpreter, without
    this suite's ``LATTICE_*`` and ``PYTEST_*`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LATTICE_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
