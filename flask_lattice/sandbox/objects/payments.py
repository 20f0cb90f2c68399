"""Payment method, payment intent and invoice payment objects."""

from __future__ import annotations

import hashlib

from ..wire import JSON
from . import base, nulls

_OTHER_TYPES = (
    "acss_debit affirm afterpay_clearpay alipay alma amazon_pay au_becs_debit bacs_debit "
    "bancontact billie bizum blik boleto card_present cashapp crypto custom customer_balance eps "
    "fpx giropay grabpay ideal interac_present kakao_pay klarna konbini kr_card link mb_way "
    "mobilepay multibanco naver_pay nz_bank_account oxxo p24 pay_by_bank payco paynow paypal "
    "paypay payto pix promptpay revolut_pay samsung_pay satispay scalapay sepa_debit sequra "
    "sofort sunbit swish twint upi us_bank_account wechat_pay zip"
)


def card_brand(number: str) -> str:
    """The card network a test number belongs to."""
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or number.startswith("2"):
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    if number.startswith("6"):
        return "discover"
    return "unknown"


def payment_method(
    object_id: str, created: int, number: str, exp_month: int, exp_year: int, email: str | None
) -> JSON:
    """A card payment method for ``number`` (only the last 4 digits and brand show)."""
    brand = card_brand(number)
    return {
        **base("payment_method", object_id, created),
        **nulls(_OTHER_TYPES + " customer customer_account radar_options"),
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": email,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "card": {
            **nulls("description generated_from iin issuer wallet"),
            "brand": brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass",
            },
            "country": "US",
            "display_brand": brand,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": hashlib.sha256(number.encode()).hexdigest()[:16],
            "funding": "credit",
            "last4": number[-4:],
            "networks": {"available": [brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
        },
        "metadata": {},
        "type": "card",
    }


def payment_intent(
    object_id: str,
    created: int,
    *,
    amount: int,
    currency: str,
    customer: str,
    payment_method: str | None,
    description: str | None,
) -> JSON:
    """A card payment intent, not yet confirmed."""
    return {
        **base("payment_intent", object_id, created),
        **nulls(
            "allowed_payment_method_types amount_details application application_fee_amount "
            "automatic_payment_methods canceled_at cancellation_reason customer_account "
            "excluded_payment_method_types hooks last_payment_error latest_charge "
            "managed_payments next_action on_behalf_of payment_details "
            "payment_method_configuration_details payment_method_options payment_record "
            "presentment_details processing receipt_email review setup_future_usage shipping "
            "source statement_descriptor statement_descriptor_suffix transfer_data transfer_group"
        ),
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": 0,
        "capture_method": "automatic",
        "client_secret": f"{object_id}_secret_{object_id[3:]}",
        "confirmation_method": "automatic",
        "currency": currency,
        "customer": customer,
        "description": description,
        "metadata": {},
        "payment_method": payment_method,
        "payment_method_types": ["card"],
        "status": "requires_confirmation",
    }


def payment_error(
    code: str, decline_code: str | None, message: str, payment_method: JSON | None
) -> JSON:
    """A ``last_payment_error`` describing a card decline."""
    return {
        **nulls(
            "advice_code charge doc_url network_advice_code network_decline_code param "
            "payment_intent request_log_url setup_intent source"
        ),
        "code": code,
        "decline_code": decline_code,
        "message": message,
        "payment_method": payment_method,
        "payment_method_type": "card",
        "type": "card_error",
    }


def invoice_payment(object_id: str, created: int, invoice: JSON, intent: str) -> JSON:
    """The ``invoice_payment`` linking an invoice to the payment intent that pays it."""
    return {
        **base("invoice_payment", object_id, created),
        "amount_paid": None,
        "amount_requested": invoice["amount_due"],
        "currency": invoice["currency"],
        "invoice": invoice["id"],
        "is_default": True,
        "payment": {"type": "payment_intent", "payment_intent": intent},
        "status": "open",
        "status_transitions": {"canceled_at": None, "paid_at": None},
    }


def charge(
    object_id: str,
    created: int,
    *,
    intent: JSON,
    payment_method: JSON | None,
    error: tuple[str, str, str | None] | None,
) -> JSON:
    """The card charge a payment-intent attempt made; ``error`` is (code, message, decline_code)."""
    card = (payment_method or {}).get("card") or {}
    succeeded = error is None
    return {
        **base("charge", object_id, created),
        **nulls(
            "application application_fee application_fee_amount balance_transaction "
            "calculated_statement_descriptor failure_balance_transaction on_behalf_of "
            "receipt_email receipt_number review source source_transfer statement_descriptor "
            "statement_descriptor_suffix transfer_data transfer_group"
        ),
        "amount": intent["amount"],
        "amount_captured": intent["amount"] if succeeded else 0,
        "amount_refunded": 0,
        "billing_details": (payment_method or {}).get("billing_details")
        or {
            "address": None,
            "email": None,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "captured": succeeded,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_code": error[0] if error else None,
        "failure_message": error[1] if error else None,
        "fraud_details": {},
        "metadata": {},
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network" if succeeded else "declined_by_network",
            "reason": error[2] if error else None,
            "risk_level": "normal",
            "seller_message": "Payment complete."
            if succeeded
            else "The bank did not return any further details with this decline.",
            "type": "authorized" if succeeded else "issuer_declined",
        },
        "paid": succeeded,
        "payment_intent": intent["id"],
        "payment_method": (payment_method or {}).get("id"),
        "payment_method_details": {
            "card": {
                "brand": card.get("brand"),
                "country": card.get("country"),
                "exp_month": card.get("exp_month"),
                "exp_year": card.get("exp_year"),
                "fingerprint": card.get("fingerprint"),
                "funding": card.get("funding"),
                "last4": card.get("last4"),
                "network": card.get("brand"),
            },
            "type": "card",
        },
        "receipt_url": None,
        "refunded": False,
        "refunds": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/charges/{object_id}/refunds",
        },
        "shipping": None,
        "status": "succeeded" if succeeded else "failed",
    }
