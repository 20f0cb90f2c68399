"""Billing time is the subscription's clock: the sandbox's clock, or a Stripe test clock.

Stripe test clocks move a customer's subscriptions through simulated time
(https://docs.stripe.com/billing/testing/test-clocks); the dates Stripe reports then live
on that clock, and so must the deadlines and proration dates compared with them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from flask_lattice.models import Customer
from tests.helpers.lifecycle import EventFeed, status_of
from tests.helpers.spine import objects, post_checkout, session_id_of, signed_in
from tests.helpers.subscriptions import subscribe
from tests.helpers.support import host

CARD_FAILS_ON_CHARGE = "4000000000000341"
HOUR = 3600
DAY = 24 * HOUR


def test_the_grace_period_ends_three_days_after_the_failed_renewal_in_sandbox_time(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    app = app_factory(sandbox=sandbox, LATTICE_PAST_DUE_GRACE=3 * DAY)
    client, _ = signed_in(app)
    feed = EventFeed(app, sandbox)
    response = post_checkout(client, "team")  # 14-day trial; the card fails when charged
    sandbox.complete_checkout(
        session_id_of(response.headers["Location"]), card=CARD_FAILS_ON_CHARGE
    )
    feed.settle()
    (subscription,) = objects(sandbox, "subscription")
    renewal = subscription["trial_end"]

    sandbox.advance(to=renewal + HOUR)  # the first charge fails: past_due
    delivered = feed.settle()
    assert "invoice.payment_failed" in [event["type"] for event in delivered]
    assert status_of(client) == {
        "plan": "team",
        "plan_name": "Team",
        "status": "past_due",
        "active": True,
    }

    sandbox.advance(to=renewal + 2 * DAY)
    feed.settle()
    assert status_of(client)["active"] is True  # two days in: within the grace period

    sandbox.advance(to=renewal + 4 * DAY)  # the app's wall clock has hardly moved
    feed.settle()
    assert status_of(client) == {
        "plan": "free",
        "plan_name": "Free",
        "status": "past_due",
        "active": False,
    }


def _prorated(amount: int, start: int, end: int, at: int) -> int:
    """Stripe's proration of ``amount`` for the rest of the period [start, end) from ``at``:
    https://docs.stripe.com/billing/subscriptions/prorations (time-based, per second)."""
    return round(amount * (end - at) / (end - start))


def test_the_proration_after_a_ten_day_clock_advance_follows_stripes_formula(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    app = app_factory(sandbox=sandbox, LATTICE_PRORATION_BEHAVIOR="always_invoice")
    subscriber = subscribe(app, sandbox)  # Pro monthly, 1,200
    feed = EventFeed(app, sandbox)
    feed.seen = 0
    feed.settle()
    item = subscriber.stripe()["items"]["data"][0]
    start, end = item["current_period_start"], item["current_period_end"]

    sandbox.advance(days=10)
    feed.settle()
    page = subscriber.client.get("/billing/subscription/swap?plan=team&interval=month")
    assert page.status_code == 200, page.get_data(as_text=True)
    now = sandbox.now()
    text = page.get_data(as_text=True)
    due = int(text.split('data-testid="swap-due-today" data-amount="', 1)[1].split('"', 1)[0])
    expected = _prorated(4900, start, end, now) - _prorated(1200, start, end, now)
    assert abs(due - expected) <= 1, (due, expected)
    assert due < 3700 * 0.75  # not the full month's difference


def test_a_subscription_on_a_stripe_test_clock_is_judged_at_the_clocks_time(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    app = app_factory(sandbox=sandbox, LATTICE_PAST_DUE_GRACE=3 * DAY)
    client, user_id = signed_in(app)
    feed = EventFeed(app, sandbox)
    stripe = sandbox.client()
    clock = stripe.v1.test_helpers.test_clocks.create(params={"frozen_time": sandbox.now()})
    customer = stripe.v1.customers.create(
        params={"email": "ada@example.com", "test_clock": clock.id}
    )
    with app.app_context():  # the host created its customer on a test clock
        host(app).db.session.add(
            Customer(billable_key=f"user:{user_id}", stripe_customer_id=customer.id)
        )
        host(app).db.session.commit()
    response = post_checkout(client, "team")
    session_id = session_id_of(response.headers["Location"])
    assert stripe.v1.checkout.sessions.retrieve(session_id).customer == customer.id
    sandbox.complete_checkout(session_id, card=CARD_FAILS_ON_CHARGE)
    feed.settle()
    (subscription,) = objects(sandbox, "subscription")
    assert subscription["test_clock"] == clock.id
    assert status_of(client)["status"] == "trialing"

    # Only the test clock moves; the sandbox's own clock and the wall clock stay put.
    renewal = subscription["trial_end"]
    stripe.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": renewal + DAY})
    delivered = feed.settle()
    assert "test_helpers.test_clock.ready" in [event["type"] for event in delivered]
    assert status_of(client)["status"] == "past_due"
    assert status_of(client)["active"] is True
    stripe.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": renewal + 4 * DAY})
    feed.settle()
    assert status_of(client)["active"] is False
