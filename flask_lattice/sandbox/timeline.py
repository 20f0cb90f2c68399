"""What happens when time passes: renewals, trial ends, scheduled cancels, dunning, expiries.

A renewal follows Stripe's timeline (docs.stripe.com/billing/subscriptions/overview): an
``invoice.upcoming`` notice ``upcoming_notice_days`` before, then at the renewal a draft invoice
(``invoice.created``), finalized and charged ``finalize_delay`` seconds later.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

from . import billing
from .clock import DAY
from .core import SandboxCore
from .events import emit
from .wire import JSON

Action = Callable[[SandboxCore, JSON, int], None]


def renew(
    core: SandboxCore, sub: JSON, at: int, *, reset_anchor: bool = False, now: bool = False
) -> None:
    """Start the next period and invoice it (also ends a trial that ends at ``at``).

    The invoice stays a draft for ``finalize_delay`` seconds, then :func:`collect` finalizes and
    charges it; ``now`` collects at once (a trial ended or a subscription resumed by the API).
    ``reset_anchor`` makes ``at`` the new ``billing_cycle_anchor``.
    """
    before = copy.deepcopy(sub)
    previous_start = billing.period_of(sub)[0]
    if sub["status"] == "trialing" or reset_anchor:
        sub["billing_cycle_anchor"] = at
    if sub["status"] == "trialing":
        sub["status"] = "active"
    interval = sub["items"]["data"][0]["price"]["recurring"]
    end = billing.period_end_after(
        sub["billing_cycle_anchor"], at, interval["interval"], interval["interval_count"]
    )
    for item in sub["items"]["data"]:
        item.update(current_period_start=at, current_period_end=end)
    customer = core.store.get("customer", sub["customer"])
    lines = billing.take_pending(core, sub) + billing.cycle_lines(core, sub, (at, end))
    invoice = billing.create_invoice(
        core, customer, sub, "subscription_cycle", lines, at, (previous_start, at)
    )
    billing.emit_updated(core, sub, before, at)
    behavior = (sub["pause_collection"] or {}).get("behavior")
    if sub["status"] == "unpaid" or behavior == "keep_as_draft":
        invoice["auto_advance"] = False
        return
    delay = 0 if now else core.settings.finalize_delay
    if delay:
        invoice["automatically_finalizes_at"] = at + delay
        return
    collect(core, invoice, at)


def collect(core: SandboxCore, invoice: JSON, at: int) -> None:
    """Finalize a subscription's draft invoice and charge it (per ``pause_collection``)."""
    sub = core.store.get("subscription", invoice["parent"]["subscription_details"]["subscription"])
    behavior = (sub["pause_collection"] or {}).get("behavior")
    billing.finalize(core, invoice, at)
    if invoice["status"] != "open":
        return
    if behavior == "mark_uncollectible":
        billing.mark_uncollectible(core, invoice, at, reason="subscription_paused")
    elif behavior == "void":
        billing.void(core, invoice, at)
    else:
        billing.pay(core, invoice, at)


def _end_scheduled(core: SandboxCore, sub: JSON, at: int) -> None:
    billing.cancel(core, sub, at)


def trial_notice(core: SandboxCore, sub: JSON, at: int) -> None:
    """Send ``customer.subscription.trial_will_end`` (once per trial)."""
    core.store.secret(sub["id"])["trial_notice_sent"] = True
    emit(core, "customer.subscription.trial_will_end", sub, at=at)


def _upcoming(core: SandboxCore, sub: JSON, at: int) -> None:
    end = billing.period_of(sub)[1]
    core.store.secret(sub["id"])["upcoming_sent_for"] = end
    customer = core.store.get("customer", sub["customer"])
    emit(core, "invoice.upcoming", billing.preview(core, customer, sub, {}, at), at=at)


def _upcoming_at(core: SandboxCore, sub: JSON) -> int | None:
    """When ``invoice.upcoming`` is due for the current period, or None (sent, or no renewal)."""
    days = core.settings.upcoming_notice_days
    start, end = billing.period_of(sub)
    if not days or core.store.secret(sub["id"]).get("upcoming_sent_for") == end:
        return None
    if sub["cancel_at_period_end"] or (sub["cancel_at"] and sub["cancel_at"] <= end):
        return None
    notice = end - days * DAY
    return notice if notice > start else None


def _finalize_due(core: SandboxCore, sub: JSON, at: int) -> None:
    for invoice in drafts_due(core, sub):
        if invoice["automatically_finalizes_at"] <= at:
            collect(core, invoice, at)
            return


