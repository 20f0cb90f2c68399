"""The billing engine: payment methods, invoices and payments, subscriptions and prorations.

Every function takes ``at``, the sandbox time of the change (the customer's test clock time when
there is one), and emits the events Stripe emits for the step.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from babel.numbers import format_decimal, get_currency_symbol

from ..money import minor_unit_digits
from . import cards
from .clock import DAY, add_interval, format_date
from .core import SandboxCore
from .events import changes, emit
from .ids import new_id
from .objects.billing import invoice as new_invoice_object
from .objects.billing import invoiceitem, line_item, subscription, subscription_item
from .objects.catalog import plan
from .objects.customers import balance_transaction
from .objects.payments import (
    charge,
    invoice_payment,
    payment_error,
    payment_intent,
    payment_method,
)
from .wire import JSON, StripeError

INCOMPLETE_EXPIRY = 23 * 3600
ENDED = ("canceled", "incomplete_expired")


def format_money(amount: int | None, currency: str = "usd") -> str:
    """An amount in minor units as a price: ``1999 usd`` → ``$19.99``, ``500 jpy`` → ``¥500``."""
    digits = minor_unit_digits(currency)
    value = Decimal(amount or 0).scaleb(-digits)
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    number = format_decimal(abs(value), format=pattern, locale="en_US")
    symbol = get_currency_symbol(currency.upper(), locale="en_US")
    space = " " if symbol[-1:].isalpha() else ""
    return f"{'-' if value < 0 else ''}{symbol}{space}{number}"


# -- Stripe's rules on what one subscription (and one customer) may combine ---------------------


def check_prices(prices: Sequence[JSON], param: str, currency: str | None = None) -> None:
    """One currency (``currency`` when given) and no price twice, as Stripe requires."""
    currencies = {price["currency"] for price in prices} | ({currency} if currency else set())
    if len(currencies) > 1:
        raise StripeError("All prices on a subscription must have the same currency.", param=param)
    seen: set[str] = set()
    for price in prices:
        if price["id"] in seen:
            raise StripeError(
                f"Cannot add multiple subscription items with the same price: {price['id']}",
                param=param,
            )
        seen.add(price["id"])


def customer_currency(core: SandboxCore, customer: JSON) -> str | None:
    """The currency the customer is bound to by a live subscription, a pending invoice item or
    an unpaid invoice (None when nothing binds it)."""
    for sub in core.store.all("subscription"):
        if sub["customer"] == customer["id"] and sub["status"] not in ENDED:
            return str(sub["currency"])
    for item in core.store.all("invoiceitem"):
        if item["customer"] == customer["id"] and item["invoice"] is None:
            return str(item["currency"])
    for invoice in core.store.all("invoice"):
        if invoice["customer"] == customer["id"] and invoice["status"] in ("draft", "open"):
            return str(invoice["currency"])
    return None


def check_customer_currency(core: SandboxCore, customer: JSON, currency: str, param: str) -> None:
    """Stripe's refusal to bill one customer in two currencies at once."""
    bound = customer_currency(core, customer)
    if bound is not None and bound != currency:
        raise StripeError(
            "You cannot combine currencies on a single customer. This customer has an active "
            "subscription, subscription schedule, discount, quote, or invoice item with currency "
            f"{bound}.",
            param=param,
        )


def check_quantity(quantity: int, param: str) -> None:
    """A subscription item's quantity may be zero, never negative."""
    if quantity < 0:
        raise StripeError("This value must be greater than or equal to 0.", param=param)


# -- payment methods -----------------------------------------------------------------------


def create_card(
    core: SandboxCore,
    number: str,
    at: int,
    *,
    exp_month: int = 12,
    exp_year: int = 2034,
    email: str | None = None,
) -> JSON:
    """Store a new, unattached card payment method for a test ``number``."""
    number = cards.normalize(number)
    pm = core.store.put(payment_method(new_id("pm"), at, number, exp_month, exp_year, email))
    core.store.secret(pm["id"])["number"] = number
    return pm


def resolve_payment_method(core: SandboxCore, pm_id: str, at: int, param: str) -> JSON:
    """An existing payment method, or a fresh one for a test token such as ``pm_card_visa``."""
    if pm_id in cards.TEST_TOKENS:
        return create_card(core, cards.TEST_TOKENS[pm_id], at)
    return core.store.get("payment_method", pm_id, param)


