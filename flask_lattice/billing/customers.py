"""Get-or-create the one Stripe customer of a billable, stored in ``lattice_customers``."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..billable import Billable
from ..models import Customer
from ..state import get_state
from ..stripe_api import StripeAPIError

BILLABLE_METADATA_KEY = "lattice_billable"
_BILLED = ("active", "trialing", "past_due", "unpaid")

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


def follow_default_payment_method(customer_id: str) -> list[str]:
    """Make the customer's default card the one its billed subscriptions charge.

    Stripe's portal saves a new card only as the customer's
    ``invoice_settings.default_payment_method``, and a subscription's own
    ``default_payment_method`` (Checkout sets one) takes precedence over it: without this the
    card the customer chose would never be charged. Reads the customer and its subscriptions
    from Stripe (the event may be stale) and points each billed subscription that names another
    card at the default. Returns the ids of the subscriptions updated; a Stripe error is logged,
    not raised (the next ``customer.updated`` retries).
    """
    gateway = get_state().stripe
    try:
        customer = gateway.retrieve_customer(customer_id).to_dict()
        if customer.get("deleted"):
            return []
        default = customer["invoice_settings"]["default_payment_method"]
        if not default:
            return []
        updated = []
        for sub in gateway.list_subscriptions(customer_id):
            current = sub["default_payment_method"]
            if sub["status"] in _BILLED and current and current != default:
                gateway.update_subscription(
                    sub["id"], {"default_payment_method": default, "proration_behavior": "none"}
                )
                updated.append(str(sub["id"]))
        return updated
    except StripeAPIError:
        log.warning("could not point %s's subscriptions at its default card", customer_id)
        return []
