"""``flask lattice catalog push``: create or update Stripe products and prices from the
catalog, by lookup key.

Only prices given with an amount in ``LATTICE_PLANS`` are managed (see
:mod:`flask_lattice.plans`). Each plan has one product, found by its metadata
``lattice_plan``; each managed price is found by its lookup key. Stripe never changes a
price's amount, so a price whose amount, currency or interval differs is replaced: a new
price takes over the lookup key (``transfer_lookup_key``) and the old one is archived.
Existing subscriptions keep their old price until they are moved. Pushing twice changes
nothing the second time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..plans import Interval, Plan, PriceAmount
from ..stripe_gateway import StripeGateway
from .prices import format_amount

#: The product metadata key that names the plan a product belongs to.
PLAN_METADATA_KEY = "lattice_plan"


@dataclass(frozen=True)
class CatalogChange:
    """One change ``push`` makes (or would make, with ``dry_run``)."""

    action: str  # "create product", "update product", "create price", "replace price"
    target: str  # the plan key (products) or the lookup key (prices)
    detail: str
    #: What to send to Stripe; filled in by the planner.
    params: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: The Stripe id this change replaces or updates, if any.
    existing_id: str | None = None

    def __str__(self) -> str:
        return f"{self.action:<15} {self.target}: {self.detail}"


def unmanaged_prices(plans: Iterable[Plan]) -> list[str]:
    """``plan.interval`` of every paid price that has no amount in the catalog."""
    return [
        f"{plan.key}.{interval}"
        for plan in plans
        for interval in plan.prices
        if interval not in plan.amounts
    ]


def plan_changes(gateway: StripeGateway, plans: Iterable[Plan]) -> list[CatalogChange]:
    """What ``push`` would change in Stripe to match ``plans``; reads Stripe only."""
    managed = [plan for plan in plans if plan.amounts]
    if not managed:
        return []
    products = _plan_products(gateway)
    lookup_keys = [plan.prices[interval] for plan in managed for interval in plan.amounts]
    prices = {price["lookup_key"]: price for price in gateway.list_prices(lookup_keys=lookup_keys)}
    changes: list[CatalogChange] = []
    for plan in managed:
        changes.extend(_product_changes(plan, products.get(plan.key)))
        product = products.get(plan.key)
        for interval, amount in plan.amounts.items():
            change = _price_change(
                plan, interval, amount, prices.get(plan.prices[interval]), product
            )
            if change is not None:
                changes.append(change)
    return changes


def _plan_products(gateway: StripeGateway) -> dict[str, Any]:
    """Plan key → the product whose metadata names that plan."""
    return {
        product["metadata"][PLAN_METADATA_KEY]: product
        for product in gateway.list_products()
        if PLAN_METADATA_KEY in (product["metadata"] or {})
    }


def _product_changes(plan: Plan, product: Any) -> list[CatalogChange]:
    params: dict[str, Any]
    if product is None:
        params = {"name": plan.name, "metadata": {PLAN_METADATA_KEY: plan.key}}
        return [CatalogChange("create product", plan.key, repr(plan.name), params)]
    if product["name"] != plan.name or not product["active"]:
        detail = f"{product['name']!r} → {plan.name!r}" + (
            "" if product["active"] else ", unarchive"
        )
        params = {"name": plan.name, "active": True}
        return [CatalogChange("update product", plan.key, detail, params, product["id"])]
    return []


def _describe(amount: PriceAmount, interval: str) -> str:
    return f"{format_amount(amount.unit_amount, amount.currency)} / {interval}"


def _price_change(
    plan: Plan, interval: Interval, amount: PriceAmount, price: Any, product: Any
) -> CatalogChange | None:
    lookup_key = plan.prices[interval]
    params: dict[str, Any] = {
        "unit_amount": amount.unit_amount,
        "currency": amount.currency,
        "recurring": {"interval": interval, "interval_count": 1},
        "lookup_key": lookup_key,
        "nickname": f"{plan.name} ({interval})",
        "metadata": {PLAN_METADATA_KEY: plan.key},
    }
    wanted = _describe(amount, interval)
    if price is None:
        return CatalogChange("create price", lookup_key, wanted, params)
    recurring = price["recurring"]
    product_id = price["product"] if isinstance(price["product"], str) else price["product"]["id"]
    current = PriceAmount(price["unit_amount"] or 0, price["currency"])
    same = (
        price["active"]
        and price["unit_amount"] == amount.unit_amount
        and price["currency"] == amount.currency
        and recurring is not None
        and recurring["interval"] == interval
        and recurring["interval_count"] == 1
        and product is not None
        and product_id == product["id"]
    )
    if same:
        return None
    every = recurring["interval"] if recurring is not None else "once"
    detail = f"{_describe(current, every)} ({price['id']}"
    detail += ")" if price["active"] else ", archived)"
    return CatalogChange(
        "replace price",
        lookup_key,
        f"{detail} → {wanted}",
        {**params, "transfer_lookup_key": True},
        price["id"],
    )


def push(
    gateway: StripeGateway, plans: Iterable[Plan], *, dry_run: bool = False
) -> list[CatalogChange]:
    """Make Stripe match the catalog's amounts; returns the changes (made, or not with
    ``dry_run``). Raises ``StripeAPIError`` when a Stripe call fails; changes made before
    it stay made, and pushing again finishes the job."""
    plans = list(plans)
    changes = plan_changes(gateway, plans)
    if dry_run:
        return changes
    product_ids: dict[str, str] = {}
    for change in changes:
        if change.action == "create product":
            product_ids[change.target] = gateway.create_product(change.params)["id"]
        elif change.action == "update product":
            assert change.existing_id is not None
            product_ids[change.target] = gateway.update_product(change.existing_id, change.params)[
                "id"
            ]
    existing = {key: product["id"] for key, product in _plan_products(gateway).items()}
    for change in changes:
        if change.action not in ("create price", "replace price"):
            continue
        plan_key = change.params["metadata"][PLAN_METADATA_KEY]
        params = {**change.params, "product": product_ids.get(plan_key) or existing[plan_key]}
        gateway.create_price(params, scope=change.existing_id or "")
        if change.existing_id is not None:
            gateway.update_price(change.existing_id, {"active": False})
    return changes