def attach(core: SandboxCore, pm: JSON, customer: JSON, at: int) -> JSON:
    """Attach ``pm`` to ``customer`` (declining cards raise Stripe's card error)."""
    if pm["customer"] == customer["id"]:
        return pm
    if pm["customer"]:
        raise StripeError(
            "The payment method you provided has already been attached to a customer.",
            param="payment_method",
        )
    error = cards.attach_error(core.store.secret(pm["id"])["number"])
    if error:
        raise error
    pm["customer"] = customer["id"]
    emit(core, "payment_method.attached", pm, at=at)
    return pm


def set_default_payment_method(core: SandboxCore, customer: JSON, pm_id: str, at: int) -> None:
    """Make ``pm_id`` the customer's ``invoice_settings.default_payment_method``."""
    settings = customer["invoice_settings"]
    if settings["default_payment_method"] == pm_id:
        return
    previous = {"invoice_settings": copy.deepcopy(settings)}
    settings["default_payment_method"] = pm_id
    emit(core, "customer.updated", customer, at=at, previous=previous)


def _payer(core: SandboxCore, invoice: JSON) -> str | None:
    """The payment method an invoice is charged to: subscription's, else the customer's."""
    sub = invoice_subscription(core, invoice)
    if sub and sub["default_payment_method"]:
        return str(sub["default_payment_method"])
    customer = core.store.get("customer", invoice["customer"])
    default = customer["invoice_settings"]["default_payment_method"]
    return str(default) if default else None


# -- invoices ------------------------------------------------------------------------------


def invoice_subscription(core: SandboxCore, invoice: JSON) -> JSON | None:
    """The subscription an invoice bills, if any."""
    details = (invoice["parent"] or {}).get("subscription_details")
    if not details:
        return None
    return core.store.objects.get("subscription", {}).get(details["subscription"])


def set_lines(invoice: JSON, lines: Sequence[JSON]) -> JSON:
    """Put ``lines`` on ``invoice`` and recompute its totals."""
    for line in lines:
        line["invoice"] = invoice["id"]
    invoice["lines"]["data"] = list(lines)
    total = sum(line["amount"] for line in lines)
    due = max(total, 0)
    invoice.update(
        subtotal=total,
        subtotal_excluding_tax=total,
        total=total,
        total_excluding_tax=total,
        amount_due=due,
        amount_remaining=due - invoice["amount_paid"],
        ending_balance=None if invoice["status"] == "draft" else min(total, 0),
    )
    return invoice


def create_invoice(
    core: SandboxCore,
    customer: JSON,
    sub: JSON | None,
    reason: str,
    lines: Sequence[JSON],
    at: int,
    period: tuple[int, int] | None = None,
) -> JSON:
    """Store a draft invoice with ``lines`` and emit ``invoice.created``."""
    invoice = new_invoice_object(
        new_id("in"),
        at,
        customer=customer,
        currency=sub["currency"] if sub else (lines[0]["currency"] if lines else "usd"),
        subscription=sub["id"] if sub else None,
        billing_reason=reason,
        period=period or (at, at),
    )
    if sub:
        invoice["parent"]["subscription_details"]["metadata"] = dict(sub["metadata"])
    set_lines(invoice, lines)
    core.store.put(invoice)
    for line in lines:
        item_id = ((line["parent"] or {}).get("subscription_item_details") or {}).get(
            "invoice_item"
        )
        if item_id and (item := core.store.find(item_id)):
            item["invoice"] = invoice["id"]
    if sub:
        sub["latest_invoice"] = invoice["id"]
    emit(core, "invoice.created", invoice, at=at)
    return invoice


def bill_now(core: SandboxCore, sub: JSON, lines: Sequence[JSON], at: int) -> JSON:
    """Invoice ``lines`` for ``sub`` at once (``subscription_update``): finalize, then charge."""
    customer = core.store.get("customer", sub["customer"])
    invoice = create_invoice(core, customer, sub, "subscription_update", lines, at, (at, at))
    finalize(core, invoice, at)
    if invoice["status"] == "open":
        pay(core, invoice, at)
    return invoice


