"""Where a billable stands, read from the local projection only (no Stripe call)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..models import Customer, Subscription
from ..plans import Plan
from ..state import get_state

LIVE_STATUSES = ("active", "trialing", "past_due")


@dataclass(frozen=True)
class Standing:
    """The plan in force for a billable and the subscription behind it."""

    plan: Plan | None
    status: str | None
    subscription_id: str | None

    @property
    def active(self) -> bool:
        """Whether a live (active, trialing or past_due) subscription backs the plan."""
        return self.status in LIVE_STATUSES

    def as_json(self) -> dict[str, Any]:
        """The ``status.json`` body."""
        return {
            "plan": self.plan.key if self.plan else None,
            "plan_name": self.plan.name if self.plan else None,
            "status": self.status,
            "active": self.active,
        }


def live_subscription(billable_key: str) -> Subscription | None:
    """The billable's live subscription with the highest-ranked plan, newest first on ties.

    Matches rows by billable key, or by the billable's customer for rows projected
    before the billable was known.
    """
    state = get_state()
    customer_ids = sa.select(Customer.stripe_customer_id).where(
        Customer.billable_key == billable_key
    )
    rows = state.db.session.scalars(
        sa.select(Subscription)
        .where(
            sa.or_(
                Subscription.billable_key == billable_key,
                Subscription.stripe_customer_id.in_(customer_ids),
            ),
            Subscription.status.in_(LIVE_STATUSES),
        )
        .order_by(Subscription.created_at.desc(), Subscription.id.desc())
    ).all()
    catalog = state.config.plans

    def rank(row: Subscription) -> int:
        return catalog.get(row.plan_key).rank if row.plan_key and row.plan_key in catalog else -1

    return max(rows, key=rank, default=None)


def standing(billable_key: str | None) -> Standing:
    """The billable's standing; the free plan (if any) when nothing is live."""
    catalog = get_state().config.plans
    row = live_subscription(billable_key) if billable_key else None
    if row is None:
        return Standing(plan=catalog.free_plan, status=None, subscription_id=None)
    plan = catalog.get(row.plan_key) if row.plan_key and row.plan_key in catalog else None
    return Standing(plan=plan, status=row.status, subscription_id=row.stripe_subscription_id)
