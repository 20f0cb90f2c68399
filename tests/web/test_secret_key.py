"""A missing SECRET_KEY is one configuration error on every path that signs something."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from flask_lattice import ConfigurationError
from flask_lattice.billing import operations
from flask_lattice.web import csrf


@pytest.fixture
def keyless_app(app_factory: Callable[..., Flask]) -> Flask:
    return app_factory(SECRET_KEY=None)


@pytest.mark.parametrize(
    "form",
    [{}, {csrf.FIELD_NAME: "a-token"}],
    ids=["without-token", "with-token"],
)
def test_csrf_check_names_the_missing_key(keyless_app: Flask, form: dict[str, str]) -> None:
    with (
        keyless_app.test_request_context("/billing/checkout", method="POST", data=form),
        pytest.raises(ConfigurationError, match="SECRET_KEY: CSRF tokens"),
    ):
        csrf.protect()


def test_csrf_token_names_the_missing_key(keyless_app: Flask) -> None:
    with (
        keyless_app.test_request_context("/billing/pricing"),
        pytest.raises(ConfigurationError, match="SECRET_KEY: CSRF tokens"),
    ):
        csrf.csrf_token()


def test_a_signed_plan_change_preview_names_the_missing_key(keyless_app: Flask) -> None:
    with (
        keyless_app.test_request_context("/billing/subscription/swap", method="POST"),
        pytest.raises(ConfigurationError, match="SECRET_KEY: plan and seat previews"),
    ):
        operations._load_preview("any-token", operations._PREVIEW_SALT, {})