def add_pending(core: SandboxCore, sub: JSON, lines: Sequence[JSON], at: int) -> None:
    """Keep proration ``lines`` for the next invoice, each as a pending ``invoiceitem``."""
    customer = core.store.get("customer", sub["customer"])
    for line in lines:
        item = core.store.put(invoiceitem(new_id("ii"), at, line=line, customer=customer))
        line["parent"]["subscription_item_details"]["invoice_item"] = item["id"]
        emit(core, "invoiceitem.created", item, at=at)
    core.store.secret(sub["id"]).setdefault("pending_lines", []).extend(lines)


def take_pending(core: SandboxCore, sub: JSON) -> list[JSON]:
    """The subscription's pending proration lines, removed from the pending set."""
    return list(core.store.secret(sub["id"]).pop("pending_lines", []))


def _apply_balance(core: SandboxCore, invoice: JSON, at: int) -> None:
    """Apply the customer's balance to a finalizing invoice; a negative total credits it.

    Stripe: customer.balance is in minor units, negative is credit the customer can spend. The
    change is recorded as an ``applied_to_invoice`` customer balance transaction.
    """
    customer = core.store.get("customer", invoice["customer"])
    start = int(customer["balance"])
    net = invoice["total"] + start
    due, end = max(net, 0), min(net, 0)
    invoice.update(
        starting_balance=start,
        ending_balance=end,
        amount_due=due,
        amount_remaining=due - invoice["amount_paid"],
    )
    if end == start:
        return
    customer["balance"] = end
    core.store.put(
        balance_transaction(
            new_id("cbtxn"),
            at,
            customer=customer,
            amount=end - start,
            currency=invoice["currency"],
            invoice=invoice["id"],
            kind="applied_to_invoice",
        )
    )
    emit(core, "customer.updated", customer, at=at, previous={"balance": start})


def finalize(core: SandboxCore, invoice: JSON, at: int) -> JSON:
    """Move a draft invoice to ``open`` (and straight to ``paid`` when nothing is due)."""
    if invoice["status"] != "draft":
        raise StripeError("This invoice is already finalized.", code="invoice_not_editable")
    customer = core.store.get("customer", invoice["customer"])
    sequence = customer["next_invoice_sequence"]
    customer["next_invoice_sequence"] = sequence + 1
    invoice.update(
        status="open",
        number=f"{customer['invoice_prefix']}-{sequence:04d}",
        hosted_invoice_url=f"{core.base_url}/i/{invoice['id']}",
        invoice_pdf=f"{core.base_url}/i/{invoice['id']}/pdf",
        effective_at=at,
        automatically_finalizes_at=None,
    )
    _apply_balance(core, invoice, at)
    invoice["status_transitions"]["finalized_at"] = at
    emit(core, "invoice.finalized", invoice, at=at)
    if invoice["amount_due"] == 0:
        _mark_paid(core, invoice, at)
    return invoice


def _intent_for(core: SandboxCore, invoice: JSON, pm_id: str | None, at: int) -> JSON:
    secret = core.store.secret(invoice["id"])
    intent = core.store.find(secret["intent"]) if "intent" in secret else None
    if intent is None:
        intent = payment_intent(
            new_id("pi"),
            at,
            amount=invoice["amount_due"],
            currency=invoice["currency"],
            customer=invoice["customer"],
            payment_method=pm_id,
            description="Subscription update" if invoice["parent"] else None,
        )
        core.store.put(intent)
        secret["intent"] = intent["id"]
        record = invoice_payment(new_id("inpay"), at, invoice, intent["id"])
        invoice["payments"]["data"].insert(0, record)
        emit(core, "payment_intent.created", intent, at=at)
    intent["payment_method"] = pm_id
    return intent


def _charge(
    core: SandboxCore, intent: JSON, pm: JSON | None, error: StripeError | None, at: int
) -> JSON:
    """Record the charge of one payment attempt and emit ``charge.succeeded``/``.failed``."""
    failure = (error.code or "card_declined", error.message, error.decline_code) if error else None
    attempt = core.store.put(
        charge(new_id("ch"), at, intent=intent, payment_method=pm, error=failure)
    )
    intent["latest_charge"] = attempt["id"]
    emit(core, "charge.failed" if error else "charge.succeeded", attempt, at=at)
    return attempt


