"""Checkout Session objects and their line items."""

from __future__ import annotations

from ..wire import JSON
from . import base, nulls


def checkout_item(object_id: str, price: JSON, quantity: int, product_name: str) -> JSON:
    """A Checkout line item (object ``item``)."""
    amount = int(price["unit_amount"] or 0) * quantity
    return {
        "id": object_id,
        "object": "item",
        "adjustable_quantity": None,
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": price["currency"],
        "description": product_name,
        "discounts": [],
        "metadata": {},
        "price": price,
        "quantity": quantity,
        "taxes": [],
    }


def checkout_session(
    object_id: str, created: int, *, mode: str, currency: str | None, amount: int, url: str
) -> JSON:
    """A new open Checkout Session; the handler copies the request's options onto it."""
    return {
        **base("checkout.session", object_id, created),
        **nulls(
            "adaptive_pricing after_expiration allowed_payment_method_types branding_settings "
            "cancel_url client_reference_id collected_information consent consent_collection "
            "currency_conversion customer customer_account customer_details customer_email "
            "discounts excluded_payment_method_types integration_identifier invoice "
            "invoice_creation line_items managed_payments name_collection optional_items "
            "origin_context payment_intent payment_link payment_method_configuration_details "
            "payment_method_options permissions phone_number_collection presentment_details "
            "recovered_from return_url saved_payment_method_options setup_intent "
            "shipping_address_collection shipping_cost subscription success_url "
            "tax_id_collection wallet_options"
        ),
        "allow_promotion_codes": False,
        "amount_subtotal": amount,
        "amount_total": amount,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": "auto",
        "client_secret": None,
        "currency": currency,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer_creation": "always",
        "expires_at": created + 86_400,
        "locale": None,
        "metadata": {},
        "mode": mode,
        "payment_method_collection": "always",
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "redirect_on_completion": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "total_details": {
            "amount_discount": 0,
            "amount_shipping": 0,
            "amount_tax": 0,
            "breakdown": None,
        },
        "ui_mode": "hosted_page",
        "url": url,
    }
