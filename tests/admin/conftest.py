"""Fixtures of the console tests: a host app with an operator and a customer user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_login import current_user

from tests.helpers.spine import signed_in
from tests.helpers.support import host

OPERATOR_EMAIL = "ops@example.com"


@dataclass
class Console:
    """The app, an operator's client and a non-operator's client."""

    app: Flask
    operator: FlaskClient
    customer: FlaskClient


def open_console(app: Flask) -> None:
    """Register the ``admin_required`` hook: only the operator's email is an operator."""

    @host(app).billing.admin_required
    def is_operator() -> bool:
        return bool(current_user.is_authenticated and current_user.email == OPERATOR_EMAIL)


@pytest.fixture
def console(app: Flask, sandbox: Any) -> Console:
    open_console(app)
    operator, _ = signed_in(app, OPERATOR_EMAIL)
    customer, _ = signed_in(app, "customer@example.com")
    return Console(app, operator, customer)