def pay(core: SandboxCore, invoice: JSON, at: int, pm_id: str | None = None) -> StripeError | None:
    """Charge an open invoice; returns the card error when the charge fails."""
    if invoice["status"] == "paid":
        raise StripeError("Invoice is already paid.", code="invoice_already_paid")
    if invoice["status"] != "open":
        raise StripeError(
            f"You cannot pay an invoice with status {invoice['status']}.",
            code="invoice_not_open" if invoice["status"] != "draft" else "invoice_not_finalized",
        )
    if invoice["amount_due"] == 0:
        _mark_paid(core, invoice, at)
        return None
    pm_id = pm_id or _payer(core, invoice)
    intent = _intent_for(core, invoice, pm_id, at)
    before = copy.deepcopy(invoice)
    invoice["attempted"] = True
    invoice["attempt_count"] += 1
    if pm_id is None:
        error: StripeError | None = StripeError(
            "This customer has no attached payment source or default payment method.",
            code="resource_missing",
            param="payment_method",
        )
    else:
        error = cards.charge_error(core.store.secret(pm_id).get("number", ""))
    pm = core.store.find(pm_id) if pm_id else None
    if error is None:
        _charge(core, intent, pm, None, at)
        intent.update(status="succeeded", amount_received=intent["amount"], last_payment_error=None)
        emit(core, "payment_intent.succeeded", intent, at=at)
        _mark_paid(core, invoice, at)
        return None
    action = error.code == "authentication_required"
    attempt = _charge(core, intent, pm, error, at) if pm and not action else None
    intent["last_payment_error"] = payment_error(
        error.code or "card_declined", error.decline_code, error.message, pm
    )
    intent["last_payment_error"]["charge"] = attempt["id"] if attempt else None
    intent["status"] = "requires_action" if action else "requires_payment_method"
    emit(
        core,
        "payment_intent.requires_action" if action else "payment_intent.payment_failed",
        intent,
        at=at,
    )
    _schedule_retry(core, invoice, at)
    emit(core, "invoice.updated", invoice, at=at, previous=changes(before, invoice))
    emit(core, "invoice.payment_failed", invoice, at=at)
    if action:
        emit(core, "invoice.payment_action_required", invoice, at=at)
    _after_failure(core, invoice, at)
    return error


def _mark_paid(core: SandboxCore, invoice: JSON, at: int) -> None:
    invoice.update(
        status="paid",
        amount_paid=invoice["amount_due"],
        amount_remaining=0,
        next_payment_attempt=None,
    )
    invoice["status_transitions"]["paid_at"] = at
    for record in invoice["payments"]["data"]:
        record.update(status="paid", amount_paid=record["amount_requested"])
        record["status_transitions"]["paid_at"] = at
        emit(core, "invoice_payment.paid", record, at=at)
    core.store.secret(invoice["id"]).pop("retries_left", None)
    emit(core, "invoice.paid", invoice, at=at)
    emit(core, "invoice.payment_succeeded", invoice, at=at)
    sub = invoice_subscription(core, invoice)
    if (
        sub
        and sub["status"] in ("incomplete", "past_due", "unpaid")
        and not open_invoices(core, sub)
    ):
        set_status(core, sub, "active", at)


def open_invoices(core: SandboxCore, sub: JSON) -> list[JSON]:
    return [
        inv
        for inv in core.store.all("invoice")
        if inv["status"] == "open" and invoice_subscription(core, inv) is sub
    ]


def _schedule_retry(core: SandboxCore, invoice: JSON, at: int) -> None:
    """Set ``next_payment_attempt`` per the dunning schedule (renewal invoices only)."""
    if invoice["billing_reason"] not in ("subscription_cycle", "subscription_update"):
        return
    retries = core.settings.dunning_retry_days
    done = invoice["attempt_count"] - 1
    invoice["next_payment_attempt"] = at + retries[done] * DAY if done < len(retries) else None


def _after_failure(core: SandboxCore, invoice: JSON, at: int) -> None:
    sub = invoice_subscription(core, invoice)
    if sub is None or invoice["billing_reason"] == "subscription_create":
        return
    if sub["status"] in ("canceled", "incomplete_expired"):
        return
    if invoice["next_payment_attempt"] is not None:
        if sub["status"] in ("active", "trialing"):
            set_status(core, sub, "past_due", at)
        return
    final = core.settings.dunning_final_status
    if final == "canceled":
        mark_uncollectible(core, invoice, at, reason="max_payment_attempts")
        cancel(core, sub, at, reason="payment_failed")
    elif sub["status"] != final:
        set_status(core, sub, final, at)


