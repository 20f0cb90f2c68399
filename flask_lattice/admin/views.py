"""The ``lattice_admin`` blueprint: inbox, failed and stuck events, subscriptions, revenue.

Every route runs :func:`.guard.require_operator` first (404 unless the host's
``@billing.admin_required`` hook says yes; CSRF on every POST). Every write goes through
the same functions as ``flask lattice replay``, ``drain`` and ``sync``, and is recorded
by :func:`.guard.record`.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from redis.exceptions import RedisError
from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.wrappers import Response as BaseResponse

from .. import revenue
from ..billing.form_values import calendar_date, whole_number
from ..billing.prices import format_amount
from ..billing.sync import sync
from ..errors import StripeAPIError
from ..models import AdminAudit, EventStatus, MrrSnapshot, WebhookEvent, utcnow
from ..state import get_state
from ..web import csrf
from ..web.http import answer_database_busy_on
from ..webhooks import queue
from ..webhooks.recover import recover_undelivered
from ..webhooks.replay import replay, select_for_replay
from . import chart, inbox, subscriptions
from .guard import record, require_operator, throttle
from .paging import keyset_page
from .redact import redact

blueprint = Blueprint("lattice_admin", __name__, template_folder="../templates")
answer_database_busy_on(blueprint)
blueprint.before_request(require_operator)

#: The most events one "replay all failed of a type" may reset.
REPLAY_CAP = 1000
#: How often one customer may be resynced, and Stripe's undelivered events listed.
RESYNC_INTERVAL = timedelta(seconds=10)
RECOVER_INTERVAL = timedelta(seconds=60)
#: Days the revenue chart covers.
CHART_DAYS = 90
#: Days the revenue page's table of daily movements lists.
TABLE_DAYS = 14


@blueprint.context_processor
def _page_context() -> dict[str, Any]:
    return {
        "lattice_base_template": get_state().config.base_template,
        "lattice_csrf_token": csrf.csrf_token,
        "lattice_csrf_field_name": csrf.csrf_field_name,
        "format_amount": format_amount,
        "event_statuses": [status.value for status in EventStatus],
        "next_page_url": _next_page_url,
    }


def _next_page_url(cursor: str) -> str:
    """This page's URL with its filters, starting after ``cursor``."""
    args: dict[str, Any] = {**(request.view_args or {})}
    args.update((key, value) for key, value in request.args.items() if value)
    args["after"] = cursor
    return url_for(request.endpoint or ".index", **args)


# -- helpers ------------------------------------------------------------------------------


def _day(name: str) -> date | None:
    value = request.args.get(name, "").strip()
    return calendar_date(value, name) if value else None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _event_filter() -> inbox.EventFilter:
    status = request.args.get("status") or None
    if status is not None and status not in {item.value for item in EventStatus}:
        raise BadRequest(f"Unknown status {status!r}.")
    since, until = _day("since"), _day("until")
    return inbox.EventFilter(
        status=status,
        type=(request.args.get("type") or "").strip() or None,
        object_id=(request.args.get("object") or "").strip() or None,
        since=_midnight(since) if since else None,
        # Until the end of that day; the last day there is has no end to bound it by.
        until=_midnight(until + timedelta(days=1)) if until and until < date.max else None,
    )


def _stored_event(event_id: str) -> WebhookEvent:
    row = get_state().db.session.get(WebhookEvent, event_id)
    if row is None:
        raise NotFound(f"No stored event {event_id}.")
    return row


# -- overview and inbox -------------------------------------------------------------------


@blueprint.get("/")
def index() -> str:
    """Event counts by status, and how many are stuck."""
    cutoff = inbox.stuck_cutoff()
    stuck = get_state().db.session.scalar(
        sa.select(sa.func.count()).where(
            WebhookEvent.status == EventStatus.RECEIVED, WebhookEvent.received_at < cutoff
        )
    )
    return render_template(
        "lattice/admin/index.html",
        counts=inbox.status_counts(),
        cap=inbox.COUNT_CAP,
        stuck=int(stuck or 0),
    )


