"""The extension's foundation: init_app, configuration, tables, and the real backends."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from redis import Redis
from rq import Queue, SimpleWorker

from flask_lattice import LatticeBilling
from flask_lattice.config import SETTINGS
from flask_lattice.errors import ConfigurationError, LatticeError
from flask_lattice.models import Base, WebhookEvent
from tests.helpers.support import TEST_PLANS, host

ROOT = Path(__file__).resolve().parent.parent


def _bare_app(**config: Any) -> tuple[Flask, SQLAlchemy]:
    app = Flask("bare")
    app.config.update(
        SQLALCHEMY_DATABASE_URI="sqlite://",
        LATTICE_STRIPE_SECRET_KEY="sk_test_x",
        LATTICE_WEBHOOK_SECRETS="whsec_x",
        LATTICE_PLANS=TEST_PLANS,
    )
    app.config.update(config)
    return app, SQLAlchemy(app)


def test_public_import_from_installed_package() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from flask_lattice import LatticeBilling; print(LatticeBilling)"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    assert "LatticeBilling" in result.stdout


def test_init_app_registers_state_and_blueprint() -> None:
    app, db = _bare_app()
    LatticeBilling(app, db=db)
    assert "lattice" in app.extensions
    assert "lattice" in app.blueprints
    assert app.config["LATTICE_URL_PREFIX"] == "/billing"


def test_factory_pattern_defers_to_init_app() -> None:
    app, db = _bare_app()
    billing = LatticeBilling(db=db)
    assert "lattice" not in app.extensions
    billing.init_app(app)
    assert app.extensions["lattice"].db is db


def test_double_registration_is_refused() -> None:
    app, db = _bare_app()
    billing = LatticeBilling(app, db=db)
    with pytest.raises(LatticeError, match="already initialised"):
        billing.init_app(app)


def test_missing_db_is_refused_with_instructions() -> None:
    app, _db = _bare_app()
    with pytest.raises(LatticeError, match=r"LatticeBilling\(app, db=db\)"):
        LatticeBilling(app)


def test_flask_sqlalchemy_not_initialised_is_refused() -> None:
    app = Flask("no_db")
    with pytest.raises(LatticeError, match=r"db\.init_app\(app\)"):
        LatticeBilling(app, db=SQLAlchemy())


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("LATTICE_STRIPE_SECRET_KEY", "pk_test_x", "LATTICE_STRIPE_SECRET_KEY"),
        ("LATTICE_WEBHOOK_SECRETS", ["nope"], "LATTICE_WEBHOOK_SECRETS"),
        ("LATTICE_WEBHOOK_TOLERANCE", "300", "LATTICE_WEBHOOK_TOLERANCE"),
        ("LATTICE_URL_PREFIX", "billing/", "LATTICE_URL_PREFIX"),
        ("LATTICE_REDIS_URL", "localhost:6379", "LATTICE_REDIS_URL"),
        ("LATTICE_STRIPE_API_BASE", "ftp://x", "LATTICE_STRIPE_API_BASE"),
        ("LATTICE_PRORATION_BEHAVIOR", "sometimes", "LATTICE_PRORATION_BEHAVIOR"),
        ("LATTICE_PAST_DUE_GRACE", "3 days", "LATTICE_PAST_DUE_GRACE"),
        ("LATTICE_JOB_RETRY_INTERVALS", [], "LATTICE_JOB_RETRY_INTERVALS"),
        ("LATTICE_TRUST_WEBHOOK_PAYLOADS", "yes", "LATTICE_TRUST_WEBHOOK_PAYLOADS"),
        ("LATTICE_PLANS", None, "LATTICE_PLANS is not set"),
        ("LATTICE_PLANS", [{"key": "pro", "name": "Pro"}], r"LATTICE_PLANS\[0\]\.rank"),
        (
            "LATTICE_PLANS",
            [{"key": "pro", "name": "Pro", "rank": 1, "prices": {"monthly": "p"}}],
            r"LATTICE_PLANS\[0\]\.prices",
        ),
        (
            "LATTICE_PLANS",
            [{"key": "t", "name": "T", "rank": 1, "prices": {"month": "p"}, "seats": {"min": 0}}],
            r"LATTICE_PLANS\[0\]\.seats\.min",
        ),
    ],
)
def test_invalid_setting_fails_at_init_app_naming_the_key(
    key: str, value: Any, message: str
) -> None:
    app, db = _bare_app(**{key: value})
    with pytest.raises(ConfigurationError, match=message):
        LatticeBilling(app, db=db)


def test_secret_key_falls_back_to_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_from_env")
    app, db = _bare_app(LATTICE_STRIPE_SECRET_KEY=None)
    LatticeBilling(app, db=db)
    assert app.extensions["lattice"].config.stripe_secret_key == "sk_test_from_env"


def test_missing_secret_key_names_both_places(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    app, db = _bare_app(LATTICE_STRIPE_SECRET_KEY=None)
    with pytest.raises(ConfigurationError, match="STRIPE_SECRET_KEY environment variable"):
        LatticeBilling(app, db=db)


def test_unsafe_but_working_settings_warn() -> None:
    app, db = _bare_app(LATTICE_WEBHOOK_SECRETS=None, LATTICE_TYPO_KEY=1)
    with pytest.warns(UserWarning) as caught:
        LatticeBilling(app, db=db)
    messages = " ".join(str(warning.message) for warning in caught)
    assert "LATTICE_WEBHOOK_SECRETS is empty" in messages
    assert "LATTICE_TYPO_KEY is not a Flask-Lattice setting" in messages


def test_live_key_never_goes_to_another_server() -> None:
    app, db = _bare_app(
        LATTICE_STRIPE_SECRET_KEY="sk_live_x", LATTICE_STRIPE_API_BASE="http://127.0.0.1:12111"
    )
    with pytest.raises(ConfigurationError, match="LATTICE_STRIPE_API_BASE"):
        LatticeBilling(app, db=db)


def test_tables_are_on_the_hosts_metadata(app_factory: Callable[..., Flask]) -> None:
    app = app_factory()
    db = host(app).db
    lattice_tables = {name for name in db.metadata.tables if name.startswith("lattice_")}
    assert lattice_tables == set(Base.metadata.tables)
    with app.app_context():
        existing = set(sa.inspect(db.engine).get_table_names())
    assert lattice_tables <= existing


def test_timestamps_round_trip_as_aware_utc(app_factory: Callable[..., Flask]) -> None:
    app = app_factory()
    db = host(app).db
    created = datetime(2026, 11, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with app.app_context():
        db.session.add(WebhookEvent(id="evt_1", type="ping", created=created, payload="{}"))
        db.session.commit()
        db.session.expunge_all()
        loaded = db.session.get(WebhookEvent, "evt_1")
        assert loaded is not None
        assert loaded.created == created
        assert loaded.created.tzinfo is not None
        assert loaded.created.utcoffset() == timedelta(0)
        assert loaded.received_at.tzinfo == UTC


def test_naive_timestamps_are_refused(app_factory: Callable[..., Flask]) -> None:
    app = app_factory()
    db = host(app).db
    with app.app_context():
        db.session.add(
            WebhookEvent(id="evt_naive", type="ping", created=datetime(2026, 1, 1), payload="{}")
        )
        with pytest.raises(sa.exc.StatementError, match="timezone-aware"):
            db.session.commit()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    app, db = _bare_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'wal.db'}")
    LatticeBilling(app, db=db)
    with app.app_context():
        mode = db.session.execute(sa.text("PRAGMA journal_mode")).scalar()
        timeout = db.session.execute(sa.text("PRAGMA busy_timeout")).scalar()
    assert mode == "wal"
    assert timeout == 10000


def _double(value: int) -> int:
    return value * 2


def test_real_redis_runs_rq_jobs(redis_url: str) -> None:
    connection = Redis.from_url(redis_url)
    queue = Queue("foundation", connection=connection)
    job = queue.enqueue(_double, 21)
    SimpleWorker([queue], connection=connection).work(burst=True)
    assert job.latest_result() is not None
    assert job.return_value() == 42


def test_configuration_reference_lists_every_key() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"^#+ `(LATTICE_[A-Z_]+)`", page, flags=re.MULTILINE))
    assert documented == {setting.key for setting in SETTINGS}


def test_configuration_reference_states_every_default() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    for setting in SETTINGS:
        section = page.split(f"## `{setting.key}`", 1)[1].split("\n## ", 1)[0]
        assert f"Default: `{setting.default!r}`" in section, setting.key
