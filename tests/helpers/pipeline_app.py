"""A minimal host app for worker and web subprocesses started by the pipeline tests.

The parent test passes the app's configuration as JSON in ``LATTICE_TEST_APP_CONFIG``
(same database, Redis and sandbox as the test's own app). With
``LATTICE_TEST_SLOW_EVENT`` set, an ``on_event`` handler for that event type writes its
process id to ``LATTICE_TEST_PID_FILE`` and sleeps, so a test can kill it mid-job.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_lattice import LatticeBilling

CONFIG_ENV = "LATTICE_TEST_APP_CONFIG"
SLOW_EVENT_ENV = "LATTICE_TEST_SLOW_EVENT"
PID_FILE_ENV = "LATTICE_TEST_PID_FILE"
SLOW_SECONDS = 3.0


def config_env(app: Flask) -> dict[str, str]:
    """The environment that makes :func:`create_app` build an app like ``app``."""
    keys = [key for key in app.config if key.startswith(("LATTICE_", "SQLALCHEMY_DATABASE_URI"))]
    config = {key: app.config[key] for key in keys}
    config["LATTICE_PLANS"] = [dict(plan) for plan in app.config["LATTICE_PLANS"]]
    return {CONFIG_ENV: json.dumps(config, default=list), "FLASK_APP": f"{__name__}:create_app"}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from ``config`` or from ``LATTICE_TEST_APP_CONFIG``."""
    settings = dict(config) if config is not None else json.loads(os.environ[CONFIG_ENV])
    app = Flask("lattice_pipeline_host")
    app.config.update(settings, SECRET_KEY="pipeline-test")
    db = SQLAlchemy(app)
    billing = LatticeBilling(app, db=db)
    slow_event = os.environ.get(SLOW_EVENT_ENV)
    if slow_event:

        @billing.on_event(slow_event)
        def slow(event: dict[str, Any]) -> None:
            with open(os.environ[PID_FILE_ENV], "a") as handle:
                handle.write(f"{os.getpid()}\n")
            time.sleep(SLOW_SECONDS)

    return app
