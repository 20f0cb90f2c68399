"""The billing page: plan, status, dates, seats, invoices, portal links and plan operations."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from flask_lattice.models import Invoice

from .extensions import billing, db, login_required
from .invoices import describe
from .standing import billable_key, current_price

blueprint = Blueprint("account", __name__)

INVOICE_HISTORY = 12


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
        invoices=describe(invoices),
        price=current_price(),
    )
