"""The sandbox's own clock is visible the way a Stripe test clock is: retrievable as
``clock_sandbox``, and announced by ``test_helpers.test_clock.ready`` when it moves
(https://docs.stripe.com/api/test_clocks/advance)."""

from __future__ import annotations

import stripe

from flask_lattice.sandbox import StripeSandbox


def test_the_sandbox_clock_reads_like_a_test_clock(
    stripe_client: stripe.StripeClient, sb: StripeSandbox
) -> None:
    clock = stripe_client.v1.test_helpers.test_clocks.retrieve("clock_sandbox")
    assert clock.object == "test_helpers.test_clock" and clock.status == "ready"
    assert clock.frozen_time == sb.now()
    mark = len(sb.events)
    moved = sb.advance(days=3)
    (ready,) = sb.events[mark:]
    assert ready["type"] == "test_helpers.test_clock.ready"
    assert ready["data"]["object"]["id"] == "clock_sandbox"
    assert ready["data"]["object"]["frozen_time"] == moved == ready["created"]
    assert (
        stripe_client.v1.test_helpers.test_clocks.retrieve("clock_sandbox").frozen_time == sb.now()
    )
    assert [c.id for c in stripe_client.v1.test_helpers.test_clocks.list().data] == []


def test_advancing_a_test_clock_announces_its_new_time(
    stripe_client: stripe.StripeClient, sb: StripeSandbox
) -> None:
    clock = stripe_client.v1.test_helpers.test_clocks.create(params={"frozen_time": sb.now()})
    mark = len(sb.events)
    target = clock.frozen_time + 86_400
    stripe_client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": target})
    stripe_client.v1.test_helpers.test_clocks.retrieve(clock.id)  # the advance finishes
    types = [event["type"] for event in sb.events[mark:]]
    assert types == ["test_helpers.test_clock.advancing", "test_helpers.test_clock.ready"]
    ready = sb.events[mark:][-1]
    assert (ready["data"]["object"]["id"], ready["data"]["object"]["frozen_time"]) == (
        clock.id,
        target,
    )