def void(core: SandboxCore, invoice: JSON, at: int) -> JSON:
    """Void an open (or draft) invoice."""
    if invoice["status"] not in ("open", "draft", "uncollectible"):
        raise StripeError(f"You cannot void an invoice with status {invoice['status']}.")
    invoice.update(status="void", amount_remaining=0, next_payment_attempt=None)
    invoice["status_transitions"]["voided_at"] = at
    emit(core, "invoice.voided", invoice, at=at)
    return invoice


def mark_uncollectible(
    core: SandboxCore, invoice: JSON, at: int, reason: str = "user_forgiven"
) -> JSON:
    """Mark an open invoice uncollectible."""
    if invoice["status"] != "open":
        raise StripeError(
            f"You cannot mark an invoice with status {invoice['status']} as uncollectible."
        )
    invoice.update(status="uncollectible", next_payment_attempt=None)
    invoice["status_details"] = {"uncollectible": {"reason": reason}}
    invoice["status_transitions"]["marked_uncollectible_at"] = at
    emit(core, "invoice.marked_uncollectible", invoice, at=at)
    return invoice


# -- subscriptions -------------------------------------------------------------------------


def set_status(core: SandboxCore, sub: JSON, status: str, at: int) -> None:
    """Change a subscription's status and emit ``customer.subscription.updated``."""
    before = copy.deepcopy(sub)
    sub["status"] = status
    emit_updated(core, sub, before, at)


def emit_updated(core: SandboxCore, sub: JSON, before: JSON, at: int) -> None:
    """Emit ``customer.subscription.updated`` if anything changed since ``before``."""
    previous = changes(before, sub)
    if previous:
        emit(core, "customer.subscription.updated", sub, at=at, previous=previous)


def period_of(sub: JSON) -> tuple[int, int]:
    """The subscription's current period, from its first item."""
    first = sub["items"]["data"][0]
    return first["current_period_start"], first["current_period_end"]


def product_name(core: SandboxCore, price: JSON) -> str:
    """The name of the product a price belongs to."""
    product = core.store.objects.get("product", {}).get(price["product"])
    return str(product["name"]) if product else str(price["product"])


def _interval(price: JSON) -> tuple[str, int]:
    recurring = price["recurring"]
    if not recurring:
        raise StripeError(
            f"The price specified ({price['id']}) is not recurring; subscriptions need a "
            "recurring price.",
            param="items",
        )
    return recurring["interval"], recurring["interval_count"]


def cycle_lines(core: SandboxCore, sub: JSON, period: tuple[int, int]) -> list[JSON]:
    """One line per subscription item, billing ``period`` in full."""
    lines = []
    for item in sub["items"]["data"]:
        price, quantity = item["price"], item["quantity"]
        lines.append(
            line_item(
                new_id("il"),
                invoice=None,
                amount=int(price["unit_amount"]) * quantity,
                currency=price["currency"],
                description=f"{quantity} × {product_name(core, price)} "
                f"(at {format_money(price['unit_amount'], price['currency'])} / "
                f"{price['recurring']['interval']})",
                period=period,
                price=price,
                quantity=quantity,
                subscription=sub["id"],
                subscription_item=item["id"],
                proration=False,
            )
        )
    return lines


