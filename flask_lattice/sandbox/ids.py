"""Stripe-style object ids and the object kind each prefix names."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits

KIND_BY_PREFIX = {
    "cus": "customer",
    "prod": "product",
    "price": "price",
    "cs": "checkout.session",
    "bpc": "billing_portal.configuration",
    "bps": "billing_portal.session",
    "sub": "subscription",
    "si": "subscription_item",
    "in": "invoice",
    "il": "line_item",
    "inpay": "invoice_payment",
    "pi": "payment_intent",
    "ch": "charge",
    "ii": "invoiceitem",
    "cbtxn": "customer_balance_transaction",
    "pm": "payment_method",
    "evt": "event",
    "we": "webhook_endpoint",
    "clock": "test_helpers.test_clock",
}


def new_id(prefix: str, length: int = 24) -> str:
    """A fresh random id such as ``cus_Qx3…``."""
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def kind_of(object_id: str) -> str | None:
    """The object kind an id belongs to, from its prefix (``cs_test_…`` is a Checkout Session)."""
    return KIND_BY_PREFIX.get(object_id.split("_", 1)[0])
