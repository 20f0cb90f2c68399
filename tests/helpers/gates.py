"""Arranging gated views and projected rows for the access tests."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask

from flask_lattice import LatticeBilling, requires_feature
from flask_lattice.access.gates import feature_required, plan_required, requires_plan
from flask_lattice.models import Subscription, utcnow
from tests.helpers.support import host

JSON = {"Accept": "application/json"}
_ids = itertools.count(1)


def add_subscription(app: Flask, user_id: int, **fields: Any) -> str:
    """Insert a projected subscription row for ``user_id`` (active Pro unless told otherwise)."""
    now = utcnow()
    values: dict[str, Any] = {
        "stripe_subscription_id": f"sub_test_{next(_ids)}",
        "stripe_customer_id": f"cus_test_{user_id}",
        "billable_key": f"user:{user_id}",
        "status": "active",
        "plan_key": "pro",
        "current_period_start": now - timedelta(days=10),
        "current_period_end": now + timedelta(days=20),
    }
    values.update(fields)
    with app.app_context():
        session = host(app).db.session
        session.add(Subscription(**values))
        session.commit()
    return str(values["stripe_subscription_id"])


def billing_of(app: Flask) -> LatticeBilling:
    """The app's extension object, for its hook decorators and helpers."""
    return host(app).billing


def install_gated_views(app: Flask) -> None:
    """Views and a blueprint gated in each supported way."""

    @app.get("/open")
    def open_view() -> str:
        return "open"

    @app.route("/pro", methods=["GET", "POST", "OPTIONS"])
    @requires_plan("pro")
    def pro_view() -> str:
        return "pro content"

    @app.get("/team")
    @requires_plan("team")
    def team_view() -> str:
        return "team content"

    @app.get("/export")
    @requires_feature("export")
    def export_view() -> str:
        return "export content"

    @app.get("/seats")
    @requires_feature("seats")
    def seats_view() -> str:
        return "seats content"

    @app.get("/items/<int:item_id>")
    @requires_plan("pro")
    def item_view(item_id: int) -> str:
        return f"item {item_id}"

    @app.get("/async-pro")
    @requires_plan("pro")
    async def async_pro_view() -> str:
        await asyncio.sleep(0)
        return "async pro content"

    @app.get("/typo-plan")
    @requires_plan("platinum")
    def typo_plan_view() -> str:
        return "never"

    @app.get("/typo-feature")
    @requires_feature("exports")
    def typo_feature_view() -> str:
        return "never"

    reports = Blueprint("reports", __name__, url_prefix="/reports")
    reports.before_request(plan_required("team"))

    @reports.get("/")
    def reports_index() -> str:
        return "reports"

    exports = Blueprint("exports", __name__, url_prefix="/exports")
    exports.before_request(feature_required("export"))

    @exports.get("/")
    def exports_index() -> str:
        return "exports"

    app.register_blueprint(reports)
    app.register_blueprint(exports)