def drafts_due(core: SandboxCore, sub: JSON) -> list[JSON]:
    """The subscription's draft invoices waiting to be finalized automatically."""
    return [
        invoice
        for invoice in core.store.all("invoice")
        if invoice["status"] == "draft"
        and invoice["automatically_finalizes_at"] is not None
        and billing.invoice_subscription(core, invoice) is sub
    ]


def _expire_incomplete(core: SandboxCore, sub: JSON, at: int) -> None:
    latest = core.store.find(sub["latest_invoice"] or "")
    if latest and latest["status"] == "open":
        billing.void(core, latest, at)
    billing.set_status(core, sub, "incomplete_expired", at)


def _resume_collection(core: SandboxCore, sub: JSON, at: int) -> None:
    before = copy.deepcopy(sub)
    sub["pause_collection"] = None
    billing.emit_updated(core, sub, before, at)


def _retry(core: SandboxCore, sub: JSON, at: int) -> None:
    for invoice in billing.open_invoices(core, sub):
        if invoice["next_payment_attempt"] is not None and invoice["next_payment_attempt"] <= at:
            billing.pay(core, invoice, at)
            return


def next_step(
    core: SandboxCore, sub: JSON, invoices: Sequence[JSON]
) -> tuple[int, int, Action] | None:
    """The earliest thing due for ``sub``: ``(time, priority, action)``, or None.

    ``invoices`` are the subscription's invoices (:func:`invoices_by_subscription`).
    """
    status = sub["status"]
    if status in ("canceled", "incomplete_expired", "paused"):
        return None
    if status == "incomplete":
        return (sub["created"] + billing.INCOMPLETE_EXPIRY, 0, _expire_incomplete)
    steps: list[tuple[int, int, Action]] = []
    if sub["cancel_at"]:
        steps.append((sub["cancel_at"], 0, _end_scheduled))
    if status == "trialing" and not core.store.secret(sub["id"]).get("trial_notice_sent"):
        notice = sub["trial_end"] - core.settings.trial_notice_days * DAY
        steps.append((max(notice, sub["trial_start"]), 1, trial_notice))
    upcoming = _upcoming_at(core, sub) if status != "unpaid" else None
    if upcoming is not None:
        steps.append((upcoming, 1, _upcoming))
    steps.extend(
        (invoice["automatically_finalizes_at"], 3, _finalize_due)
        for invoice in invoices
        if invoice["status"] == "draft" and invoice["automatically_finalizes_at"] is not None
    )
    resumes = (sub["pause_collection"] or {}).get("resumes_at")
    if resumes:
        steps.append((resumes, 2, _resume_collection))
    steps.extend(
        (invoice["next_payment_attempt"], 3, _retry)
        for invoice in invoices
        if invoice["status"] == "open" and invoice["next_payment_attempt"] is not None
    )
    steps.append((billing.period_of(sub)[1], 4, renew))
    return min(steps, key=lambda step: (step[0], step[1]))


def _expire_session(core: SandboxCore, session: JSON, at: int) -> None:
    session.update(status="expired", url=None)
    emit(core, "checkout.session.expired", session, at=at)


def invoices_by_subscription(core: SandboxCore) -> dict[str, list[JSON]]:
    """Every invoice that bills a subscription, grouped by the subscription's id: one pass
    over the invoices, so a step of :func:`run_until` does not scan them once per
    subscription."""
    grouped: dict[str, list[JSON]] = {}
    for invoice in core.store.all("invoice"):
        sub = billing.invoice_subscription(core, invoice)
        if sub is not None:
            grouped.setdefault(sub["id"], []).append(invoice)
    return grouped


def run_until(core: SandboxCore, target: int, clock_id: str | None) -> None:
    """Process everything due up to ``target`` for objects on ``clock_id`` (None: no clock)."""
    while True:
        due: list[tuple[int, int, str, Action, JSON]] = []
        invoices = invoices_by_subscription(core)
        for sub in core.store.objects.get("subscription", {}).values():
            mine = invoices.get(sub["id"], [])
            if sub["test_clock"] == clock_id and (step := next_step(core, sub, mine)):
                due.append((step[0], step[1], sub["id"], step[2], sub))
        for session in core.store.objects.get("checkout.session", {}).values():
            customer = core.store.find(session["customer"] or "")
            on_clock = (customer or {}).get("test_clock")
            if session["status"] == "open" and on_clock == clock_id:
                due.append((session["expires_at"], 5, session["id"], _expire_session, session))
        if not due:
            return
        at, _, _, action, obj = min(due, key=lambda step: (step[0], step[1], step[2]))
        if at > target:
            return
        action(core, obj, at)
