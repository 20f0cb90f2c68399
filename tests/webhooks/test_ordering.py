"""Out-of-order and duplicated deliveries converge on the in-order projection.

The sandbox's real event streams for five scenarios are recorded once per module. Each
hypothesis example replays one scenario's events shuffled, with duplicates, in two
batches (so some duplicates arrive after the original was processed), through the
webhook route and a real RQ worker into an emptied database, and compares the
projection with the in-order replay. Every fetch policy runs (``always-fetch``,
``when-safe``, ``always-trust``), each example drawing one; the in-order replay under
``always-fetch`` is the reference. ``LATTICE_ORDERING_EXAMPLES`` sets the examples per
lifecycle (15 by default; ``make ordering`` runs 1,000).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_lattice.testing import ensure_prices
from tests.helpers.pipeline import (
    JSON,
    attempted_once,
    deliver,
    empty_database,
    event_statuses,
    events_since,
    signup,
    snapshot,
    switch_price,
)
from tests.helpers.support import TEST_PRICES, run_worker

FAILING_CARD = "4000000000000341"
POLICIES = ("always-fetch", "when-safe", "always-trust")
EXAMPLES = int(os.environ.get("LATTICE_ORDERING_EXAMPLES", "15"))
#: How many shuffled examples ran, per scenario (printed by ``make ordering``).
EXAMPLES_RUN: dict[str, int] = {}


def _record(sandbox: Any) -> dict[str, list[JSON]]:
    """Run every scenario once against the sandbox; returns each one's events."""
    client = sandbox.client()
    start = len(sandbox.events)
    customers: dict[str, str] = {}

    def scenario(name: str, run: Callable[[], str]) -> None:
        customers[name] = run()

    def upgrade() -> str:
        ids = signup(sandbox, "user:upgrade")
        # A second later, so the change's events do not tie with the signup's.
        sandbox.advance(seconds=1)
        switch_price(sandbox, ids["subscription"], "team_monthly")
        return ids["customer"]

    def cancel_at_period_end() -> str:
        ids = signup(sandbox, "user:cancel")
        client.v1.subscriptions.update(ids["subscription"], params={"cancel_at_period_end": True})
        sandbox.advance(days=32)
        return ids["customer"]

    def renewal() -> str:
        ids = signup(sandbox, "user:renewal")
        sandbox.advance(days=32)
        return ids["customer"]

    def dunning() -> str:
        ids = signup(sandbox, "user:dunning")
        sandbox.update_payment_method(ids["customer"], card=FAILING_CARD)
        sandbox.advance(days=32)
        sandbox.advance(days=16)
        return ids["customer"]

    scenario("signup", lambda: signup(sandbox, "user:signup")["customer"])
    scenario("upgrade", upgrade)
    scenario("cancel_at_period_end", cancel_at_period_end)
    scenario("renewal", renewal)
    scenario("dunning", dunning)
    # Each customer's whole stream, to the end of the recording: a later scenario's clock
    # advance also renews earlier scenarios' subscriptions, and a stream cut short of those
    # renewals would end on a state the objects have since left (which a fetch then sees).
    events = events_since(sandbox, start)
    return {
        name: [
            event
            for event in events
            if customer in (event["data"]["object"]["id"], event["data"]["object"].get("customer"))
        ]
        for name, customer in customers.items()
    }


@pytest.fixture(scope="module")
def streams(sandbox_server: Any) -> Iterator[tuple[Any, dict[str, list[JSON]]]]:
    """The recorded streams; the sandbox keeps their objects for re-fetching."""
    sandbox_server.reset()
    ensure_prices(sandbox_server.client(), TEST_PRICES)
    yield sandbox_server, _record(sandbox_server)
    sandbox_server.reset()


def _replay(app: Flask, secret: str, batches: list[list[JSON]]) -> JSON:
    empty_database(app)
    client = app.test_client()
    for batch in batches:
        deliver(client, batch, secret)
        run_worker(app)
    statuses = event_statuses(app)
    assert all(status in ("processed", "ignored") for status, _ in statuses.values()), statuses
    assert attempted_once(statuses), statuses
    return snapshot(app)


SCENARIOS = ["signup", "upgrade", "cancel_at_period_end", "renewal", "dunning"]
EXPECTED_FINAL = {
    "signup": ("active", "pro"),
    "upgrade": ("active", "team"),
    "cancel_at_period_end": ("canceled", "pro"),
    "renewal": ("active", "pro"),
    "dunning": ("canceled", "pro"),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_shuffled_and_duplicated_streams_converge(
    app_factory: Callable[..., Flask], streams: tuple[Any, dict[str, list[JSON]]], scenario: str
) -> None:
    sandbox, recorded = streams
    events = recorded[scenario]
    # One app per fetch policy, all on one database.
    apps = {
        policy: app_factory(sandbox=sandbox, LATTICE_TRUST_WEBHOOK_PAYLOADS=policy)
        for policy in POLICIES
    }
    in_order = _replay(apps["always-fetch"], sandbox.webhook_secret, [events])
    for policy in POLICIES[1:]:
        assert _replay(apps[policy], sandbox.webhook_secret, [events]) == in_order, policy
    billable = "user:" + scenario.split("_", maxsplit=1)[0]
    assert [
        (row["status"], row["plan_key"])
        for row in in_order["subscriptions"]
        if row["billable_key"] == billable
    ] == [EXPECTED_FINAL[scenario]]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.data())
    def shuffled(data: st.DataObject) -> None:
        policy = data.draw(st.sampled_from(POLICIES), label="fetch policy")
        extra = data.draw(st.lists(st.sampled_from(range(len(events))), max_size=len(events)))
        order = data.draw(st.permutations(list(range(len(events))) + extra))
        cut = data.draw(st.integers(0, len(order)))
        batches = [[events[index] for index in part] for part in (order[:cut], order[cut:])]
        assert _replay(apps[policy], sandbox.webhook_secret, batches) == in_order
        EXAMPLES_RUN[scenario] = EXAMPLES_RUN.get(scenario, 0) + 1

    shuffled()
    print(f"\n{scenario}: {EXAMPLES_RUN.get(scenario, 0)} shuffled examples run")
