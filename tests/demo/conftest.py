"""Fixtures for the demo's tests: Quillnote built on the test backends and the sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from demo_app import create_app, settings
from demo_app.extensions import db
from flask_lattice.testing import ensure_prices


@pytest.fixture
def demo_factory(
    database_url: str, redis_url: str, sandbox: Any, tmp_path: Any
) -> Iterator[Callable[..., Flask]]:
    """Build Quillnote on the test backends and the sandbox (CSRF off unless asked)."""
    ensure_prices(sandbox.client(), settings.PRICES)
    built: list[Flask] = []

    def factory(environ: dict[str, str] | None = None, **overrides: Any) -> Flask:
        config: dict[str, Any] = {
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "LATTICE_REDIS_URL": redis_url,
            "LATTICE_STRIPE_MAX_NETWORK_RETRIES": 0,
            "LATTICE_JOB_RETRY_INTERVALS": [0],
        }
        if environ is None:
            config.update(
                LATTICE_STRIPE_SECRET_KEY=sandbox.api_key,
                LATTICE_STRIPE_API_BASE=sandbox.url,
                LATTICE_WEBHOOK_SECRETS=[sandbox.webhook_secret],
                QUILLNOTE_SANDBOX_URL=sandbox.url,
            )
        config.update(overrides)
        app = create_app(config, instance_path=str(tmp_path / "instance"), environ=environ or {})
        built.append(app)
        return app

    yield factory
    for app in built:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()


@pytest.fixture
def demo(demo_factory: Callable[..., Flask]) -> Flask:
    return demo_factory()


@pytest.fixture
def client(demo: Flask) -> FlaskClient:
    return demo.test_client()
