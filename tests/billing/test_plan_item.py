"""One rule says which subscription item carries the plan: the projection and the
subscription operations agree on a subscription with two plan items."""

from __future__ import annotations

from typing import Any

from flask import Flask

from flask_lattice import Billable
from flask_lattice.billing.operations import load_target
from flask_lattice.plans import parse_plans
from tests.helpers.support import TEST_PLANS, run_worker


def _item(price_id: str, lookup_key: str | None) -> dict[str, Any]:
    return {"id": f"si_{price_id}", "price": {"id": price_id, "lookup_key": lookup_key}}


def test_the_highest_ranked_catalog_item_carries_the_plan() -> None:
    catalog = parse_plans(TEST_PLANS)
    pro, team, other = (
        _item("price_p", "pro_monthly"),
        _item("price_t", "team_monthly"),
        _item("price_x", None),
    )
    assert catalog.plan_item([other, pro, team])[0] is team
    assert catalog.plan_item([team, pro])[0] is team
    item, plan = catalog.plan_item([other])
    assert item is other and plan is None
    assert catalog.plan_item([]) == (None, None)


def test_projection_and_operations_agree_on_a_two_plan_item_subscription(
    app: Flask, sandbox: Any, live_server: str, subscriber: Any
) -> None:
    assert sandbox.wait_for_deliveries()
    run_worker(app)
    stripe_client = sandbox.client()
    team_price = stripe_client.v1.prices.list(params={"lookup_keys": ["team_monthly"]}).data[0]
    current = stripe_client.v1.subscriptions.retrieve(subscriber.subscription_id)
    stripe_client.v1.subscriptions.update(
        subscriber.subscription_id,
        params={
            "items": [{"id": current["items"].data[0].id}, {"price": team_price.id}],
            "proration_behavior": "none",
        },
    )
    assert sandbox.wait_for_deliveries()
    run_worker(app)
    row = subscriber.row()
    assert row is not None and row.plan_key == "team"
    with app.app_context():
        target = load_target(Billable(f"user:{subscriber.user_id}"), subscriber.subscription_id)
    assert target.plan is not None and target.plan.key == "team"
    assert target.item["price"]["id"] == team_price.id
