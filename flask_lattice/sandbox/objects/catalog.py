"""Product, price and plan objects."""

from __future__ import annotations

from ..wire import JSON
from . import base, nulls


def product(object_id: str, created: int, name: str) -> JSON:
    """A new active service product."""
    return {
        **base("product", object_id, created),
        **nulls(
            "default_price description package_dimensions shippable statement_descriptor "
            "tax_code tax_details unit_label url"
        ),
        "active": True,
        "images": [],
        "marketing_features": [],
        "metadata": {},
        "name": name,
        "type": "service",
        "updated": created,
    }


def price(
    object_id: str,
    created: int,
    *,
    product: str,
    currency: str,
    unit_amount: int,
    interval: str | None,
    interval_count: int = 1,
) -> JSON:
    """A new active per-unit price; recurring when ``interval`` is given."""
    recurring = (
        {
            "interval": interval,
            "interval_count": interval_count,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }
        if interval
        else None
    )
    return {
        **base("price", object_id, created),
        **nulls(
            "currency_options custom_unit_amount lookup_key nickname tiers tiers_mode "
            "transform_quantity"
        ),
        "active": True,
        "billing_scheme": "per_unit",
        "currency": currency,
        "metadata": {},
        "product": product,
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "type": "recurring" if interval else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def plan(price_obj: JSON) -> JSON:
    """The legacy ``plan`` view of a recurring price (as nested in subscription items)."""
    recurring = price_obj["recurring"] or {"interval": "month", "interval_count": 1}
    return {
        **base("plan", price_obj["id"], price_obj["created"]),
        **nulls("meter tiers tiers_mode transform_usage trial_period_days"),
        "active": price_obj["active"],
        "amount": price_obj["unit_amount"],
        "amount_decimal": price_obj["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "currency": price_obj["currency"],
        "interval": recurring["interval"],
        "interval_count": recurring["interval_count"],
        "metadata": price_obj["metadata"],
        "nickname": price_obj["nickname"],
        "product": price_obj["product"],
        "usage_type": "licensed",
    }