def create_subscription(
    core: SandboxCore,
    customer: JSON,
    items: Sequence[tuple[JSON, int]],
    at: int,
    *,
    trial_end: int | None = None,
    metadata: JSON | None = None,
    default_payment_method: str | None = None,
    payment_behavior: str = "allow_incomplete",
) -> JSON:
    """Create and start a subscription: first invoice, its payment, and the status it implies."""
    if not items:
        raise StripeError("Missing required param: items.", param="items", code="parameter_missing")
    check_prices([price for price, _ in items], "items")
    check_customer_currency(core, customer, items[0][0]["currency"], "items")
    intervals = {_interval(price) for price, _ in items}
    if len(intervals) > 1:
        raise StripeError(
            "All prices on a subscription must have the same recurring interval.", param="items"
        )
    interval, count = intervals.pop()
    if payment_behavior == "error_if_incomplete" and not trial_end:
        pm = default_payment_method or customer["invoice_settings"]["default_payment_method"]
        error = cards.charge_error(core.store.secret(pm).get("number", "")) if pm else None
        if pm is None or error:
            raise error or StripeError(
                "This customer has no attached payment source or default payment method.",
                param="default_payment_method",
            )
    sub = subscription(
        new_id("sub"),
        at,
        customer=customer["id"],
        currency=items[0][0]["currency"],
        test_clock=customer["test_clock"],
    )
    sub["metadata"] = dict(metadata or {})
    sub["default_payment_method"] = default_payment_method
    anchor = trial_end or at
    period = (at, trial_end) if trial_end else (at, add_interval(at, interval, count))
    sub["billing_cycle_anchor"] = anchor
    for price, quantity in items:
        sub["items"]["data"].append(
            subscription_item(
                new_id("si"),
                at,
                subscription=sub["id"],
                price=price,
                quantity=quantity,
                period=period,
            )
        )
    if trial_end:
        sub.update(status="trialing", trial_start=at, trial_end=trial_end)
    core.store.put(sub)
    emit(core, "customer.subscription.created", sub, at=at)
    lines = cycle_lines(core, sub, period)
    if trial_end:
        for line in lines:
            line.update(amount=0, subtotal=0, description=f"Trial period for {line['description']}")
    invoice = create_invoice(core, customer, sub, "subscription_create", lines, at, period)
    finalize(core, invoice, at)
    if invoice["status"] == "open" and payment_behavior != "default_incomplete":
        pay(core, invoice, at)
    return sub


def cancel(
    core: SandboxCore,
    sub: JSON,
    at: int,
    reason: str = "cancellation_requested",
    *,
    prorate: bool = False,
    invoice_now: bool = False,
) -> JSON | None:
    """End a subscription now (``customer.subscription.deleted``).

    ``prorate`` adds a pending credit for the unused time of the period; ``invoice_now`` then
    bills every pending item of the subscription on a final invoice (a negative total becomes
    customer credit). Without ``invoice_now`` pending items stay pending on the customer, as in
    Stripe. Returns the final invoice, if one was made.
    """
    if sub["status"] in ("canceled", "incomplete_expired"):
        raise StripeError(
            f"A canceled subscription can only update its cancellation_details and metadata. "
            f"({sub['id']})",
        )
    was = sub["status"]
    sub.update(status="canceled", ended_at=at, canceled_at=sub["canceled_at"] or at)
    sub["cancellation_details"]["reason"] = reason
    emit(core, "customer.subscription.deleted", sub, at=at)
    start, end = period_of(sub)
    if prorate and was in ("active", "past_due") and start <= at < end:
        credits = [
            _proration_line(
                core, sub, item["id"], item["price"], item["quantity"], (start, end, at), True
            )
            for item in sub["items"]["data"]
        ]
        add_pending(core, sub, credits, at)
    if not invoice_now:
        return None
    lines = take_pending(core, sub)
    if not lines:
        return None
    return bill_now(core, sub, lines, at)


def aligned_period(anchor: int, at: int, interval: str, count: int) -> tuple[int, int]:
    """The billing period around ``at`` counted from ``anchor``, keeping the anchor's day.

    Stripe keeps the anchor day: anchored on Jan 31, a monthly price renews Feb 28 (29),
    Mar 31, Apr 30. Returns ``(start, end)`` with ``start <= at < end`` (``start`` is
    ``anchor`` when ``at`` is before it).
    """
    start, step = anchor, 1
    while (end := add_interval(anchor, interval, count * step)) <= at:
        start, step = end, step + 1
    return start, end


def period_end_after(anchor: int, at: int, interval: str, count: int) -> int:
    """The first billing date after ``at`` counted from ``anchor`` (see :func:`aligned_period`)."""
    return aligned_period(anchor, at, interval, count)[1]


def resume_unchanged(core: SandboxCore, sub: JSON, at: int, behavior: str) -> JSON | None:
    """Resume keeping ``billing_cycle_anchor``: the period runs to the next anchor date.

    The rest of the period is prorated per ``behavior``: ``always_invoice`` bills it now,
    ``create_prorations`` leaves pending invoice items, ``none`` bills nothing. Returns the
    invoice made, if any.
    """
    interval, count = _interval(sub["items"]["data"][0]["price"])
    start, end = aligned_period(sub["billing_cycle_anchor"], at, interval, count)
    for item in sub["items"]["data"]:
        item.update(current_period_start=at, current_period_end=end)
    if behavior == "none":
        return None
    lines = [
        _proration_line(
            core, sub, item["id"], item["price"], item["quantity"], (start, end, at), False
        )
        for item in sub["items"]["data"]
    ]
    add_pending(core, sub, lines, at)
    if behavior != "always_invoice":
        return None
    return bill_now(core, sub, take_pending(core, sub), at)


