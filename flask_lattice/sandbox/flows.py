"""Customer-facing flows shared by the hosted pages and ``StripeSandbox`` helpers."""

from __future__ import annotations

import copy

from . import billing, cards
from .clock import DAY
from .core import SandboxCore
from .events import emit
from .ids import new_id
from .objects.customers import customer as new_customer
from .wire import JSON, StripeError


def complete_checkout(core: SandboxCore, session: JSON, number: str, email: str | None) -> None:
    """Pay a subscription-mode Checkout Session with a test card (raises the card's error).

    On success: the customer (created from the email if needed), the attached card, the
    subscription (``trialing`` with a trial, else created ``incomplete`` then ``active`` once the
    first invoice is paid), and ``checkout.session.completed`` last. On a decline nothing is
    created.
    """
    if session["status"] != "open":
        raise StripeError(f"This Checkout Session is {session['status']}.")
    secret = core.store.secret(session["id"])
    number = cards.normalize(number)
    customer = core.store.find(session["customer"] or "")
    email = (customer or {}).get("email") or session["customer_email"] or email
    if not email:
        raise StripeError("Enter your email address.", param="email")
    error = cards.attach_error(number)
    trial = secret.get("trial_days") or secret.get("trial_end")
    if error is None and not trial and session["amount_total"]:
        error = cards.charge_error(number)
    if error is not None:
        raise error
    if customer is not None:  # the customer may have subscribed in another currency since
        billing.check_customer_currency(
            core, customer, secret["line_items"][0]["currency"], "line_items"
        )
    at = core.now_for(customer)
    if customer is None:
        customer = core.store.put(new_customer(new_id("cus", 14), at, None))
        customer["email"] = email
        emit(core, "customer.created", customer, at=at)
    pm = billing.create_card(core, number, at, email=email)
    billing.attach(core, pm, customer, at)
    trial_end = secret.get("trial_end") or (at + int(trial) * DAY if trial else None)
    items = [(item["price"], item["quantity"]) for item in secret["line_items"]]
    sub = billing.create_subscription(
        core,
        customer,
        items,
        at,
        trial_end=trial_end,
        metadata=secret.get("subscription_metadata") or {},
        default_payment_method=pm["id"],
    )
    session.update(
        status="complete",
        payment_status="paid" if session["amount_total"] and not trial else "no_payment_required",
        customer=customer["id"],
        subscription=sub["id"],
        invoice=sub["latest_invoice"],
        url=None,
        customer_details={
            "address": None,
            "business_name": None,
            "email": email,
            "individual_name": None,
            "name": customer["name"],
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        },
    )
    if not trial:
        session["amount_total"] = session["amount_subtotal"]
    emit(core, "checkout.session.completed", session, at=at)


def success_redirect(core: SandboxCore, session: JSON) -> str:
    """Where Checkout sends the customer after paying."""
    url = session["success_url"] or f"{core.base_url}/c/done/{session['id']}"
    return str(url).replace("{CHECKOUT_SESSION_ID}", session["id"])


def update_payment_method(
    core: SandboxCore, customer: JSON, number: str, *, subscriptions: bool = False
) -> JSON:
    """Save a new card as the customer's ``invoice_settings.default_payment_method``.

    Like Stripe's portal, this neither pays every open invoice nor touches the subscriptions'
    own ``default_payment_method``: open invoices are retried on their dunning schedule.
    ``subscriptions`` also makes the card every live subscription's default, as an app does
    through the API. Raises the card's error if it cannot be saved.
    """
    at = core.now_for(customer)
    number = cards.normalize(number)
    error = cards.attach_error(number)
    if error:
        raise error
    pm = billing.create_card(core, number, at, email=customer["email"])
    billing.attach(core, pm, customer, at)
    billing.set_default_payment_method(core, customer, pm["id"], at)
    if subscriptions:
        for sub in core.store.all("subscription"):
            if sub["customer"] == customer["id"] and sub["status"] not in billing.ENDED:
                before = copy.deepcopy(sub)
                sub["default_payment_method"] = pm["id"]
                billing.emit_updated(core, sub, before, at)
    return pm


def pay_latest_open_invoice(core: SandboxCore, customer: JSON, pm: JSON) -> None:
    """Pay the customer's most recent open invoice with ``pm`` (the portal's "pay now" step).

    Raises the card error when the charge fails; other open invoices wait for their retries.
    """
    at = core.now_for(customer)
    for invoice in core.store.all("invoice"):
        if invoice["customer"] == customer["id"] and invoice["status"] == "open":
            failure = billing.pay(core, invoice, at, pm["id"])
            if failure:
                raise failure
            return
