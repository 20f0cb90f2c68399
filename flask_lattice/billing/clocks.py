"""Billing time of a subscription in Stripe: its test clock's time, the sandbox's clock,
or the wall clock. Proration dates come from here, so that a plan change on a test clock
(or in the sandbox after its clock moved) is prorated at the subscription's own time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..access.policy import clock_time
from ..errors import StripeNotFound
from ..models import SANDBOX_CLOCK_ID, TestClock, clock_of, from_timestamp, utcnow
from ..state import get_state


def subscription_time(subscription: Any) -> datetime:
    """The billing time (aware UTC) of a Stripe subscription object, read from its
    ``test_clock``: the clock stored by the projection, else Stripe's test clock."""
    state = get_state()
    wall = utcnow()
    clock_id = clock_of(subscription["test_clock"], state.config.stripe_api_base)
    if clock_id is None:
        return wall
    row = state.db.session.scalar(sa.select(TestClock).where(TestClock.stripe_clock_id == clock_id))
    if row is not None:
        return clock_time(row.frozen_time, row.observed_at, row.runs, wall)
    try:
        clock = state.stripe.retrieve_test_clock(clock_id)
    except StripeNotFound:  # not a sandbox, or a deleted clock
        return wall
    frozen = from_timestamp(int(clock["frozen_time"]))
    return clock_time(frozen, wall, clock_id == SANDBOX_CLOCK_ID, wall)