# -- plan changes and prorations -----------------------------------------------------------


@dataclass
class PlanChange:
    """What an item change does: the items afterwards, proration lines, and anchor reset."""

    items: list[tuple[str, JSON, int]]
    prorations: list[JSON] = field(default_factory=list)
    reset_anchor: bool = False
    changed: bool = False


def _proration_line(
    core: SandboxCore,
    sub: JSON,
    item_id: str,
    price: JSON,
    quantity: int,
    window: tuple[int, int, int],
    credit: bool,
) -> JSON:
    start, end, at = window
    fraction = (end - at) / max(end - start, 1)
    amount = round(int(price["unit_amount"]) * quantity * fraction)
    name = product_name(core, price)
    text = f"Unused time on {name}" if credit else f"Remaining time on {quantity} × {name}"
    return line_item(
        new_id("il"),
        invoice=None,
        amount=-amount if credit else amount,
        currency=price["currency"],
        description=f"{text} after {format_date(at)}",
        period=(at, end),
        price=price,
        quantity=quantity,
        subscription=sub["id"],
        subscription_item=item_id,
        proration=True,
    )


def plan_change(
    core: SandboxCore, sub: JSON, item_params: Sequence[JSON], at: int, behavior: str
) -> PlanChange:
    """Work out an ``items[...]`` change (used by update and by ``create_preview``)."""
    current = {item["id"]: item for item in sub["items"]["data"]}
    after: dict[str, tuple[JSON, int]] = {
        item_id: (item["price"], item["quantity"]) for item_id, item in current.items()
    }
    added: list[tuple[str, JSON, int]] = []
    for index, spec in enumerate(item_params):
        item_id = spec.get("id")
        if item_id and item_id not in current:
            raise StripeError(
                f"No such subscription item: '{item_id}'",
                param=f"items[{index}][id]",
                status=404,
                code="resource_missing",
            )
        if spec.get("deleted") and item_id:
            after.pop(item_id)
            continue
        old = after.get(item_id) if item_id else None
        price = (
            core.store.get("price", spec["price"], f"items[{index}][price]")
            if spec.get("price")
            else (old[0] if old else None)
        )
        if price is None:
            raise StripeError(
                "Missing required param: items[0][price].",
                param=f"items[{index}][price]",
                code="parameter_missing",
            )
        quantity = int(spec["quantity"]) if spec.get("quantity") not in (None, "") else None
        if quantity is None:
            quantity = old[1] if old else 1
        check_quantity(quantity, f"items[{index}][quantity]")
        if item_id:
            after[item_id] = (price, quantity)
        else:
            added.append((new_id("si"), price, quantity))
    items = [(item_id, price, qty) for item_id, (price, qty) in after.items()] + added
    if not items:
        raise StripeError("A subscription must have at least one item.", param="items")
    check_prices([price for _, price, _ in items], "items", sub["currency"])
    change = PlanChange(items=items)
    old_interval = _interval(sub["items"]["data"][0]["price"])
    change.reset_anchor = any(_interval(price) != old_interval for _, price, _ in items)
    change.changed = [(i, p["id"], q) for i, p, q in items] != [
        (i["id"], i["price"]["id"], i["quantity"]) for i in current.values()
    ]
    if not change.changed or sub["status"] == "trialing" or behavior == "none":
        return change
    start, end = period_of(sub)
    window = (start, end, at)
    for item_id, price, quantity in items:
        old_item = current.get(item_id)
        same = old_item and (old_item["price"]["id"], old_item["quantity"]) == (
            price["id"],
            quantity,
        )
        if same:
            continue
        if old_item:
            change.prorations.append(
                _proration_line(
                    core,
                    sub,
                    old_item["id"],
                    old_item["price"],
                    old_item["quantity"],
                    window,
                    credit=True,
                )
            )
        if not change.reset_anchor:
            change.prorations.append(
                _proration_line(core, sub, item_id, price, quantity, window, credit=False)
            )
    for item_id in current.keys() - after.keys():
        old_item = current[item_id]
        change.prorations.append(
            _proration_line(
                core, sub, item_id, old_item["price"], old_item["quantity"], window, credit=True
            )
        )
    return change


