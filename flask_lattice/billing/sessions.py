"""The Checkout Sessions the app created, recorded in ``lattice_checkout_sessions``.

The record is what makes a session the app's own: only a recorded session links its
customer to a billable when it completes (see :mod:`flask_lattice.webhooks.projection`).
It also keeps a billable to at most one open signup session: before a new checkout,
:func:`settle_open_sessions` asks Stripe about each session still recorded as open,
reuses the one for the same choice and expires the others.
"""

from __future__ import annotations

import logging
from typing import NamedTuple, cast

import sqlalchemy as sa

from ..errors import StripeNotFound, StripeRequestError
from ..models import (
    CheckoutSession,
    CheckoutSessionStatus,
    Subscription,
    insert_ignoring_conflicts,
    utcnow,
)
from ..state import get_state

log = logging.getLogger(__name__)

_SESSIONS = cast(sa.Table, CheckoutSession.__table__)


class Choice(NamedTuple):
    """What a checkout sells: a catalog plan key, a billing interval and a seat count."""

    plan_key: str
    interval: str
    seats: int


def record_session(billable_key: str, customer_id: str, choice: Choice, session_id: str) -> bool:
    """Record a session the app created (``cs_…``) for ``billable_key``. Commits.

    Returns ``False`` when the session was recorded before and is no longer open: an
    idempotent replay of a stale create, which must not be redirected to.
    """
    session = get_state().db.session
    now = utcnow()
    session.execute(
        insert_ignoring_conflicts(_SESSIONS, session.get_bind().dialect.name).values(
            stripe_session_id=session_id,
            billable_key=billable_key,
            stripe_customer_id=customer_id,
            plan_key=choice.plan_key,
            interval=choice.interval,
            seats=choice.seats,
            status=CheckoutSessionStatus.OPEN,
            created_at=now,
            updated_at=now,
        )
    )
    status = session.scalar(
        sa.select(_SESSIONS.c.status).where(_SESSIONS.c.stripe_session_id == session_id)
    )
    session.commit()
    return status == CheckoutSessionStatus.OPEN


class Settled(NamedTuple):
    """What :func:`settle_open_sessions` found."""

    #: The URL of the billable's open session for the choice, to reuse (or ``None``).
    reuse: str | None
    #: The billable's newest recorded session id before the settle (``""`` if none): the
    #: idempotency scope of the next create, fresh after each recorded session.
    after: str


def settle_open_sessions(billable_key: str, customer_id: str, choice: Choice) -> Settled:
    """Bring the billable's sessions recorded as open up to date with Stripe. Commits.

    Finds a session that is open in Stripe for ``choice`` and the same customer, if there
    is one; every other open session is expired in Stripe, so the billable is left with
    at most one open session.
    """
    state = get_state()
    session = state.db.session
    # Read before the open rows: a session recorded concurrently in between is then
    # reused, rather than replayed under a stale scope.
    after = session.scalar(
        sa.select(_SESSIONS.c.stripe_session_id)
        .where(_SESSIONS.c.billable_key == billable_key)
        .order_by(_SESSIONS.c.id.desc())
        .limit(1)
    )
    rows = session.scalars(
        sa.select(CheckoutSession)
        .where(
            CheckoutSession.billable_key == billable_key,
            CheckoutSession.status == CheckoutSessionStatus.OPEN,
        )
        .order_by(CheckoutSession.id.desc())
    ).all()
    reuse: str | None = None
    for row in rows:
        try:
            remote = state.stripe.retrieve_checkout_session(row.stripe_session_id)
        except StripeNotFound:
            row.status = CheckoutSessionStatus.EXPIRED
            continue
        same = (
            Choice(row.plan_key, row.interval, row.seats) == choice
            and row.stripe_customer_id == customer_id
        )
        if remote["status"] == "open" and remote["url"] and reuse is None and same:
            reuse = str(remote["url"])
            continue
        row.status = remote["status"]
        if remote["status"] == "open":
            row.status = _expire(row.stripe_session_id)
    session.commit()
    if reuse is not None:
        _require_customer(customer_id)
    return Settled(reuse=reuse, after=after or "")


def _require_customer(customer_id: str) -> None:
    """Raise :class:`StripeNotFound` (``param="customer"``) unless Stripe still has the
    customer: a session of a deleted customer cannot be paid, so it is not reused."""
    found = get_state().stripe.retrieve_customer(customer_id)
    if found.to_dict().get("deleted"):  # a StripeObject has no .get()
        raise StripeNotFound(f"No such customer: '{customer_id}'", param="customer")


def _expire(session_id: str) -> str:
    """Expire an open session in Stripe; its status afterwards."""
    gateway = get_state().stripe
    try:
        expired = gateway.expire_checkout_session(session_id)
    except StripeRequestError:  # it completed or expired meanwhile
        expired = gateway.retrieve_checkout_session(session_id)
    log.info("expired checkout session %s: the billable started another checkout", session_id)
    status: str = expired["status"]
    return status


def recorded_for(session_id: str, billable_key: str) -> bool:
    """Whether the app recorded the Checkout Session ``session_id`` for ``billable_key``."""
    found = get_state().db.session.scalar(
        sa.select(_SESSIONS.c.id).where(
            _SESSIONS.c.stripe_session_id == session_id,
            _SESSIONS.c.billable_key == billable_key,
        )
    )
    return found is not None


def had_subscription(billable_key: str) -> bool:
    """Whether the billable ever had a subscription (under any of its customers), as the
    local projection or a completed recorded session shows."""
    session = get_state().db.session
    subscribed = session.scalar(
        sa.select(sa.func.count())
        .select_from(Subscription)
        .where(Subscription.billable_key == billable_key)
    )
    completed = session.scalar(
        sa.select(sa.func.count())
        .select_from(CheckoutSession)
        .where(
            CheckoutSession.billable_key == billable_key,
            CheckoutSession.status == CheckoutSessionStatus.COMPLETE,
        )
    )
    return bool(subscribed or completed)
