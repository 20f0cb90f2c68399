"""The billing page (plan, status, dates, seats, invoices, portal links and plan operations),
and the seats each account uses, for Flask-Lattice's ``seats_in_use`` hook."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from flask_lattice import Billable
from flask_lattice.models import Invoice

from .extensions import billing, db, login_required
from .invoices import describe
from .models import TeamMember
from .settings import PLANS
from .standing import billable_key, current_price, pending_checkout

blueprint = Blueprint("account", __name__)

INVOICE_HISTORY = 12
#: Said to someone who starts Checkout again while Stripe confirms the one they paid.
ALREADY_PAID = (
    "Stripe already has your payment{plan} and is confirming it, so there is nothing more to "
    "pay. Your plan switches on by itself within moments of Stripe's confirmation; this page "
    "shows it."
)


@blueprint.before_app_request
def one_checkout_at_a_time() -> ResponseReturnValue | None:
    """A second Checkout while a completed one awaits its webhook goes to Billing, saying why
    (the extension would otherwise send a paying customer to the portal without a word)."""
    if request.endpoint != "lattice.checkout" or request.method != "POST":
        return None
    plan_key = pending_checkout()
    if plan_key is None:
        return None
    name = next((plan["name"] for plan in PLANS if plan["key"] == plan_key), None)
    flash(ALREADY_PAID.format(plan=f" for {name}" if name else ""), "info")
    return redirect(url_for("account.billing"), code=303)


@billing.seats_in_use
def seats_in_use(billable: Billable) -> int:
    """The owner's seat plus one per team member; a billable is ``user:<id>``."""
    owner_id = int(billable.key.removeprefix("user:"))
    members = db.session.scalar(
        sa.select(sa.func.count()).select_from(TeamMember).where(TeamMember.owner_id == owner_id)
    )
    return 1 + int(members or 0)


@blueprint.get("/account/billing", endpoint="billing")
@login_required
def billing_page() -> ResponseReturnValue:
    """Everything about the signed-in user's subscription, from local state only."""
    subscription = billing.subscription()
    invoices = db.session.scalars(
        sa.select(Invoice)
        .where(Invoice.billable_key == billable_key())
        .order_by(Invoice.stripe_created.desc(), Invoice.id.desc())
        .limit(INVOICE_HISTORY)
    ).all()
    return render_template(
        "billing.html",
        subscription=subscription,
        awaiting_checkout=pending_checkout() if subscription is None else None,
        invoices=describe(invoices),
        price=current_price(),
    )