@blueprint.get("/events")
def events() -> str:
    """The inbox, filtered by status, type, received date and object id."""
    wanted = _event_filter()
    page = inbox.events_page(wanted, request.args.get("after"))
    return render_template("lattice/admin/events.html", page=page, wanted=wanted)


@blueprint.get("/events/<event_id>")
def event(event_id: str) -> str:
    """One event: attempts, last error and its payload with bearer URLs redacted."""
    row = _stored_event(event_id)
    try:
        payload = json.dumps(redact(json.loads(row.payload)), indent=2, sort_keys=True)
    except ValueError:
        payload = "(the stored payload is not JSON)"
    return render_template("lattice/admin/event.html", event=row, payload=payload)


@blueprint.get("/objects/<object_id>")
def object_timeline(object_id: str) -> str:
    """Every stored event about one Stripe object, in watermark order."""
    entries, row = inbox.timeline(object_id)
    return render_template(
        "lattice/admin/timeline.html", object_id=object_id, entries=entries, row=row
    )


# -- failed and stuck ---------------------------------------------------------------------


@blueprint.get("/failed")
def failed() -> str:
    """Failed events, and ``received`` events older than the drain interval."""
    failed_page = inbox.events_page(
        inbox.EventFilter(status=EventStatus.FAILED), request.args.get("after")
    )
    cutoff = inbox.stuck_cutoff()
    stuck = inbox.events_page(inbox.EventFilter(status=EventStatus.RECEIVED, until=cutoff), None)
    return render_template(
        "lattice/admin/failed.html",
        failed=failed_page,
        stuck=stuck,
        types=inbox.failed_types(),
        cap=REPLAY_CAP,
    )


@blueprint.post("/events/<event_id>/replay")
def replay_event(event_id: str) -> BaseResponse:
    """Process one stored event again, now (``flask lattice replay EVENT_ID``)."""
    _stored_event(event_id)
    (outcome,) = replay([event_id])
    record("replay", event_id, {})
    flash(f"Event {event_id} was replayed: {outcome.outcome}.", "info")
    return redirect(url_for(".event", event_id=event_id), 303)


def _cap() -> int:
    return whole_number(request.form.get("cap", str(REPLAY_CAP)), "cap", low=1, high=REPLAY_CAP)


@blueprint.post("/failed/replay")
def replay_failed() -> BaseResponse | str:
    """Replay the failed events of one type: first a dry-run count and a confirm step,
    then (with ``confirm=yes``) at most ``cap`` of them, oldest first."""
    event_type = (request.form.get("type") or "").strip()
    if not event_type:
        raise BadRequest("Choose an event type.")
    cap = _cap()
    ids = select_for_replay(event_type=event_type, limit=cap)
    if request.form.get("confirm") != "yes":
        return render_template(
            "lattice/admin/confirm_replay.html", event_type=event_type, cap=cap, count=len(ids)
        )
    outcomes = replay(ids)
    record("replay-failed", event_type, {"cap": cap, "count": len(ids), "event_ids": ids})
    applied = sum(outcome.outcome != "failed" for outcome in outcomes)
    flash(f"{len(ids)} failed {event_type} event(s) replayed; {applied} no longer failed.", "info")
    return redirect(url_for(".failed"), 303)


@blueprint.post("/drain")
def drain() -> BaseResponse:
    """Enqueue stored events that never reached the queue (``flask lattice drain``)."""
    try:
        report = queue.drain()
    except RedisError as error:
        flash(f"Redis is not reachable: {error}", "error")
        return redirect(url_for(".failed"), 303)
    parameters: dict[str, Any] = {"count": len(report.enqueued)}
    if report.skipped:
        parameters["skipped"] = sorted(report.skipped)
    record("drain", None, parameters)
    message = f"Enqueued {len(report.enqueued)} stored event(s)."
    if report.skipped:
        message += f" {len(report.skipped)} could not be enqueued; the next drain tries again."
    flash(message, "info")
    return redirect(url_for(".failed"), 303)


