"""What happens when time passes: renewals, trial ends, scheduled cancels, dunning, expiries."""

from __future__ import annotations

import copy
from collections.abc import Callable

from . import billing
from .clock import DAY, add_interval
from .core import SandboxCore
from .events import emit
from .wire import JSON

Action = Callable[[SandboxCore, JSON, int], None]


def renew(core: SandboxCore, sub: JSON, at: int) -> None:
    """Start the next period and invoice it (also ends a trial that ends at ``at``)."""
    before = copy.deepcopy(sub)
    previous_start = billing.period_of(sub)[0]
    interval = sub["items"]["data"][0]["price"]["recurring"]
    end = add_interval(at, interval["interval"], interval["interval_count"])
    for item in sub["items"]["data"]:
        item.update(current_period_start=at, current_period_end=end)
    if sub["status"] == "trialing":
        sub.update(status="active", billing_cycle_anchor=at)
    customer = core.store.get("customer", sub["customer"])
    lines = core.store.secret(sub["id"]).pop("pending_lines", [])
    lines += billing.cycle_lines(core, sub, (at, end))
    invoice = billing.create_invoice(
        core, customer, sub, "subscription_cycle", lines, at, (previous_start, at)
    )
    billing.emit_updated(core, sub, before, at)
    behavior = (sub["pause_collection"] or {}).get("behavior")
    if sub["status"] == "unpaid" or behavior == "keep_as_draft":
        return
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


def _trial_notice(core: SandboxCore, sub: JSON, at: int) -> None:
    core.store.secret(sub["id"])["trial_notice_sent"] = True
    emit(core, "customer.subscription.trial_will_end", sub, at=at)


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


def next_step(core: SandboxCore, sub: JSON) -> tuple[int, int, Action] | None:
    """The earliest thing due for ``sub``: ``(time, priority, action)``, or None."""
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
        steps.append((max(notice, sub["trial_start"]), 1, _trial_notice))
    resumes = (sub["pause_collection"] or {}).get("resumes_at")
    if resumes:
        steps.append((resumes, 2, _resume_collection))
    steps.extend(
        (invoice["next_payment_attempt"], 3, _retry)
        for invoice in billing.open_invoices(core, sub)
        if invoice["next_payment_attempt"] is not None
    )
    steps.append((billing.period_of(sub)[1], 4, renew))
    return min(steps, key=lambda step: (step[0], step[1]))


def _expire_session(core: SandboxCore, session: JSON, at: int) -> None:
    session.update(status="expired", url=None)
    emit(core, "checkout.session.expired", session, at=at)


def run_until(core: SandboxCore, target: int, clock_id: str | None) -> None:
    """Process everything due up to ``target`` for objects on ``clock_id`` (None: no clock)."""
    while True:
        due: list[tuple[int, int, str, Action, JSON]] = []
        for sub in core.store.objects.get("subscription", {}).values():
            if sub["test_clock"] == clock_id and (step := next_step(core, sub)):
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
