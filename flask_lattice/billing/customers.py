"""Get-or-create the one Stripe customer of a billable, stored in ``lattice_customers``.

A stored customer that Stripe no longer has (deleted in the Dashboard, or an id from a
sandbox or another key) is replaced by a new one rather than wedging checkout and the
portal: :func:`with_customer` runs a Stripe call with the billable's customer and, when
Stripe answers that the customer does not exist, marks it gone and runs the call again
with a new customer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..billable import BILLABLE_METADATA_KEY, Billable
from ..errors import StripeNotFound
from ..models import Customer
from ..state import get_state
from ..webhooks.projection import Projector, send_notices

log = logging.getLogger(__name__)
T = TypeVar("T")


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


def is_missing_customer(error: StripeNotFound) -> bool:
    """Whether a 404 from Stripe is about the request's ``customer`` (``resource_missing``)."""
    return error.param == "customer" or "customer" in error.message.lower()


def forget_customer(customer_id: str) -> None:
    """Mark ``customer_id`` gone: the row is deleted and its subscriptions end locally,
    so access ends at once. Commits, then sends ``subscription_changed`` for each."""
    projector = Projector.for_app()
    try:
        projector.customer_gone(customer_id)
        projector.session.commit()
    except BaseException:
        projector.session.rollback()
        raise
    send_notices(projector)


def with_customer(billable: Billable, call: Callable[[Customer], T]) -> T:
    """``call(customer)`` with the billable's customer (created if needed).

    If Stripe answers that the stored customer does not exist, it is replaced by a new
    one (logged with both ids) and ``call`` runs once more; other errors propagate.
    """
    customer = get_or_create_customer(billable)
    try:
        return call(customer)
    except StripeNotFound as error:
        if not is_missing_customer(error):
            raise
    stale = customer.stripe_customer_id
    forget_customer(stale)
    replacement = get_or_create_customer(billable)
    log.warning(
        "customer %s of billable %r does not exist in Stripe; replaced it with %s",
        stale,
        billable.key,
        replacement.stripe_customer_id,
    )
    return call(replacement)
