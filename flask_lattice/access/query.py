"""A billable's subscriptions as the local projection holds them (no Stripe call).

One prebuilt query reads the columns that decide access into
:class:`~.policy.SubscriptionState` snapshots. The access gates resolve them with the access
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
_CLOCK_COLUMNS = {
    "clock_frozen_time": _CLOCKS.c.frozen_time,
    "clock_observed_at": _CLOCKS.c.observed_at,
    "clock_runs": _CLOCKS.c.runs,
}

# Every gated request runs this one statement object, so SQLAlchemy compiles it once per
# dialect and serves it from its compiled cache afterwards. Matching on billable_key alone
# is complete: when the projection learns which billable a customer belongs to, it fills
# in billable_key on that customer's earlier rows.
_STATES_OF_BILLABLE = (
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
    rows = connection.execute(_STATES_OF_BILLABLE, {"billable_key": billable_key})
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
