"""Start a Checkout Session for a plan, or send a subscriber to the portal instead.

The price comes only from the catalog. A billable that already has a live subscription
(in the local projection, or in Stripe when its webhook has not landed yet) is sent to
the portal's ``subscription_update`` flow rather than getting a second subscription.
Each session created is recorded (:mod:`.sessions`), and a billable has at most one
open signup session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..access.query import live_subscription
from ..billable import BILLABLE_METADATA_KEY, Billable
from ..errors import CheckoutRefused, UnknownPlanError
from ..models import Customer
from ..plans import Plan
from ..state import get_state
from .customers import with_customer
from .portal import live_in_stripe, open_portal
from .prices import offered_price
from .sessions import (
    Choice,
    had_subscription,
    record_session,
    settle_open_sessions,
)

PLAN_METADATA_KEY = "lattice_plan"
INTERVAL_METADATA_KEY = "lattice_interval"
_MAX_REPLAYS = 3


@dataclass(frozen=True)
class CheckoutStart:
    """Where to send the billable: a Checkout page, or the portal for a subscriber."""

    url: str
    to_portal: bool


def sellable_plan(plan_key: str, interval: str) -> Plan:
    """The catalog plan for ``plan_key`` if it can be bought for ``interval``."""
    catalog = get_state().config.plans
    try:
        plan = catalog.get(plan_key)
    except UnknownPlanError:
        raise CheckoutRefused(f"There is no plan {plan_key!r}.") from None
    if plan.is_free:
        raise CheckoutRefused(f"The {plan.name} plan is free and needs no checkout.")
    if interval not in plan.prices:
        offered = " or ".join(plan.prices)
        raise CheckoutRefused(f"The {plan.name} plan is billed per {offered}, not {interval!r}.")
    return plan


def start_checkout(
    billable: Billable,
    plan: Plan,
    interval: str,
    *,
    success_url: str,
    cancel_url: str,
    return_url: str,
    seats: int = 1,
) -> CheckoutStart:
    """Send the billable to an open Checkout Session for ``plan`` at ``interval``.

    ``seats`` is the line item's quantity: 1 for a flat plan, the number of seats (checked
    by :func:`~flask_lattice.billing.seats.checkout_seats`) for a per-seat plan.

    ``success_url`` should contain ``{CHECKOUT_SESSION_ID}``. The billable's open session
    for the same choice (plan, interval and seats) is reused (a double submit never makes
    two); its open sessions for other choices are expired first, so at most one can be paid;
    otherwise a new session is created and recorded in ``lattice_checkout_sessions``. A
    session that is expired or complete is never returned. The catalog trial applies only to
    a billable that never had a subscription (under any of its customers).
    """
    return with_customer(
        billable,
        lambda customer: _start(
            billable, customer, plan, interval, success_url, cancel_url, return_url, seats
        ),
    )


def _start(
    billable: Billable,
    customer: Customer,
    plan: Plan,
    interval: str,
    success_url: str,
    cancel_url: str,
    return_url: str,
    seats: int,
) -> CheckoutStart:
    state = get_state()
    price = offered_price(plan, interval)
    local = live_subscription(billable.key)
    remote = state.stripe.list_subscriptions(customer.stripe_customer_id, status="all")
    live = local.stripe_subscription_id if local is not None else live_in_stripe(remote)
    if live is not None:
        url = open_portal(
            billable, return_url=return_url, flow="subscription_update", subscription_id=live
        )
        return CheckoutStart(url=url, to_portal=True)
    choice = Choice(plan.key, interval, seats)
    settled = settle_open_sessions(billable.key, customer.stripe_customer_id, choice)
    if settled.reuse is not None:
        return CheckoutStart(url=settled.reuse, to_portal=False)
    metadata = {
        BILLABLE_METADATA_KEY: billable.key,
        PLAN_METADATA_KEY: plan.key,
        INTERVAL_METADATA_KEY: interval,
    }
    subscription_data: dict[str, Any] = {"metadata": metadata}
    if plan.trial_days and not remote and not had_subscription(billable.key):
        subscription_data["trial_period_days"] = plan.trial_days
    params: dict[str, Any] = {
        "mode": "subscription",
        "customer": customer.stripe_customer_id,
        "client_reference_id": billable.key,
        "line_items": [{"price": price.stripe_price_id, "quantity": choice.seats}],
        "metadata": metadata,
        "subscription_data": subscription_data,
        "allow_promotion_codes": state.config.allow_promotion_codes,
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    # The key is fresh after each recorded session: concurrent submits share one session,
    # and a purchase after an expired or completed session gets a new one.
    remote_ids = ",".join(sorted(sub["id"] for sub in remote))
    scope = f"{remote_ids}|after:{settled.after}"
    for _ in range(_MAX_REPLAYS):
        session = state.stripe.create_checkout_session(params, scope=scope)
        open_now = session["status"] == "open" and bool(session["url"])
        if open_now and record_session(
            billable.key, customer.stripe_customer_id, choice, session["id"]
        ):
            return CheckoutStart(url=session["url"], to_portal=False)
        scope = f"{scope}+{session['id']}"
    raise CheckoutRefused("Checkout could not be started; please try again.")
