"""The billing page: plan, status, dates, seats, invoices, portal links and plan operations."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user

from flask_lattice.models import Invoice, Price

from .extensions import billing, db, login_required

blueprint = Blueprint("account", __name__)

INVOICE_HISTORY = 12


@blueprint.get("/account/billing", endpoint="billing")
@login_required
def billing_page() -> ResponseReturnValue:
    """Everything about the signed-in user's subscription, from local state only."""
    subscription = billing.subscription()
    billable_key = f"user:{current_user.get_id()}"
    invoices = db.session.scalars(
        sa.select(Invoice)
        .where(Invoice.billable_key == billable_key)
        .order_by(Invoice.stripe_created.desc(), Invoice.id.desc())
        .limit(INVOICE_HISTORY)
    ).all()
    price = None
    if subscription is not None and subscription.price_ids:
        price = db.session.scalar(
            sa.select(Price).where(Price.stripe_price_id == subscription.price_ids[0])
        )
    return render_template(
        "billing.html", subscription=subscription, invoices=invoices, price=price
    )
