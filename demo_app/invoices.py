"""What each invoice on the billing page is: a credit, a seat change, a plan change, the first
charge after a trial, a renewal.

Stripe's ``billing_reason`` alone cannot tell a seat change from a plan change
(both are ``subscription_update``) nor the first charge after a trial from a renewal (both
are ``subscription_cycle``). The invoice's lines can: they arrive with its webhooks, which the
extension keeps in its inbox, so this reads them from there; nothing here calls Stripe.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from flask_lattice.models import Invoice, Subscription, WebhookEvent

from .extensions import db

#: How close to a trial's end its first charge is invoiced (Stripe: at the trial end).
TRIAL_END_SLACK = timedelta(days=1)

_REASONS = {
    "subscription_create": "First payment",
    "subscription_cycle": "Renewal",
    "subscription_update": "Subscription change",
    "subscription_threshold": "Usage threshold",
    "manual": "One-off invoice",
}


@dataclass(frozen=True)
class InvoiceRow:
    """One line of the invoice list, as the billing page shows it.

    ``kind`` says what the invoice is for; ``credit`` is true when its ``total`` (minor units,
    Stripe's ``invoice.total``) is negative: the amount goes to the customer's balance and
    nothing is paid; ``status`` is the word shown for it (Stripe's ``invoice.status``, or
    ``credited``); ``payable`` is true when it still waits for a payment.
    """

    invoice: Invoice
    kind: str
    credit: bool
    status: str
    payable: bool


def describe(invoices: Sequence[Invoice]) -> list[InvoiceRow]:
    """The rows for ``invoices`` (local projection plus the inbox's copies of their lines)."""
    changes = _changed_prices([row.stripe_invoice_id for row in invoices if _is_update(row)])
    trials = _trial_ends({row.stripe_subscription_id for row in invoices} - {None})
    rows = []
    for invoice in invoices:
        kind = _kind(invoice, changes.get(invoice.stripe_invoice_id), trials)
        credit = invoice.total < 0
        if credit:
            kind = f"Credit · {kind.lower()}"
        status = "credited" if credit and invoice.status == "paid" else (invoice.status or "—")
        payable = invoice.status == "open" and invoice.amount_remaining > 0
        rows.append(InvoiceRow(invoice, kind, credit, status, payable))
    return rows


def _is_update(invoice: Invoice) -> bool:
    return invoice.billing_reason == "subscription_update"


def _kind(invoice: Invoice, prices: set[str] | None, trials: dict[str, datetime]) -> str:
    reason = invoice.billing_reason
    if reason == "subscription_update":
        if prices is None:
            return "Subscription change"
        return "Seat change" if len(prices) == 1 else "Plan change"
    if reason == "subscription_create" and invoice.total == 0:
        return "Free trial started"
    if reason == "subscription_cycle":
        trial_end = trials.get(invoice.stripe_subscription_id or "")
        created = invoice.stripe_created
        if trial_end and created and abs(created - trial_end) <= TRIAL_END_SLACK:
            return "First charge after trial"
    return _REASONS.get(reason or "", (reason or "invoice").replace("_", " ").capitalize())


def _changed_prices(invoice_ids: Iterable[str]) -> dict[str, set[str]]:
    """For each invoice, the prices its proration lines are for (one price: seats changed)."""
    wanted = set(invoice_ids)
    if not wanted:
        return {}
    events = db.session.scalars(
        sa.select(WebhookEvent)
        .where(WebhookEvent.type.like("invoice.%"))
        .where(sa.or_(*(WebhookEvent.payload.contains(f'"{each}"') for each in wanted)))
        .order_by(WebhookEvent.created.desc())
    )
    found: dict[str, set[str]] = {}
    for event in events:
        invoice = json.loads(event.payload)["data"]["object"]
        if invoice.get("id") not in wanted or invoice["id"] in found:
            continue
        lines = (invoice.get("lines") or {}).get("data") or []
        prices = {_price_of(line) for line in lines if _is_proration(line)} - {None}
        if prices:
            found[invoice["id"]] = {price for price in prices if price}
    return found


def _is_proration(line: dict[str, Any]) -> bool:
    details = (line.get("parent") or {}).get("subscription_item_details") or {}
    return bool(details.get("proration"))


def _price_of(line: dict[str, Any]) -> str | None:
    pricing = line.get("pricing") or {}
    price = (pricing.get("price_details") or {}).get("price")
    if isinstance(price, dict):
        price = price.get("id")
    return price if isinstance(price, str) else None


def _trial_ends(subscription_ids: set[str | None]) -> dict[str, datetime]:
    """The trial end of each subscription that had one (aware UTC datetimes)."""
    if not subscription_ids:
        return {}
    rows = db.session.execute(
        sa.select(Subscription.stripe_subscription_id, Subscription.trial_end).where(
            Subscription.stripe_subscription_id.in_(subscription_ids),
            Subscription.trial_end.is_not(None),
        )
    )
    return {subscription_id: trial_end for subscription_id, trial_end in rows if trial_end}
