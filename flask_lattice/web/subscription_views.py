"""The ``subscription`` blueprint: plan swaps and seat changes with a proration preview,
cancel and resume, pause and resume collection.

It is nested under the ``lattice`` blueprint at ``/subscription`` (endpoints
``lattice.subscription.<name>``). Every route needs a signed-in billable; the POST routes
check CSRF. After a change the browser is sent (303) to the billing page with a flash
saying the change is on its way: the local state follows when the webhook is processed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ..access.gates import wants_json
from ..billing import operations
from ..billing.prices import format_amount
from ..errors import BillingHTTPError, DowngradeRefused, OperationConflict, SeatsRefused
from . import csrf
from .http import refuse_price_fields, require_billable, return_url, stripe_errors

blueprint = Blueprint("subscription", __name__)
blueprint.add_app_template_global(operations.new_operation_token, "lattice_operation_token")

PENDING_MESSAGE = "Your change is on its way. It shows here as soon as Stripe confirms it."
OPERATION_FIELD = "operation_token"


@blueprint.errorhandler(OperationConflict)
def _refused(error: OperationConflict) -> ResponseReturnValue:
    """409 with the reason for API calls; a flash and a redirect for browsers."""
    message = error.description or "This change cannot be made now."
    if wants_json():
        kind = (
            "downgrade_refused"
            if isinstance(error, DowngradeRefused)
            else "seats_refused"
            if isinstance(error, SeatsRefused)
            else "conflict"
        )
        return jsonify(error=kind, message=message), 409
    flash(message, "warning")
    return redirect(return_url(), code=303)


def _done(operation: str, subscription: Any) -> ResponseReturnValue:
    """The answer to an accepted change: 202 JSON for API calls, else 303 + flash."""
    if wants_json():
        return jsonify(status="pending", operation=operation, subscription=subscription["id"]), 202
    flash(PENDING_MESSAGE, "info")
    return redirect(return_url(), code=303)


def _form(name: str) -> str | None:
    value = request.form.get(name, "").strip()
    return value or None


def _operate(operation: str, run: Callable[..., Any], *args: Any) -> ResponseReturnValue:
    """CSRF, login, then ``run(billable, subscription, *args, token)`` and the answer."""
    csrf.protect()
    billable = require_billable()
    with stripe_errors():
        subscription = run(billable, _form("subscription"), *args, _form(OPERATION_FIELD))
    return _done(operation, subscription)


def _render_preview(template: str, preview: operations.ChangePreview) -> str:
    """A preview page: ``preview``, ``money(amount)`` in its currency and ``return_url``."""
    return render_template(
        template,
        preview=preview,
        money=lambda amount: format_amount(amount, preview.currency),
        return_url=return_url(),
    )


@blueprint.get("/swap")
def swap_preview() -> str:
    """What moving to ``?plan=…&interval=…`` costs today and next period; a confirm form."""
    billable = require_billable()
    plan = request.args.get("plan", "").strip()
    if not plan:
        raise BillingHTTPError("Say which plan to move to (?plan=…&interval=month).")
    with stripe_errors():
        preview = operations.preview_swap(
            billable,
            request.args.get("subscription") or None,
            plan,
            request.args.get("interval") or None,
        )
    return _render_preview("lattice/subscription/swap.html", preview)


@blueprint.post("/swap")
def swap_confirm() -> ResponseReturnValue:
    """Apply the previewed swap (prices come only from the catalog)."""
    csrf.protect()
    billable = require_billable()
    refuse_price_fields("the preview")
    token = _form("preview")
    if token is None:
        raise BillingHTTPError("The preview is missing; preview the change first.")
    with stripe_errors():
        posted = {name: _form(name) for name in ("plan", "interval", "subscription")}
        subscription = operations.confirm_swap(billable, token, posted)
    return _done("swap", subscription)


@blueprint.get("/seats")
def seats_preview() -> str:
    """What changing to ``?quantity=…`` seats costs today and next period; a confirm form."""
    billable = require_billable()
    with stripe_errors():
        preview = operations.preview_seats(
            billable,
            request.args.get("subscription") or None,
            request.args.get("quantity", ""),
        )
    return _render_preview("lattice/subscription/seats.html", preview)


@blueprint.post("/quantity")
def quantity() -> ResponseReturnValue:
    """Apply a previewed seat change (``preview``); without one, check ``quantity`` and
    send the browser (303) to its preview. Nothing changes before the confirm."""
    csrf.protect()
    billable = require_billable()
    refuse_price_fields("the preview")
    token = _form("preview")
    subscription = _form("subscription")
    with stripe_errors():
        if token is None:
            seats = operations.check_seat_change(
                billable, subscription, request.form.get("quantity", "")
            )
            target = url_for(".seats_preview", quantity=seats, subscription=subscription)
            return redirect(target, code=303)
        posted = {"quantity": _form("quantity"), "subscription": subscription}
        changed = operations.confirm_seats(billable, token, posted)
    return _done("quantity", changed)


@blueprint.post("/cancel")
def cancel() -> ResponseReturnValue:
    """Cancel at the end of the current period."""
    return _operate("cancel", operations.cancel_at_period_end)


@blueprint.post("/resume")
def resume() -> ResponseReturnValue:
    """Undo a scheduled cancel."""
    return _operate("resume", operations.resume)


@blueprint.post("/pause")
def pause() -> ResponseReturnValue:
    """Pause collection with ``behavior`` (keep_as_draft, mark_uncollectible or void)."""
    return _operate(
        "pause",
        operations.pause_collection,
        request.form.get("behavior", ""),
        _form("resumes_at"),
    )


@blueprint.post("/unpause")
def unpause() -> ResponseReturnValue:
    """Resume collection."""
    return _operate("unpause", operations.unpause)
