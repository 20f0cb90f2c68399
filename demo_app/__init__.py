"""Quillnote: a small notes SaaS that bills through Flask-Lattice.

``create_app()`` builds the app; ``python -m demo_app`` (``make demo``) runs it together
with the local Stripe sandbox, an embedded Redis and a webhook worker.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from . import account, auth, devtools, notes, operators, presentation, schema, settings, throttle
from .extensions import billing, csrf, db, login_manager

PACKAGE_DIR = Path(__file__).resolve().parent
#: The demo's templates live at the top of the repository, next to the package.
TEMPLATE_DIR = PACKAGE_DIR.parent / "templates"


def default_instance_path(environ: Mapping[str, str]) -> str:
    """``QUILLNOTE_INSTANCE_PATH``, else ``instance/`` next to the package (the checkout)."""
    return environ.get("QUILLNOTE_INSTANCE_PATH") or str(PACKAGE_DIR.parent / "instance")


def create_app(
    config: Mapping[str, Any] | None = None,
    *,
    instance_path: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Flask:
    """Build Quillnote. Settings come from ``environ`` (default ``os.environ``), then ``config``."""
    if not (TEMPLATE_DIR / "layout.html").is_file():
        raise RuntimeError(
            f"Quillnote's templates were not found in {TEMPLATE_DIR}: the demo runs from a "
            "checkout of the repository (run `make demo` there)"
        )
    environ = os.environ if environ is None else environ
    app = Flask(
        __name__,
        template_folder=str(TEMPLATE_DIR),
        static_folder=str(PACKAGE_DIR / "static"),
        instance_path=instance_path or default_instance_path(environ),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(settings.from_environment(environ, app.instance_path))
    app.config.update(config or {})

    db.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Log in to see that page."
    login_manager.login_message_category = "info"
    csrf.init_app(app)
    billing.init_app(app)
    throttle.init_app(app)
    operators.init_app(app)

    for blueprint in (notes.site, auth.blueprint, notes.blueprint, account.blueprint):
        app.register_blueprint(blueprint)
    app.register_blueprint(devtools.blueprint)  # answers 404 unless the sandbox is in use
    presentation.install(app)

    with app.app_context():
        schema.create_tables()
    return app
