"""What the templates share: filters for money and dates, the account banner, error pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from flask import Flask, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from flask_lattice.models import Subscription

from . import standing
from .extensions import billing
from .settings import APP_NAME, FREE_NOTE_LIMIT

_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}


def money(amount: int | None, currency: str = "usd") -> str:
    """Minor units as ``$9.00``, a credit as ``−$9.00`` with a minus sign (U+2212); ``—`` for
    an unknown amount. Templates keep the result in one ``.amount`` span so it never wraps."""
    if amount is None:
        return "—"
    symbol = _SYMBOLS.get(currency.lower())
    value = f"{abs(amount) / 100:,.2f}"
    sign = "\u2212" if amount < 0 else ""
    return f"{sign}{symbol}{value}" if symbol else f"{sign}{value} {currency.upper()}"


def day(moment: datetime | None) -> str:
    """A date as ``March 5, 2026`` (``—`` when unknown)."""
    return "—" if moment is None else f"{moment:%B} {moment.day}, {moment.year}"


@dataclass(frozen=True)
class Banner:
    """A notice about the account shown under the navigation on every page."""

    kind: Literal["past_due", "canceling", "trialing", "paused"]
    tone: Literal["danger", "warning", "info"]
    message: str


def ends_at(subscription: Subscription) -> datetime | None:
    """When a scheduled cancellation takes effect, if one is scheduled."""
    if subscription.cancel_at is not None:
        return subscription.cancel_at
    if subscription.cancel_at_period_end:
        return subscription.current_period_end
    return None


def account_banner() -> Banner | None:
    """The one banner that matters most for the signed-in user, if any."""
    if not current_user.is_authenticated:
        return None
    subscription = billing.subscription()
    if subscription is None or subscription.status in ("canceled", "incomplete_expired"):
        return None
    plan = billing.current_plan()
    plan_name = plan.name if plan is not None and not plan.is_free else "paid"
    if subscription.status in ("past_due", "unpaid"):
        return Banner(
            "past_due",
            "danger",
            f"Your last payment failed. Update your payment method to keep your {plan_name} plan.",
        )
    ending = ends_at(subscription)
    if ending is not None:
        return Banner(
            "canceling",
            "warning",
            f"Your {plan_name} plan will end on {day(ending)}: its cancellation is scheduled.",
        )
    if subscription.status == "trialing":
        return Banner(
            "trialing",
            "info",
            f"You are trying {plan_name} for free until {day(subscription.trial_end)}.",
        )
    if subscription.pause_collection_behavior is not None:
        resumes = subscription.pause_resumes_at
        until = f" until {day(resumes)}" if resumes else ""
        return Banner("paused", "info", f"Payments for your {plan_name} plan are paused{until}.")
    return None


def error_page(error: HTTPException) -> ResponseReturnValue:
    """Errors as a styled page that says what went wrong (API calls keep the plain error).

    The page keeps the error's own headers (``Retry-After`` of a 503 or 429, ``Allow`` of
    a 405), all but its content type."""
    if request.path.endswith(".json") or request.accept_mimetypes.best == "application/json":
        return error
    headers = [(name, value) for name, value in error.get_headers() if name != "Content-Type"]
    return render_template("error.html", error=error), error.code or 500, headers


def install(app: Flask) -> None:
    """Register the filters, globals and error pages on ``app``."""
    app.add_template_filter(money)
    app.add_template_filter(day)
    app.jinja_env.globals.update(
        app_name=APP_NAME,
        free_note_limit=FREE_NOTE_LIMIT,
        current_interval=standing.current_interval,
        billing_revision=standing.revision,
        trial_applies=standing.trial_applies,
        pending_checkout=standing.pending_checkout,
        account_banner=account_banner,
        subscription_ends_at=ends_at,
        sandbox_mode=lambda: bool(current_app.config.get("QUILLNOTE_SANDBOX")),
    )
    app.register_error_handler(HTTPException, error_page)
