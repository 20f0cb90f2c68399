"""Get-or-create the one Stripe customer of a billable, stored in ``lattice_customers``."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..billable import Billable
from ..models import Customer
from ..state import get_state

BILLABLE_METADATA_KEY = "lattice_billable"

log = logging.getLogger(__name__)


def find_customer(billable_key: str) -> Customer | None:
    """The stored, not deleted customer of ``billable_key``, if any."""
    session = get_state().db.session
    row = session.scalar(sa.select(Customer).where(Customer.billable_key == billable_key))
    return row if row is not None and not row.deleted else None


def get_or_create_customer(billable: Billable) -> Customer:
    """The billable's customer, created in Stripe and stored on first use. Commits.

    Safe under concurrency: concurrent creates share one idempotency key, so Stripe
    returns the same customer to each, and the unique ``billable_key`` lets exactly one
    row win; the others read it back.
    """
    state = get_state()
    session = state.db.session
    row = session.scalar(sa.select(Customer).where(Customer.billable_key == billable.key))
    if row is not None and not row.deleted:
        return row
    params = {
        "email": billable.email,
        "name": billable.name,
        "metadata": {BILLABLE_METADATA_KEY: billable.key},
    }
    # A deleted customer is replaced; its id keeps the new create's idempotency key distinct.
    scope = row.stripe_customer_id if row is not None else ""
    created = state.stripe.create_customer(
        {key: value for key, value in params.items() if value is not None}, scope=scope
    )
    if row is None:
        row = Customer(billable_key=billable.key, stripe_customer_id=created["id"])
        session.add(row)
    row.stripe_customer_id = created["id"]
    row.email, row.name = billable.email, billable.name
    row.livemode, row.deleted = bool(created["livemode"]), False
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        winner = session.scalar(sa.select(Customer).where(Customer.billable_key == billable.key))
        if winner is None:
            raise
        return winner
    return row
