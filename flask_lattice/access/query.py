"""A billable's subscriptions as the local projection holds them (no Stripe call).

One prebuilt query reads the columns that decide access into :class:`SubscriptionState`
snapshots. The access gates resolve them with the access policy; checkout and the portal
use :func:`live_subscription` to avoid creating a second subscription.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import scoped_session

from ..direct import DirectStatement
from ..models import Subscription, TestClock
from ..state import get_state

#: Statuses in which Stripe still bills a subscription (and which can give access).
LIVE_STATUSES = ("active", "trialing", "past_due")


class SubscriptionState(NamedTuple):
    """The columns of one ``lattice_subscriptions`` row that decide access (immutable)."""

    id: int
    stripe_subscription_id: str
    status: str
    plan_key: str | None = None
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    cancel_at: datetime | None = None
    trial_end: datetime | None = None
    pause_collection_behavior: str | None = None
    pause_resumes_at: datetime | None = None
    #: The subscription's clock (``lattice_test_clocks``), when it has one: its
    #: ``frozen_time``, when that was observed, and whether the clock runs on from it.
    clock_frozen_time: datetime | None = None
    clock_observed_at: datetime | None = None
    clock_runs: bool | None = None


_TABLE = Subscription.__table__
_CLOCKS = TestClock.__table__
_CLOCK_COLUMNS = {
    "clock_frozen_time": _CLOCKS.c.frozen_time,
    "clock_observed_at": _CLOCKS.c.observed_at,
    "clock_runs": _CLOCKS.c.runs,
}

# Every gated request runs this, so it is a DirectStatement: compiled once per dialect.
# Matching on billable_key alone is complete: when the projection learns which billable
# a customer belongs to, it fills in billable_key on that customer's earlier rows.
_STATES_OF_BILLABLE = DirectStatement(
    sa.select(
        *(
            _CLOCK_COLUMNS[name].label(name) if name in _CLOCK_COLUMNS else _TABLE.c[name]
            for name in SubscriptionState._fields
        )
    )
    .select_from(_TABLE.outerjoin(_CLOCKS, _CLOCKS.c.stripe_clock_id == _TABLE.c.test_clock))
    .where(_TABLE.c.billable_key == sa.bindparam("billable_key"))
)


def subscription_states(
    billable_key: str, session: scoped_session[Any] | None = None
) -> list[SubscriptionState]:
    """Every local subscription row of the billable, as snapshots (one query).

    Reads with ``session`` (default: the app's ``db.session``), in its transaction.
    """
    connection = (session or get_state().db.session).connection()
    rows = _STATES_OF_BILLABLE.rows(connection, {"billable_key": billable_key})
    return [SubscriptionState._make(row) for row in rows]


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
