"""Open the Stripe customer portal, optionally deep-linked into one flow.

A portal session URL is a bearer credential: it is returned to the caller for an
immediate redirect and never logged, cached or stored.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from ..access.policy import LIVE_STATUSES
from ..access.query import live_subscription
from ..billable import Billable
from ..errors import PortalRefused, StripeNotFound, SubscriptionNotFound
from ..models import Customer, Subscription
from ..state import get_state
from .customers import find_customer, with_customer

FLOWS = ("payment_method_update", "subscription_cancel", "subscription_update")
SUBSCRIPTION_FLOWS = ("subscription_cancel", "subscription_update")
_SUBSCRIPTION_ID = re.compile(r"sub_[A-Za-z0-9_]{1,250}")
# Portal sessions are short-lived, so a create is only replayed within this window.
_PORTAL_IDEMPOTENCY_WINDOW = 60


def open_portal(
    billable: Billable,
    *,
    return_url: str,
    flow: str | None = None,
    subscription_id: str | None = None,
) -> str:
    """The URL of a new portal session for the billable, to redirect to at once.

    ``flow`` deep-links into ``payment_method_update``, ``subscription_cancel`` or
    ``subscription_update``; the two subscription flows act on ``subscription_id``,
    which must belong to the billable (default: its live subscription).
    """
    if flow is not None and flow not in FLOWS:
        raise PortalRefused(f"Unknown portal flow {flow!r}; use one of {', '.join(FLOWS)}.")
    if find_customer(billable.key) is None:
        raise PortalRefused(
            "There is no billing account for you yet: choose a plan on the pricing page first."
        )

    def create(customer: Customer) -> str:
        params: dict[str, Any] = {
            "customer": customer.stripe_customer_id,
            "return_url": return_url,
        }
        if flow is not None:
            params["flow_data"] = _flow_data(flow, billable, customer, subscription_id, return_url)
        scope = str(int(time.time() // _PORTAL_IDEMPOTENCY_WINDOW))
        session = get_state().stripe.create_portal_session(params, scope=scope)
        url: str = session["url"]
        return url

    # A stored customer that Stripe does not have is replaced, not a permanent error.
    return with_customer(billable, create)


def _flow_data(
    flow: str, billable: Billable, customer: Customer, subscription_id: str | None, return_url: str
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": flow,
        "after_completion": {"type": "redirect", "redirect": {"return_url": return_url}},
    }
    if flow in SUBSCRIPTION_FLOWS:
        owned: str | None
        if subscription_id:
            owned = owned_subscription(billable, customer, subscription_id)
        else:
            owned = default_subscription(billable, customer)
        if owned is None:
            raise PortalRefused("You have no active subscription to change or cancel.")
        data[flow] = {"subscription": owned}
    return data


def owned_subscription(billable: Billable, customer: Customer, subscription_id: str) -> str:
    """``subscription_id`` if it belongs to the billable, else :class:`SubscriptionNotFound`.

    The local projection answers first; a subscription it does not know yet (its webhook
    has not landed) is checked against Stripe.
    """
    if not _SUBSCRIPTION_ID.fullmatch(subscription_id):
        raise SubscriptionNotFound()
    row = get_state().db.session.scalar(
        sa.select(Subscription).where(Subscription.stripe_subscription_id == subscription_id)
    )
    if row is not None:
        if (
            row.billable_key == billable.key
            or row.stripe_customer_id == customer.stripe_customer_id
        ):
            return subscription_id
        raise SubscriptionNotFound()
    try:
        remote = get_state().stripe.retrieve_subscription(subscription_id)
    except StripeNotFound:
        raise SubscriptionNotFound() from None
    if remote["customer"] != customer.stripe_customer_id:
        raise SubscriptionNotFound()
    return subscription_id


def default_subscription(billable: Billable, customer: Customer) -> str | None:
    """The billable's live subscription: local projection first, then Stripe."""
    row = live_subscription(billable.key)
    if row is not None:
        return row.stripe_subscription_id
    return stripe_live_subscription(customer.stripe_customer_id)


def stripe_live_subscription(customer_id: str) -> str | None:
    """A live subscription of the customer according to Stripe (covers unlanded webhooks)."""
    return live_in_stripe(get_state().stripe.list_subscriptions(customer_id, status="all"))


def live_in_stripe(subscriptions: Iterable[Any]) -> str | None:
    """The id of the first live subscription among Stripe ``subscription`` objects (a status
    in :data:`~flask_lattice.access.policy.LIVE_STATUSES`), or ``None``: the one rule for
    "is there a live subscription in Stripe"."""
    for remote in subscriptions:
        if remote["status"] in LIVE_STATUSES:
            found: str = remote["id"]
            return found
    return None