@blueprint.post("/recover")
def recover() -> BaseResponse:
    """Store the undelivered events of the last 30 days that the inbox lacks (at most
    once a minute: it pages through Stripe's event list)."""
    throttle("recover", None, RECOVER_INTERVAL)
    try:
        report = recover_undelivered()
    except StripeAPIError as error:
        flash(f"Stripe: {error}", "error")
        return redirect(url_for(".failed"), 303)
    record("recover", None, {"listed": report.listed, "stored": report.stored})
    flash(
        f"Stripe lists {report.listed} undelivered event(s); {len(report.stored)} were "
        "missing and are now stored and queued.",
        "info",
    )
    return redirect(url_for(".failed"), 303)


# -- subscriptions ------------------------------------------------------------------------


@blueprint.get("/subscriptions")
def subscriptions_index() -> str:
    """Counts by status and plan, trials ending, past due, scheduled cancels, and a list."""
    now = utcnow()
    status = request.args.get("status") or None
    plan = request.args.get("plan") or None
    page = subscriptions.subscriptions_page(status, plan, request.args.get("after"))
    return render_template(
        "lattice/admin/subscriptions.html",
        counts=subscriptions.counts(),
        trials=subscriptions.trials_ending(now),
        past_due=subscriptions.past_due(now),
        cancels=subscriptions.scheduled_cancels(),
        page=page,
        status=status,
        plan=plan,
    )


@blueprint.get("/billables/<path:key>")
def billable(key: str) -> str:
    """One billable: its customer, subscriptions with items, invoices and recent events."""
    view = subscriptions.billable(key)
    if view is None:
        raise NotFound(f"Nothing is stored for billable {key}.")
    return render_template("lattice/admin/billable.html", view=view)


@blueprint.post("/billables/<path:key>/resync")
def resync(key: str) -> BaseResponse:
    """Project this billable's customer and subscriptions from Stripe (``flask lattice
    sync --customer``)."""
    view = subscriptions.billable(key)
    if view is None or view.customer is None:
        raise NotFound(f"Billable {key} has no Stripe customer.")
    customer_id = view.customer.stripe_customer_id
    throttle("resync", customer_id, RESYNC_INTERVAL)
    try:
        report = sync(customer_id)
    except StripeAPIError as error:
        flash(f"Stripe: {error}", "error")
        return redirect(url_for(".billable", key=key), 303)
    record(
        "resync",
        customer_id,
        {"billable": key, "subscriptions": report.subscriptions, "changed": report.changed},
    )
    flash(f"Resynced {customer_id}: {report.subscriptions} subscription(s).", "info")
    return redirect(url_for(".billable", key=key), 303)


# -- revenue and audit --------------------------------------------------------------------


@blueprint.get("/revenue")
def revenue_view() -> str:
    """MRR per currency now, its daily movements and a 90-day chart."""
    session = get_state().db.session
    revenue.refresh_positions(session, recent_only=True)
    current = revenue.current_mrr(session)
    start = utcnow().date() - timedelta(days=CHART_DAYS)
    snapshots = list(
        session.scalars(
            sa.select(MrrSnapshot)
            .where(MrrSnapshot.day >= start)
            .order_by(MrrSnapshot.currency, MrrSnapshot.day)
        )
    )
    by_currency: dict[str, list[MrrSnapshot]] = {}
    for row in snapshots:
        by_currency.setdefault(row.currency, []).append(row)
    charts = {currency: chart.mrr_chart(rows) for currency, rows in by_currency.items()}
    return render_template(
        "lattice/admin/revenue.html",
        current=current,
        by_currency=by_currency,
        charts=charts,
        table_days=TABLE_DAYS,
    )


@blueprint.get("/audit")
def audit() -> str:
    """Every console write, newest first."""
    page = keyset_page(
        get_state().db.session,
        sa.select(AdminAudit),
        (AdminAudit.id,),  # type: ignore[arg-type]
        request.args.get("after"),
    )
    return render_template("lattice/admin/audit.html", page=page)
