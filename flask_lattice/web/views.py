"""The ``lattice`` blueprint: pricing, checkout, success, status, portal and the webhook.

Views are thin: they check login and CSRF, read the form, call a service and redirect
or render. Checkout and portal URLs are redirected to at once with ``no-store``.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response as BaseResponse

from ..access.gates import current_access
from ..access.query import projection_revision
from ..billing.checkout import PLAN_METADATA_KEY, sellable_plan, start_checkout
from ..billing.customers import find_customer
from ..billing.portal import open_portal
from ..billing.prices import catalog_prices, format_amount, sellable
from ..billing.seats import checkout_seats
from ..billing.sessions import recorded_for
from ..errors import BillingHTTPError, BillingObjectNotFound, StripeNotFound
from ..plans import Plan
from ..state import current_billable, get_state
from ..webhooks import route
from . import csrf, waiting
from .http import (
    answer_database_busy_on,
    no_store,
    refuse_price_fields,
    require_billable,
    return_url,
    stripe_errors,
)

log = logging.getLogger(__name__)

blueprint = Blueprint("lattice", __name__, template_folder="../templates")
blueprint.add_url_rule("/webhook", "webhook", route.receive, methods=["POST"])
answer_database_busy_on(blueprint)

blueprint.add_app_template_global(csrf.csrf_token, "lattice_csrf_token")
blueprint.add_app_template_global(csrf.csrf_field_name, "lattice_csrf_field_name")

_CHECKOUT_SESSION_ID = re.compile(r"cs_[A-Za-z0-9_]{1,250}")
_WEBHOOK_VIEW = f"{route.receive.__module__}.{route.receive.__name__}"


# -- setup ------------------------------------------------------------------------------


@blueprint.record_once
def _exempt_webhook_at_setup(setup: BlueprintSetupState) -> None:
    _exempt_webhook(setup.app)  # type: ignore[arg-type]


@blueprint.before_app_request
def _exempt_webhook_late() -> None:
    # Flask-WTF's CSRFProtect may be initialised after the extension.
    _exempt_webhook(current_app)


def _exempt_webhook(app: Flask) -> None:
    """Stripe signs webhooks; a host's CSRFProtect must not refuse them."""
    protect: Any = app.extensions.get("csrf")
    if protect is not None and hasattr(protect, "exempt"):
        protect.exempt(_WEBHOOK_VIEW)


@blueprint.context_processor
def _page_context() -> dict[str, Any]:
    return {"lattice_base_template": get_state().config.base_template}


def price_label(plan: Plan | str, interval: str) -> str | None:
    """How a plan's price reads for ``interval``: ``$12.00 / month`` for a flat plan,
    ``$12.00 per seat / month`` for a per-seat plan; ``None`` when it cannot be sold now.

    The Jinja global ``lattice_price_label(plan, interval)``; ``plan`` is a
    :class:`~flask_lattice.Plan` or its key. The amount is Stripe's ``price.unit_amount``,
    from the local price cache.
    """
    if isinstance(plan, str):
        plan = get_state().config.plans.get(plan)
    ref = plan.prices.get(interval)  # type: ignore[call-overload]
    price = catalog_prices().get(ref) if ref else None
    if price is None or not sellable(price, interval):
        return None
    unit = "per seat / " if plan.per_seat else "/ "
    return f"{format_amount(price.unit_amount, price.currency)} {unit}{interval}"


blueprint.add_app_template_global(price_label, "lattice_price_label")


@dataclass(frozen=True)
class Offer:
    """One plan on the pricing page: its display prices per interval."""

    plan: Plan
    prices: dict[str, str | None]
    current: bool


# -- routes -----------------------------------------------------------------------------


@blueprint.get("/pricing")
def pricing() -> str:
    """The plans with their monthly and yearly prices, the current plan marked."""
    billable = current_billable()
    now = current_access() if billable is not None else None
    current_key = now.plan.key if now is not None and now.plan is not None else None
    cached = catalog_prices()
    offers = []
    for plan in get_state().config.plans:
        prices: dict[str, str | None] = {}
        for interval, ref in plan.prices.items():
            price = cached.get(ref)
            prices[interval] = (
                format_amount(price.unit_amount, price.currency)
                if price is not None and sellable(price, interval)
                else None
            )
        offers.append(Offer(plan=plan, prices=prices, current=plan.key == current_key))
    return render_template(
        "lattice/pricing.html", offers=offers, standing=now, signed_in=billable is not None
    )


