"""Seeding a sandbox catalog without a plan catalog, and signing webhook bodies.

Typical use in a host's ``conftest.py``::

    from flask_lattice.sandbox import StripeSandbox
    from flask_lattice.testing import PriceSpec, ensure_prices

    @pytest.fixture(scope="session")
    def stripe_sandbox():
        with StripeSandbox(chaos=True) as sandbox:  # webhooks shuffled, duplicated, delayed
            ensure_prices(sandbox.client(), {"pro_monthly": PriceSpec("Pro", 1200, "month")})
            yield sandbox
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import stripe


class PriceSpec(NamedTuple):
    """A recurring price to create under ``lookup_key``: product name, amount, interval."""

    product: str
    unit_amount: int
    interval: str
    currency: str = "usd"


def ensure_prices(client: stripe.StripeClient, specs: Mapping[str, PriceSpec]) -> dict[str, str]:
    """Create each missing price (one product per product name); return lookup key → price id.

    Existing prices are found by lookup key, so calling this again changes nothing.
    """
    existing = client.v1.prices.list(params={"lookup_keys": list(specs), "limit": 100})
    price_ids = {price.lookup_key: price.id for price in existing.data if price.lookup_key}
    products: dict[str, str] = {}
    for lookup_key, spec in specs.items():
        if lookup_key in price_ids:
            continue
        if spec.product not in products:
            product = client.v1.products.create(params={"name": spec.product})
            products[spec.product] = product.id
        price = client.v1.prices.create(
            params={
                "product": products[spec.product],
                "unit_amount": spec.unit_amount,
                "currency": spec.currency,
                "recurring": {"interval": spec.interval},
                "lookup_key": lookup_key,
            }
        )
        price_ids[lookup_key] = price.id
    return price_ids


def sign_payload(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value for ``payload``, signed as Stripe signs."""
    signed_at = int(time.time()) if timestamp is None else timestamp
    message = f"{signed_at}.".encode() + payload
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"t={signed_at},v1={digest}"
