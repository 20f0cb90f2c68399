"""Request helpers shared by the billing blueprints.

The current billable (or Flask-Login's unauthorized answer), where Stripe sends people
back, Stripe failures and a busy database as HTTP answers, and ``no-store`` for bearer
redirects.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from flask import Blueprint, current_app, make_response, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response as BaseResponse

from ..billable import Billable
from ..errors import (
    BillingHTTPError,
    BillingUnavailable,
    CardDeclined,
    DatabaseBusy,
    PaymentFailed,
    StripeAPIError,
    StripeUnavailable,
)
from ..state import current_billable, get_state, unauthorized
from .safe_urls import safe_url

log = logging.getLogger("flask_lattice.web.views")

#: SQLite's primary result codes for a lock it did not get within its busy timeout.
_SQLITE_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
#: PostgreSQL's SQLSTATEs for a wait that ran out or a transaction it aborted to break a
#: conflict: lock_not_available, query_canceled (a statement timeout), deadlock_detected,
#: serialization_failure.
_POSTGRES_BUSY_STATES = frozenset({"55P03", "57014", "40P01", "40001"})

PRICE_FIELDS = ("price", "price_id", "prices", "line_items", "amount", "unit_amount")
"""Form fields that would name a price or amount; the catalog alone decides prices."""


def refuse_price_fields(instead: str) -> None:
    """Refuse (400) a request whose form or query names a price or an amount.

    Checks every field in :data:`PRICE_FIELDS`, bracketed forms too (``line_items[0][price]``),
    so a tampered form never reaches Stripe. ``instead`` says what the route wants sent.
    """
    sent = {name.split("[", 1)[0] for name in (*request.form, *request.args)}
    if sent.intersection(PRICE_FIELDS):
        raise BillingHTTPError(f"Send {instead}; prices come from the plan catalog.")


@contextmanager
def stripe_errors() -> Iterator[None]:
    """Turn a failed Stripe call into a 4xx/503 with a description (never a 500)."""
    try:
        yield
    except StripeAPIError as error:
        log.warning(
            "Stripe call failed: %s (status %s, code %s, request %s)",
            type(error).__name__,
            error.http_status,
            error.code,
            error.request_id,
        )
        if isinstance(error, CardDeclined):
            raise PaymentFailed(error.message) from None
        if isinstance(error, StripeUnavailable):
            raise BillingUnavailable(
                "Billing is unavailable right now. Please try again in a moment."
            ) from None
        raise BillingUnavailable(
            "Billing could not complete this request. Please try again later."
        ) from None


def require_billable() -> Billable:
    """The current billable, or Flask-Login's unauthorized answer (401 without it)."""
    billable = current_billable()
    if billable is not None:
        return billable
    raise HTTPException(response=make_response(unauthorized()))


def return_url(requested: str | None = None) -> str:
    """Where Stripe sends people back: ``requested`` if on this host, else the configured page."""
    pricing = url_for("lattice.pricing", _external=True)
    endpoint = get_state().config.return_endpoint
    configured = pricing
    if endpoint:
        try:
            configured = safe_url(url_for(endpoint, _external=True), fallback=pricing)
        except BuildError:
            log.error("LATTICE_RETURN_ENDPOINT %r is not an endpoint of this app", endpoint)
    return safe_url(requested, fallback=configured) if requested else configured


def no_store(response: BaseResponse) -> BaseResponse:
    """Keep a redirect to a bearer URL (Checkout, portal) out of caches and referrers."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def database_busy(error: sa.exc.SQLAlchemyError) -> bool:
    """Whether ``error`` means the database was busy, not wrong: a lock or statement wait
    that ran out, a deadlock or serialization failure, or no free pooled connection
    (SQLAlchemy's ``TimeoutError``). Trying again later can succeed."""
    if isinstance(error, sa.exc.TimeoutError):
        return True
    original = getattr(error, "orig", None)
    if isinstance(original, sqlite3.Error):
        code = getattr(original, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _SQLITE_BUSY_CODES
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    return state in _POSTGRES_BUSY_STATES


def answer_database_busy(error: sa.exc.SQLAlchemyError) -> ResponseReturnValue:
    """The blueprints' handler for database errors: a busy database answers
    :class:`~flask_lattice.errors.DatabaseBusy` (503 with ``Retry-After``, through the
    app's handlers for it), after rolling the request's transaction back. Any other
    database error is raised again, and stays a 500."""
    if not database_busy(error):
        raise error
    log.warning("database busy, answered 503: %s", error)
    get_state().db.session.rollback()
    return current_app.handle_http_exception(DatabaseBusy())


def answer_database_busy_on(blueprint: Blueprint) -> None:
    """Register :func:`answer_database_busy` for the blueprint's (and its nested
    blueprints') routes, for the two errors a busy database raises."""
    for error in (sa.exc.OperationalError, sa.exc.TimeoutError):
        blueprint.register_error_handler(error, answer_database_busy)
