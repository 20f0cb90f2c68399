"""Subscription, subscription item, invoice and invoice line objects."""

from __future__ import annotations

from ..listing import envelope
from ..wire import JSON
from . import base, nulls
from .catalog import plan


def subscription(
    object_id: str, created: int, *, customer: str, currency: str, test_clock: str | None
) -> JSON:
    """A new subscription shell; the billing engine fills items, status and periods."""
    return {
        **base("subscription", object_id, created),
        **nulls(
            "application application_fee_percent billing_cycle_anchor_config billing_thresholds "
            "cancel_at canceled_at customer_account days_until_due default_payment_method "
            "default_source default_tax_rates description ended_at latest_invoice "
            "managed_payments next_pending_invoice_item_invoice on_behalf_of pause_collection "
            "pending_invoice_item_interval pending_setup_intent pending_update "
            "presentment_details schedule status_details transfer_data trial_end trial_start"
        ),
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": created,
        "billing_mode": {"flexible": None, "type": "classic", "updated_at": None},
        "billing_schedules": [],
        "cancel_at_period_end": False,
        "cancellation_details": {
            "comment": None,
            "feedback": None,
            "feedback_option": None,
            "reason": None,
        },
        "collection_method": "charge_automatically",
        "currency": currency,
        "customer": customer,
        "discounts": [],
        "invoice_settings": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": None,
            "footer": None,
            "issuer": {"account": None, "type": "self"},
        },
        "items": envelope([], f"/v1/subscription_items?subscription={object_id}"),
        "metadata": {},
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "start_date": created,
        "status": "incomplete",
        "test_clock": test_clock,
        "trial_settings": {
            "end_behavior": {
                "billing_cycle_anchor": None,
                "missing_payment_method": "create_invoice",
            }
        },
    }


def subscription_item(
    object_id: str,
    created: int,
    *,
    subscription: str,
    price: JSON,
    quantity: int,
    period: tuple[int, int],
) -> JSON:
    """An item of ``subscription`` billing ``quantity`` × ``price`` over ``period``."""
    return {
        "id": object_id,
        "object": "subscription_item",
        **nulls("billed_until billing_thresholds current_trial"),
        "created": created,
        "current_period_end": period[1],
        "current_period_start": period[0],
        "discounts": [],
        "metadata": {},
        "plan": plan(price),
        "price": price,
        "quantity": quantity,
        "subscription": subscription,
        "tax_rates": [],
    }


def invoice(
    object_id: str,
    created: int,
    *,
    customer: JSON,
    currency: str,
    subscription: str | None,
    billing_reason: str,
    period: tuple[int, int],
) -> JSON:
    """A new draft invoice for ``customer``; the engine adds lines and moves its status."""
    parent: JSON | None = (
        {
            "quote_details": None,
            "subscription_details": {
                "metadata": {},
                "subscription": subscription,
                "subscription_proration_date": None,
            },
            "type": "subscription_details",
        }
        if subscription
        else None
    )
    return {
        **base("invoice", object_id, created),
        **nulls(
            "account_tax_ids application automatically_finalizes_at confirmation_secret "
            "custom_fields customer_account customer_address customer_phone customer_shipping "
            "customer_tax_ids default_payment_method default_source description due_date "
            "effective_at footer from_invoice hosted_invoice_url invoice_pdf "
            "last_finalization_error latest_revision next_payment_attempt number on_behalf_of "
            "receipt_number rendering shipping_cost shipping_details statement_descriptor "
            "status_details threshold_reason webhooks_delivered_at"
        ),
        "account_country": "US",
        "account_name": "Flask-Lattice Sandbox",
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_paid_off_stripe": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": True,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "currency": currency,
        "customer": customer["id"],
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "customer_tax_exempt": "none",
        "default_tax_rates": [],
        "discounts": [],
        "ending_balance": None,
        "issuer": {"account": None, "type": "self"},
        "lines": envelope([], f"/v1/invoices/{object_id}/lines"),
        "metadata": {},
        "parent": parent,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "payments": envelope([], f"/v1/invoice_payments?invoice={object_id}"),
        "period_end": period[1],
        "period_start": period[0],
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "starting_balance": 0,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": customer["test_clock"],
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
    }


def line_item(
    object_id: str,
    *,
    invoice: str | None,
    amount: int,
    currency: str,
    description: str,
    period: tuple[int, int],
    price: JSON,
    quantity: int,
    subscription: str | None,
    subscription_item: str | None,
    proration: bool,
) -> JSON:
    """An invoice line for ``quantity`` × ``price`` (or a proration of it) over ``period``."""
    parent = (
        {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription,
                "subscription_item": subscription_item,
            },
            "type": "subscription_item_details",
        }
        if subscription_item
        else None
    )
    return {
        "id": object_id,
        "object": "line_item",
        "amount": amount,
        "currency": currency,
        "description": description,
        "discount_amounts": [],
        "discountable": not proration,
        "discounts": [],
        "invoice": invoice,
        "livemode": False,
        "metadata": {},
        "parent": parent,
        "period": {"end": period[1], "start": period[0]},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": price["unit_amount_decimal"],
        },
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "subscription": subscription,
        "subtotal": amount,
        "taxes": [],
    }


def invoiceitem(object_id: str, created: int, *, line: JSON, customer: JSON) -> JSON:
    """The pending invoice item behind a proration ``line`` (``invoice`` is null until billed)."""
    details = line["parent"]["subscription_item_details"]
    price = line["pricing"]["price_details"]
    return {
        "id": object_id,
        "object": "invoiceitem",
        "livemode": False,
        **nulls(
            "customer_account discounts frozen_fields invoice invoicing_rules net_amount "
            "proration_details"
        ),
        "amount": line["amount"],
        "currency": line["currency"],
        "customer": customer["id"],
        "date": created,
        "description": line["description"],
        "discountable": line["discountable"],
        "metadata": {},
        "parent": {
            "subscription_details": {
                "subscription": details["subscription"],
                "subscription_item": details["subscription_item"],
            },
            "type": "subscription_details",
        },
        "period": dict(line["period"]),
        "pricing": {
            "price_details": {"price": price["price"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": line["pricing"]["unit_amount_decimal"],
        },
        "proration": details["proration"],
        "quantity": line["quantity"],
        "quantity_decimal": line["quantity_decimal"],
        "tax_rates": [],
        "test_clock": customer["test_clock"],
    }
