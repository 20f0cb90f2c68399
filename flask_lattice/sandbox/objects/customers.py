"""Customer objects."""

from __future__ import annotations

from ..wire import JSON
from . import base, nulls


def customer(object_id: str, created: int, test_clock: str | None) -> JSON:
    """A new customer with nothing set yet."""
    return {
        **base("customer", object_id, created),
        **nulls(
            "address business_name cash_balance currency customer_account default_source "
            "description discount email individual_name invoice_credit_balance name phone "
            "shipping sources subscriptions tax tax_ids"
        ),
        "balance": 0,
        "delinquent": False,
        "invoice_prefix": object_id[4:12].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "metadata": {},
        "next_invoice_sequence": 1,
        "preferred_locales": [],
        "tax_exempt": "none",
        "test_clock": test_clock,
    }


def balance_transaction(
    object_id: str,
    created: int,
    *,
    customer: JSON,
    amount: int,
    currency: str,
    invoice: str | None,
    kind: str,
) -> JSON:
    """A change of ``amount`` (minor units; negative is a credit) to ``customer["balance"]``."""
    return {
        **base("customer_balance_transaction", object_id, created),
        **nulls("checkout_session credit_note customer_account description"),
        "amount": amount,
        "currency": currency,
        "customer": customer["id"],
        "ending_balance": customer["balance"],
        "invoice": invoice,
        "metadata": {},
        "type": kind,
    }
