"""The access policy: which plan a local subscription row grants at a given moment.

Pure functions over :class:`SubscriptionState` snapshots of projected rows (read by
:mod:`.query`) and a ``now``; nothing here talks to Stripe or the database. The table in
:doc:`access` describes :class:`AccessPolicy` row by row.

Billing time is the subscription's clock: :func:`resolve` hands each policy call the
row's :func:`billing_time` (its test clock's time, or the wall clock without one), so
deadlines computed from Stripe's dates are compared with the same clock that set them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from ..config import LatticeConfig
from ..errors import UnknownPlanError
from ..plans import Plan, PlanCatalog

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


#: How long a ``trialing`` row keeps access after its ``trial_end`` when no update has
#: arrived yet. Stripe sends one as the trial ends; this covers a late delivery.
TRIAL_END_MARGIN = timedelta(hours=1)

#: A policy: ``(subscription, now) -> plan key or None``. Register one with
#: ``@billing.access_policy``.
PolicyFunction = Callable[[SubscriptionState, datetime], str | None]


@dataclass(frozen=True)
class AccessPolicy:
    """The default policy, configured by ``LATTICE_PAST_DUE_GRACE`` and
    ``LATTICE_PAUSE_COLLECTION_ACCESS``. Calling it gives the plan key a row grants now."""

    plans: PlanCatalog
    past_due_grace: timedelta | None = None
    pause_collection_access: bool = True
    trial_end_margin: timedelta = TRIAL_END_MARGIN

    @classmethod
    def from_config(cls, config: LatticeConfig) -> AccessPolicy:
        """The policy an app's settings describe."""
        return cls(
            plans=config.plans,
            past_due_grace=config.past_due_grace,
            pause_collection_access=config.pause_collection_access,
        )

    def __call__(self, subscription: SubscriptionState, now: datetime) -> str | None:
        if subscription.plan_key not in self.plans or not self.grants_access(subscription, now):
            return None
        return subscription.plan_key

    def grants_access(self, subscription: SubscriptionState, now: datetime) -> bool:
        """Whether ``subscription`` gives access at ``now``, whatever its plan."""
        if subscription.status not in LIVE_STATUSES:
            return False
        if self._collection_paused(subscription, now):
            return False
        deadline = self.deadline(subscription, now)
        return deadline is None or now < deadline

    def deadline(self, subscription: SubscriptionState, now: datetime) -> datetime | None:
        """When access ends unless Stripe reports otherwise first (``None``: not on its own)."""
        limits: list[datetime] = []
        if subscription.status == "trialing" and subscription.trial_end is not None:
            limits.append(subscription.trial_end + self.trial_end_margin)
        if subscription.status == "past_due" and self.past_due_grace is not None:
            unpaid_since = _last_period_boundary(subscription, now)
            if unpaid_since is not None:
                limits.append(unpaid_since + self.past_due_grace)
        if subscription.cancel_at_period_end and subscription.current_period_end is not None:
            limits.append(subscription.current_period_end)
        if subscription.cancel_at is not None:
            limits.append(subscription.cancel_at)
        return min(limits, default=None)

    def _collection_paused(self, subscription: SubscriptionState, now: datetime) -> bool:
        if self.pause_collection_access or subscription.pause_collection_behavior is None:
            return False
        resumes_at = subscription.pause_resumes_at
        return resumes_at is None or now < resumes_at


def _last_period_boundary(subscription: SubscriptionState, now: datetime) -> datetime | None:
    """The renewal that went unpaid: the period end once passed, else the period start.

    Stripe moves the period forward when it invoices a renewal, so a ``past_due`` row
    usually shows the unpaid renewal as its ``current_period_start``.
    """
    end = subscription.current_period_end
    if end is not None and end <= now:
        return end
    return subscription.current_period_start


@dataclass(frozen=True)
class Access:
    """What a billable may use right now, as the gates, helpers and status pages see it."""

    #: The effective plan: the highest-ranked plan a row grants, else the free plan.
    plan: Plan | None
    #: The row granting the plan or, when none does, the most recently started one.
    subscription: SubscriptionState | None
    #: Whether a subscription grants the plan (``False`` on the free-plan fallback).
    active: bool

    @property
    def status(self) -> str | None:
        """The Stripe status of :attr:`subscription`, if there is one."""
        return self.subscription.status if self.subscription is not None else None


def billing_time(subscription: SubscriptionState, wall: datetime) -> datetime:
    """The subscription's time when the wall clock shows ``wall`` (aware UTC).

    A Stripe test clock is frozen at its ``frozen_time``; the sandbox's own clock runs on
    from the ``frozen_time`` last observed; without a clock it is ``wall``.
    """
    return clock_time(
        subscription.clock_frozen_time,
        subscription.clock_observed_at,
        bool(subscription.clock_runs),
        wall,
    )


def clock_time(
    frozen: datetime | None, observed_at: datetime | None, runs: bool, wall: datetime
) -> datetime:
    """A clock's time at ``wall``: ``frozen`` for a (frozen) test clock, ``wall`` without
    a clock. A clock that runs (the sandbox's: wall time plus an offset that only grows)
    is ``frozen`` plus the wall time since ``observed_at``, and never behind ``wall``."""
    if frozen is None:
        return wall
    if runs and observed_at is not None:
        return max(wall, frozen + max(wall - observed_at, timedelta(0)))
    return frozen


def resolve(
    subscriptions: Iterable[SubscriptionState],
    now: datetime,
    policy: PolicyFunction,
    plans: PlanCatalog,
) -> Access:
    """Combine a billable's rows: the highest-ranked granted plan wins, else the free plan.

    The row reported is the one granting the plan or, when none does, the most recently
    started one (so a page can say that a subscription ended or a payment failed).
    ``now`` is the wall clock; each row is judged at its own :func:`billing_time`.
    """
    rows = list(subscriptions)
    best: tuple[Plan, SubscriptionState] | None = None
    for row in rows:
        key = policy(row, now if row.clock_frozen_time is None else billing_time(row, now))
        if key is None:
            continue
        if key not in plans:
            raise UnknownPlanError(
                f"the access policy returned plan {key!r} for {row.stripe_subscription_id}, "
                f"which is not in LATTICE_PLANS (known plans: {', '.join(p.key for p in plans)})"
            )
        plan = plans.get(key)
        if best is None or plan.rank > best[0].rank:
            best = (plan, row)
    if best is not None:
        return Access(plan=best[0], subscription=best[1], active=True)
    latest = max(rows, key=_started, default=None)
    return Access(plan=plans.free_plan, subscription=latest, active=False)


def _started(row: SubscriptionState) -> tuple[datetime, int]:
    """Latest period first; a row without one (never paid) counts as oldest."""
    return (row.current_period_start or _NEVER, row.id)


_NEVER = datetime.min.replace(tzinfo=UTC)
