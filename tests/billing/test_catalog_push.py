"""``flask lattice catalog push``: products and prices from the catalog, by lookup key,
against the sandbox over the real SDK.

Stripe prices never change their amount; a new price takes over the lookup key with
``transfer_lookup_key`` (https://docs.stripe.com/products-prices/manage-prices#lookup-keys).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_lattice.billing.prices import check_catalog

PRICED_PLANS: list[dict[str, Any]] = [
    {"key": "free", "name": "Free", "rank": 0},
    {
        "key": "pro",
        "name": "Pro",
        "rank": 10,
        "prices": {
            "month": {"lookup_key": "acme_pro_monthly", "amount": 1200},
            "year": {"lookup_key": "acme_pro_yearly", "amount": 12000, "currency": "usd"},
        },
    },
    {
        "key": "business",
        "name": "Business",
        "rank": 20,
        "prices": {"month": {"lookup_key": "acme_business_seat", "amount": 900, "currency": "eur"}},
    },
]


@pytest.fixture
def empty_sandbox(sandbox: Any) -> Any:
    sandbox.reset()
    return sandbox


def push(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["lattice", "catalog", "push", *args])


def prices_by_key(sandbox: Any) -> dict[str, Any]:
    listed = sandbox.client().v1.prices.list(params={"limit": 100})
    return {price.lookup_key: price for price in listed.data if price.lookup_key}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_dry_run_prints_the_diff_and_changes_nothing(
    app_factory: Callable[..., Flask], empty_sandbox: Any
) -> None:
    app = app_factory(sandbox=empty_sandbox, LATTICE_PLANS=PRICED_PLANS)
    result = push(app, "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "would create product  pro: 'Pro'",
        "would create price    acme_pro_monthly: $12.00 / month",
        "would create price    acme_pro_yearly: $120.00 / year",
        "would create product  business: 'Business'",
        "would create price    acme_business_seat: €9.00 / month",
        "5 change(s); run without --dry-run to make them",
    ]
    assert prices_by_key(empty_sandbox) == {}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_push_creates_the_catalog_once(
    app_factory: Callable[..., Flask], empty_sandbox: Any
) -> None:
    app = app_factory(sandbox=empty_sandbox, LATTICE_PLANS=PRICED_PLANS)
    first = push(app)
    assert first.exit_code == 0, first.output
    assert first.output.splitlines()[-1] == "5 change(s) made"
    prices = prices_by_key(empty_sandbox)
    assert {key: (price.unit_amount, price.currency) for key, price in prices.items()} == {
        "acme_pro_monthly": (1200, "usd"),
        "acme_pro_yearly": (12000, "usd"),
        "acme_business_seat": (900, "eur"),
    }
    assert prices["acme_pro_monthly"].product == prices["acme_pro_yearly"].product
    with app.app_context():
        assert check_catalog() == []

    again = push(app)
    assert again.output.splitlines() == ["the catalog is up to date in Stripe"]
    assert push(app, "--dry-run").output.splitlines() == ["the catalog is up to date in Stripe"]
    assert len(empty_sandbox.client().v1.products.list(params={"limit": 100}).data) == 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_changed_amount_replaces_the_price_and_archives_the_old_one(
    app_factory: Callable[..., Flask], empty_sandbox: Any
) -> None:
    push(app_factory(sandbox=empty_sandbox, LATTICE_PLANS=PRICED_PLANS))
    old = prices_by_key(empty_sandbox)["acme_pro_monthly"]
    changed = [dict(plan) for plan in PRICED_PLANS]
    changed[1] = {
        **changed[1],
        "name": "Pro Plus",
        "prices": {
            **changed[1]["prices"],
            "month": {"lookup_key": "acme_pro_monthly", "amount": 1500},
        },
    }
    app = app_factory(sandbox=empty_sandbox, LATTICE_PLANS=changed)

    dry = push(app, "--dry-run")
    assert dry.output.splitlines() == [
        "would update product  pro: 'Pro' → 'Pro Plus'",
        f"would replace price   acme_pro_monthly: $12.00 / month ({old.id}) → $15.00 / month",
        "2 change(s); run without --dry-run to make them",
    ]
    assert push(app).exit_code == 0
    new = prices_by_key(empty_sandbox)["acme_pro_monthly"]
    assert (new.id != old.id, new.unit_amount, new.product) == (True, 1500, old.product)
    archived = empty_sandbox.client().v1.prices.retrieve(old.id)
    assert (archived.active, archived.lookup_key) == (False, None)
    assert push(app).output.splitlines() == ["the catalog is up to date in Stripe"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_prices_without_amounts_are_named_as_not_managed(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    app = app_factory(sandbox=sandbox)  # the suite's catalog: lookup keys only
    result = push(app, "--dry-run")
    assert result.exit_code == 0
    assert "not managed (no amount in LATTICE_PLANS): pro.month, pro.year" in result.output
    assert result.output.splitlines()[-1] == "the catalog is up to date in Stripe"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_live_mode_needs_the_live_flag(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(
        LATTICE_STRIPE_SECRET_KEY="sk_live_acme",
        LATTICE_STRIPE_API_BASE=None,  # refused before any call, so nothing leaves
        LATTICE_PLANS=PRICED_PLANS,
    )
    result = push(app, "--dry-run")
    assert result.exit_code == 2
    assert "live-mode key; pass --live" in result.output
