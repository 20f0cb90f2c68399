"""Reads of the projected subscriptions: counts, trials, dunning, cancels, one billable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import defer, raiseload

from ..access.policy import LIVE_STATUSES, AccessPolicy, SubscriptionState
from ..models import Customer, Invoice, Subscription, WebhookEvent
from ..state import get_state
from .paging import Page, keyset_page

#: How far ahead "trials ending soon" looks.
TRIAL_HORIZON = timedelta(days=7)
#: How many rows each short list shows (the full lists are the filtered pages).
SHORT_LIST = 10
#: Rows per page of the subscription list.
PAGE_SIZE = 25
#: List rows need neither the items nor the raw Stripe object.
_LIST_ONLY = (raiseload(Subscription.items), defer(Subscription.raw, raiseload=True))


def counts() -> list[tuple[str, str | None, int]]:
    """``(status, plan key, count)`` over every projected subscription."""
    session = get_state().db.session
    rows = session.execute(
        sa.select(Subscription.status, Subscription.plan_key, sa.func.count())
        .group_by(Subscription.status, Subscription.plan_key)
        .order_by(Subscription.status, Subscription.plan_key)
    )
    return [(status, plan, int(count)) for status, plan, count in rows]


def subscriptions_page(
    status: str | None, plan: str | None, cursor: str | None
) -> Page[Subscription]:
    """One page of subscriptions (newest row first), by ``status`` and ``plan`` key."""
    query = sa.select(Subscription).options(*_LIST_ONLY)
    if status:
        query = query.where(Subscription.status == status)
    if plan:
        query = query.where(Subscription.plan_key == plan)
    columns = (Subscription.id,)
    return keyset_page(get_state().db.session, query, columns, cursor, PAGE_SIZE)  # type: ignore[arg-type]


def trials_ending(now: datetime) -> list[Subscription]:
    """``trialing`` subscriptions whose trial ends within :data:`TRIAL_HORIZON`, soonest first."""
    return list(
        get_state().db.session.scalars(
            sa.select(Subscription)
            .options(*_LIST_ONLY)
            .where(
                Subscription.status == "trialing",
                Subscription.trial_end.is_not(None),
                Subscription.trial_end < now + TRIAL_HORIZON,
            )
            .order_by(Subscription.trial_end)
            .limit(SHORT_LIST)
        )
    )


@dataclass(frozen=True)
class PastDue:
    """A ``past_due`` subscription and when the access policy ends its access (None: not
    on its own; see :meth:`~flask_lattice.access.policy.AccessPolicy.deadline`)."""

    subscription: Subscription
    deadline: datetime | None


def past_due(now: datetime) -> list[PastDue]:
    """``past_due`` subscriptions with their access deadline, oldest period end first."""
    policy = AccessPolicy.from_config(get_state().config)
    rows = get_state().db.session.scalars(
        sa.select(Subscription)
        .options(*_LIST_ONLY)
        .where(Subscription.status == "past_due")
        .order_by(Subscription.current_period_end)
        .limit(SHORT_LIST)
    )
    return [PastDue(row, policy.deadline(state_of(row), now)) for row in rows]


def state_of(row: Subscription) -> SubscriptionState:
    """The access columns of ``row``."""
    return SubscriptionState(**{name: getattr(row, name) for name in SubscriptionState._fields})


def scheduled_cancels() -> list[Subscription]:
    """Live subscriptions set to end (``cancel_at_period_end`` or ``cancel_at``)."""
    # A union of two index lookups: few rows are set to cancel, whatever the table size.
    scheduled = sa.union(
        sa.select(Subscription.id).where(Subscription.cancel_at_period_end == sa.true()),
        sa.select(Subscription.id).where(Subscription.cancel_at.is_not(None)),
    )
    return list(
        get_state().db.session.scalars(
            sa.select(Subscription)
            .options(*_LIST_ONLY)
            .where(Subscription.id.in_(scheduled), Subscription.status.in_(LIVE_STATUSES))
            .order_by(Subscription.current_period_end)
            .limit(SHORT_LIST)
        )
    )


@dataclass(frozen=True)
class BillableView:
    """Everything stored about one billable: its customer, subscriptions (with items),
    latest invoices and the latest events about its customer and subscriptions."""

    key: str
    customer: Customer | None
    subscriptions: list[Subscription]
    invoices: list[Invoice]
    events: list[WebhookEvent]


def billable(key: str) -> BillableView | None:
    """The stored state of billable ``key``; None when nothing is stored for it."""
    session = get_state().db.session
    customer = session.scalar(sa.select(Customer).where(Customer.billable_key == key))
    subscriptions = list(
        session.scalars(
            sa.select(Subscription)
            .where(Subscription.billable_key == key)
            .order_by(Subscription.id.desc())
        )
    )
    if customer is None and not subscriptions:
        return None
    invoices = list(
        session.scalars(
            sa.select(Invoice)
            .where(Invoice.billable_key == key)
            .order_by(Invoice.stripe_created.desc())
            .limit(24)
        )
    )
    objects: list[Any] = [row.stripe_subscription_id for row in subscriptions]
    if customer is not None:
        objects.append(customer.stripe_customer_id)
    events = list(
        session.scalars(
            sa.select(WebhookEvent)
            .where(WebhookEvent.object_id.in_(objects))
            .order_by(WebhookEvent.created.desc())
            .limit(50)
        )
    )
    return BillableView(key, customer, subscriptions, invoices, events)
