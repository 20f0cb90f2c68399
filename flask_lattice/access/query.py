"""A billable's subscriptions as the local projection holds them (no Stripe call).

One prebuilt query reads the columns that decide access into
:class:`~.policy.SubscriptionState` snapshots (and one more reads the clocks, for rows that
live on a test clock or the sandbox's clock). The access gates resolve them with the access
policy; checkout and the portal use :func:`live_subscription` to avoid creating a second
subscription; :func:`projection_revision` tells pages when the projection changed.
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import scoped_session

from ..models import Invoice, Subscription, TestClock
from ..state import get_state
from .policy import LIVE_STATUSES, SubscriptionState

_TABLE = Subscription.__table__
_CLOCKS = TestClock.__table__
_ROW_FIELDS = SubscriptionState._fields[:-3]  # the row's own columns; the clock's follow
_CLOCK_FIELDS = (_CLOCKS.c.frozen_time, _CLOCKS.c.observed_at, _CLOCKS.c.runs)
_NO_CLOCK = (None, None, None)

# Every gated request runs this one statement object, so SQLAlchemy compiles it once per
# dialect and serves it from its compiled cache afterwards. Matching on billable_key alone
# is complete: when the projection learns which billable a customer belongs to, it fills
# in billable_key on that customer's earlier rows.
_STATES_OF_BILLABLE = sa.select(
    *(_TABLE.c[name] for name in _ROW_FIELDS), _TABLE.c.test_clock
).where(_TABLE.c.billable_key == sa.bindparam("billable_key"))
# Only rows that live on a clock (a Stripe test clock, or the sandbox's) need this second
# read; in live mode no row does, so a gate costs one query.
_CLOCKS_BY_ID = sa.select(_CLOCKS.c.stripe_clock_id, *_CLOCK_FIELDS).where(
    _CLOCKS.c.stripe_clock_id.in_(sa.bindparam("clock_ids", expanding=True))
)


def subscription_states(
    billable_key: str, session: scoped_session[Any] | None = None
) -> list[SubscriptionState]:
    """Every local subscription row of the billable, as snapshots: one query, plus one for
    the clocks when a row lives on one (a Stripe test clock or the sandbox's clock).

    Reads with ``session`` (default: the app's ``db.session``), in its transaction.
    """
    connection = (session or get_state().db.session).connection()
    rows = connection.execute(_STATES_OF_BILLABLE, {"billable_key": billable_key}).all()
    on_clocks = [row.test_clock for row in rows if row.test_clock is not None]
    if not on_clocks:  # live mode: no row has a clock
        return [SubscriptionState(*row[:-1]) for row in rows]
    found = connection.execute(_CLOCKS_BY_ID, {"clock_ids": sorted(set(on_clocks))})
    clocks = {clock[0]: tuple(clock[1:]) for clock in found}
    return [SubscriptionState(*row[:-1], *clocks.get(row.test_clock, _NO_CLOCK)) for row in rows]


def state_of_row(row: Subscription) -> SubscriptionState:
    """The access columns of a loaded ``lattice_subscriptions`` row, with its clock's (one
    query for the clock when the row lives on one): the snapshot :func:`subscription_states`
    would read for it."""
    clock: tuple[Any, ...] = _NO_CLOCK
    if row.test_clock is not None:
        found = (
            get_state()
            .db.session.connection()
            .execute(_CLOCKS_BY_ID, {"clock_ids": [row.test_clock]})
            .first()
        )
        if found is not None:
            clock = tuple(found[1:])
    return SubscriptionState(*(getattr(row, name) for name in _ROW_FIELDS), *clock)


def live_subscription(billable_key: str) -> SubscriptionState | None:
    """The billable's live subscription with the highest-ranked plan (on ties, the one
    recorded last).

    Whether Stripe still bills one, whatever the access policy says of it: a
    ``past_due`` subscription past its grace gives no access but must not be duplicated.
    """
    catalog = get_state().config.plans
    live = [state for state in subscription_states(billable_key) if state.status in LIVE_STATUSES]

    def rank(state: SubscriptionState) -> tuple[int, int]:
        key = state.plan_key
        return (catalog.get(key).rank if key and key in catalog else -1, state.id)

    return max(live, key=rank, default=None)


def projection_revision(billable_key: str) -> str:
    """A 16-hex-digit digest of the billable's projected billing state: how many subscription
    and invoice rows it has and when the latest of each was last projected (one query per
    table, no Stripe call).

    ``status.json`` reports it as ``revision``; a page renders it and polls ``status.json``
    until it changes, to know that a change was confirmed by Stripe's webhook.
    """
    session = get_state().db.session
    parts = []
    for model in (Subscription, Invoice):
        count, latest = session.execute(
            sa.select(sa.func.count(model.id), sa.func.max(model.updated_at)).where(
                model.billable_key == billable_key
            )
        ).one()
        parts.append(f"{count}@{latest}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
