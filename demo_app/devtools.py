"""The developer page (sandbox mode only): move the sandbox clock to watch billing happen.

Renewals, failed-payment retries, trial ends and scheduled cancellations all run on the
sandbox's clock. Moving it forward makes the sandbox do what Stripe would do by then and
send the webhooks, which the worker projects; the billing page then shows the result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.error import URLError
from urllib.parse import urlencode, urlsplit
from urllib.request import Request, urlopen

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from flask_lattice.models import Customer, Subscription, WebhookEvent
from flask_lattice.state import current_billable

from .extensions import billing, db, login_required

blueprint = Blueprint("dev", __name__)

DAY = 86_400
STEPS = {"day": DAY, "week": 7 * DAY, "month": 30 * DAY}
#: How many of the latest webhook events the page lists.
RECENT_EVENTS = 10
TIMEOUT = 30


class SandboxUnavailable(Exception):
    """The sandbox did not answer."""


def _sandbox_call(path: str, form: dict[str, str] | None = None) -> dict[str, Any]:
    base = current_app.config["QUILLNOTE_SANDBOX_URL"]
    if urlsplit(base).scheme not in ("http", "https"):
        raise SandboxUnavailable(f"the sandbox URL {base!r} is not an http(s) URL")
    data = urlencode(form).encode() if form is not None else None
    try:
        with urlopen(Request(f"{base}{path}", data=data), timeout=TIMEOUT) as response:  # noqa: S310
            body: dict[str, Any] = json.loads(response.read())
    except (URLError, OSError, ValueError) as exc:
        raise SandboxUnavailable(f"the sandbox at {base} did not answer ({exc})") from exc
    return body


def sandbox_now() -> datetime:
    """The sandbox's current time."""
    return datetime.fromtimestamp(int(_sandbox_call("/_sandbox/clock")["now"]), UTC)


def advance_sandbox(seconds: int) -> datetime:
    """Move the sandbox clock forward by ``seconds``; returns its new time."""
    body = _sandbox_call("/_sandbox/clock/advance", {"seconds": str(seconds)})
    return datetime.fromtimestamp(int(body["now"]), UTC)


@blueprint.before_request
def sandbox_only() -> None:
    """The page exists only when the demo runs on the sandbox."""
    if not current_app.config.get("QUILLNOTE_SANDBOX"):
        abort(404)


def _period_end_step(now: datetime) -> int | None:
    subscription = billing.subscription()
    if subscription is None or subscription.current_period_end is None:
        return None
    target = max(subscription.current_period_end, subscription.trial_end or now)
    return max(0, int((target + timedelta(days=1) - now).total_seconds()))


def own_events() -> Sequence[WebhookEvent]:
    """The latest webhook events about the signed-in user's Stripe customers, newest first.

    An event is theirs when its payload names one of their customer ids (``cus_…``, from
    the customer and subscription rows of their billable); other users' events stay hidden.
    """
    billable = current_billable()
    if billable is None:
        return []
    customer_ids = set(
        db.session.scalars(
            sa.select(Customer.stripe_customer_id).where(Customer.billable_key == billable.key)
        )
    ) | set(
        db.session.scalars(
            sa.select(Subscription.stripe_customer_id).where(
                Subscription.billable_key == billable.key
            )
        )
    )
    if not customer_ids:
        return []
    mentions = [
        WebhookEvent.payload.contains(f'"{customer_id}"', autoescape=True)
        for customer_id in sorted(customer_ids)
    ]
    return db.session.scalars(
        sa.select(WebhookEvent)
        .where(sa.or_(*mentions))
        .order_by(WebhookEvent.received_at.desc())
        .limit(RECENT_EVENTS)
    ).all()


@blueprint.get("/dev")
@login_required
def page() -> ResponseReturnValue:
    """Show the sandbox clock and the buttons that move it."""
    events = own_events()
    try:
        now = sandbox_now()
    except SandboxUnavailable as exc:
        page = render_template("dev.html", error=str(exc), now=None, step=None, events=events)
        return page, 503
    return render_template(
        "dev.html", error=None, now=now, step=_period_end_step(now), events=events
    )


@blueprint.post("/dev/clock")
@login_required
def advance() -> ResponseReturnValue:
    """Move the sandbox clock by a day, a week, a month, or to the period end plus a day."""
    step = request.form.get("step", "")
    try:
        seconds = STEPS.get(step) or (
            _period_end_step(sandbox_now()) if step == "period_end" else None
        )
        if seconds is None:
            abort(400, description="Choose day, week, month or period_end.")
        moved_to = advance_sandbox(seconds)
    except SandboxUnavailable as exc:
        flash(f"Could not move the clock: {exc}.", "danger")
        return redirect(url_for("dev.page"))
    flash(
        f"Sandbox time is now {moved_to:%b %d, %Y %H:%M} UTC. Anything due by then "
        "(renewals, retries, cancellations) has happened; the webhooks are on their way.",
        "success",
    )
    return redirect(url_for("dev.page"))
