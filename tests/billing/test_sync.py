"""``flask lattice sync`` heals a database that missed every webhook."""

from __future__ import annotations

from typing import Any

from flask import Flask

from tests.helpers.pipeline import deliver, empty_database, price_ids, signup, snapshot
from tests.helpers.support import run_worker


def _accounts(sandbox: Any) -> dict[str, dict[str, str]]:
    """Three customers: active on pro, upgraded to team, canceled."""
    client = sandbox.client()
    accounts = {key: signup(sandbox, key) for key in ("user:a", "user:b", "user:c")}
    upgraded = accounts["user:b"]["subscription"]
    item = client.v1.subscriptions.retrieve(upgraded)["items"].data[0]
    client.v1.subscriptions.update(
        upgraded,
        params={
            "items": [{"id": item.id, "price": price_ids(sandbox)["team_monthly"]}],
            "proration_behavior": "none",
        },
    )
    client.v1.subscriptions.cancel(accounts["user:c"]["subscription"])
    return accounts


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    return {kind: rows for kind, rows in state.items() if kind != "invoices"}


def test_sync_heals_a_database_that_missed_every_webhook(app: Flask, sandbox: Any) -> None:
    accounts = _accounts(sandbox)
    deliver(app.test_client(), sandbox.events, sandbox.webhook_secret)
    run_worker(app)
    from_webhooks = _comparable(snapshot(app))

    empty_database(app)
    result = app.test_cli_runner().invoke(args=["lattice", "sync"])
    assert result.exit_code == 0, result.output
    assert "synced 3 customer(s) and 3 subscription(s); 3 changed" in result.output
    healed = _comparable(snapshot(app))
    assert healed == from_webhooks
    plans = {
        row["billable_key"]: (row["status"], row["plan_key"]) for row in healed["subscriptions"]
    }
    assert plans == {
        "user:a": ("active", "pro"),
        "user:b": ("active", "team"),
        "user:c": ("canceled", "pro"),
    }

    again = app.test_cli_runner().invoke(args=["lattice", "sync"])
    assert "0 changed" in again.output
    assert _comparable(snapshot(app)) == from_webhooks
    assert accounts


def test_sync_of_one_customer(app: Flask, sandbox: Any) -> None:
    accounts = _accounts(sandbox)
    customer = accounts["user:b"]["customer"]
    result = app.test_cli_runner().invoke(args=["lattice", "sync", "--customer", customer])
    assert result.exit_code == 0, result.output
    assert "synced 1 customer(s) and 1 subscription(s)" in result.output
    state = snapshot(app)
    assert [(row["billable_key"], row["plan_key"]) for row in state["subscriptions"]] == [
        ("user:b", "team")
    ]


def test_sync_reports_stripe_errors(app: Flask, sandbox: Any) -> None:
    result = app.test_cli_runner().invoke(args=["lattice", "sync", "--customer", "cus_missing"])
    assert result.exit_code == 1
    assert "Stripe:" in result.output