@blueprint.post("/checkout")
def checkout() -> BaseResponse:
    """Start Checkout for the posted ``plan``, ``interval`` and, for a per-seat plan,
    ``seats`` (303), or the portal for a subscriber. The price comes only from the catalog."""
    csrf.protect()
    billable = require_billable()
    refuse_price_fields("a plan and an interval")
    plan = sellable_plan(request.form.get("plan", ""), request.form.get("interval", ""))
    interval = request.form["interval"]
    seats = checkout_seats(billable, plan, request.form)
    success_url = url_for("lattice.success", _external=True) + "?session_id={CHECKOUT_SESSION_ID}"
    with stripe_errors():
        started = start_checkout(
            billable,
            plan,
            interval,
            success_url=success_url,
            cancel_url=url_for("lattice.pricing", _external=True),
            return_url=return_url(),
            seats=seats,
        )
    return no_store(redirect(started.url, code=303))


@blueprint.get("/success")
def success() -> str:
    """What happened at Checkout, for the billable who went there. Changes nothing."""
    billable = require_billable()
    session_id = request.args.get("session_id")
    if not session_id:
        raise BillingHTTPError("The session_id parameter is missing.")
    if not _CHECKOUT_SESSION_ID.fullmatch(session_id):
        raise BillingObjectNotFound("No such checkout session.")
    with stripe_errors():
        try:
            session = get_state().stripe.retrieve_checkout_session(session_id)
        except StripeNotFound:
            raise BillingObjectNotFound("No such checkout session.") from None
    # The app's records decide: a session it recorded for the billable, or the billable's
    # customer. A client_reference_id is whatever the session's creator chose.
    customer = find_customer(billable.key)
    owned = recorded_for(session_id, billable.key) or (
        customer is not None and session["customer"] == customer.stripe_customer_id
    )
    if not owned:
        raise BillingObjectNotFound("No such checkout session.")
    catalog = get_state().config.plans
    metadata = session["metadata"]
    plan_key = metadata[PLAN_METADATA_KEY] if metadata and PLAN_METADATA_KEY in metadata else None
    plan = catalog.get(plan_key) if isinstance(plan_key, str) and plan_key in catalog else None
    now = current_access()
    confirmed = now.active and (plan is None or (now.plan is not None and now.plan.key == plan.key))
    return render_template(
        "lattice/success.html",
        plan=plan,
        standing=now,
        confirmed=confirmed,
        checkout_status=session["status"],
        rendered_at=int(time.time()),
        payment_status=session["payment_status"],
        return_url=return_url(),
    )


@blueprint.get("/status.json")
def status() -> BaseResponse:
    """The billable's plan as the access gates see it (local projection only); 401 JSON
    when signed out. ``active`` is true exactly when a subscription grants the plan;
    ``revision`` is an opaque string that changes whenever a webhook changes the billable's
    projected subscriptions or invoices (pages poll it to know a change has arrived)."""
    billable = current_billable()
    if billable is None:
        response = jsonify(error="unauthorized", message="Sign in to see your plan.")
        response.status_code = 401
        return no_store(response)
    access = current_access()
    if not access.active:
        waiting.note(request.args.get("waiting_since"))
    plan = access.plan
    body = {
        "plan": plan.key if plan else None,
        "plan_name": plan.name if plan else None,
        "status": access.status,
        "active": access.active,
        "revision": projection_revision(billable.key),
    }
    return no_store(jsonify(body))


@blueprint.post("/portal")
def portal() -> BaseResponse:
    """Open the customer portal (303), optionally deep-linked with ``flow``."""
    csrf.protect()
    billable = require_billable()
    with stripe_errors():
        url = open_portal(
            billable,
            return_url=return_url(request.values.get("next")),
            flow=request.values.get("flow") or None,
            subscription_id=request.values.get("subscription") or None,
        )
    return no_store(redirect(url, code=303))