def reshape(sub: JSON, change: PlanChange, at: int) -> tuple[int, int]:
    """Give ``sub`` the items of ``change`` (new period if the interval changed); its period."""
    start, end = period_of(sub)
    if change.reset_anchor:
        interval, count = _interval(change.items[0][1])
        start, end = at, add_interval(at, interval, count)
        sub["billing_cycle_anchor"] = at
    existing = {item["id"]: item for item in sub["items"]["data"]}
    new_items = []
    for item_id, price, quantity in change.items:
        item = existing.get(item_id) or subscription_item(
            item_id, at, subscription=sub["id"], price=price, quantity=quantity, period=(start, end)
        )
        item.update(
            price=price,
            plan=plan(price),
            quantity=quantity,
            current_period_start=start,
            current_period_end=end,
        )
        new_items.append(item)
    sub["items"]["data"] = new_items
    return start, end


def invoices_now(sub: JSON, change: PlanChange, behavior: str) -> bool:
    """Whether a change is invoiced at once (new interval, or ``always_invoice``)."""
    return sub["status"] != "trialing" and (change.reset_anchor or behavior == "always_invoice")


def immediate_lines(
    core: SandboxCore, sub: JSON, change: PlanChange, behavior: str, pending: list[JSON]
) -> list[JSON] | None:
    """The lines a change invoices at once (None when it waits for the next renewal)."""
    if not invoices_now(sub, change, behavior):
        return None
    lines = pending + change.prorations
    if change.reset_anchor:
        lines += cycle_lines(core, sub, period_of(sub))
    return lines


def apply_plan_change(
    core: SandboxCore, sub: JSON, change: PlanChange, at: int, behavior: str
) -> JSON | None:
    """Apply a :class:`PlanChange` to ``sub``; returns the invoice it created, if any.

    Prorations are invoice items (``invoiceitem.created``); they stay pending until the next
    invoice unless the change is invoiced at once.
    """
    reshape(sub, change, at)
    add_pending(core, sub, change.prorations, at)
    if not invoices_now(sub, change, behavior):
        return None
    lines = take_pending(core, sub)
    if change.reset_anchor:
        lines += cycle_lines(core, sub, period_of(sub))
    return bill_now(core, sub, lines, at) if lines else None


def preview(core: SandboxCore, customer: JSON, sub: JSON, details: JSON, at: int) -> JSON:
    """The invoice a subscription change would produce (nothing is stored or emitted)."""
    work = copy.deepcopy(sub)
    behavior = details.get("proration_behavior", "create_prorations")
    when = details.get("proration_date", at)
    change = (
        plan_change(core, work, details["items"], when, behavior)
        if details.get("items")
        else PlanChange(items=[])
    )
    if change.changed:
        reshape(work, change, when)
    pending = copy.deepcopy(core.store.private.get(sub["id"], {}).get("pending_lines", []))
    lines = immediate_lines(core, work, change, behavior, pending)
    start, end = period_of(work)
    customer_balance = 0
    if lines is not None:
        reason, created, period = "subscription_update", when, (when, when)
    else:
        interval, count = _interval(work["items"]["data"][0]["price"])
        following = (end, period_end_after(work["billing_cycle_anchor"], end, interval, count))
        lines = pending + change.prorations + cycle_lines(core, work, following)
        reason, created, period = "upcoming", end, (start, end)
        customer_balance = int(customer["balance"])
    invoice = new_invoice_object(
        new_id("upcoming_in"),
        created,
        customer=customer,
        currency=work["currency"],
        subscription=work["id"],
        billing_reason=reason,
        period=period,
    )
    details_out = invoice["parent"]["subscription_details"]
    details_out.update(metadata=dict(work["metadata"]))
    if change.prorations:
        details_out["subscription_proration_date"] = when
    set_lines(invoice, lines)
    due = max(invoice["total"] + customer_balance, 0)
    invoice.update(starting_balance=customer_balance, amount_due=due, amount_remaining=due)
    return invoice
