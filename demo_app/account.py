"""The billing page (plan, status, dates, seats, invoices, portal links and plan operations),
and the seats each account uses, for Flask-Lattice's ``seats_in_use`` hook."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user

from flask_lattice import Billable
from flask_lattice.models import Invoice, Price

from .extensions import billing, db, login_required
from .models import TeamMember

blueprint = Blueprint("account", __name__)

INVOICE_HISTORY = 12


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
