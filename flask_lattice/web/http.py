"""Request helpers shared by the billing blueprints.

The current billable (or Flask-Login's unauthorized answer), where Stripe sends people
back, Stripe failures as HTTP answers, and ``no-store`` for bearer redirects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from flask import make_response, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response as BaseResponse

from ..billable import Billable
from ..errors import (
    BillingHTTPError,
    BillingUnavailable,
    CardDeclined,
    PaymentFailed,
    StripeAPIError,
    StripeUnavailable,
)
from ..state import current_billable, get_state, unauthorized
from .safe_urls import safe_url

log = logging.getLogger("flask_lattice.web.views")

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
