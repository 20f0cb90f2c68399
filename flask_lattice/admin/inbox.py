"""Reads of the webhook inbox: filtered pages, status counts, stuck events, timelines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..models import Customer, EventStatus, Invoice, Subscription, WebhookEvent, utcnow
from ..state import get_state
from .paging import Page, keyset_page


@dataclass(frozen=True)
class EventFilter:
    """What the inbox shows: ``status``, ``type``, ``object_id`` and a received window
    (aware UTC datetimes, ``since`` inclusive, ``until`` exclusive); None means any."""

    status: str | None = None
    type: str | None = None
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def events_page(wanted: EventFilter, cursor: str | None) -> Page[WebhookEvent]:
    """One page of stored events, newest received first."""
    query = sa.select(WebhookEvent)
    if wanted.status:
        query = query.where(WebhookEvent.status == wanted.status)
    if wanted.type:
        query = query.where(WebhookEvent.type == wanted.type)
    if wanted.object_id:
        query = query.where(WebhookEvent.object_id == wanted.object_id)
    if wanted.since:
        query = query.where(WebhookEvent.received_at >= wanted.since)
    if wanted.until:
        query = query.where(WebhookEvent.received_at < wanted.until)
    columns = (WebhookEvent.received_at, WebhookEvent.id)
    return keyset_page(get_state().db.session, query, columns, cursor)  # type: ignore[arg-type]


#: Counts above this show as "at least" (counting every processed event would scan the inbox).
COUNT_CAP = 10_000


def status_counts() -> dict[str, int]:
    """How many stored events are in each status, counted up to :data:`COUNT_CAP` + 1
    (every status present; a value above the cap means "more than the cap")."""
    session = get_state().db.session
    counts = {}
    for status in EventStatus:
        capped = (
            sa.select(WebhookEvent.id)
            .where(WebhookEvent.status == status.value)
            .limit(COUNT_CAP + 1)
            .subquery()
        )
        counts[status.value] = int(
            session.scalar(sa.select(sa.func.count()).select_from(capped)) or 0
        )
    return counts


def stuck_cutoff() -> datetime:
    """Events still ``received`` before this time missed at least one drain interval."""
    return utcnow() - timedelta(seconds=get_state().config.drain_interval)


def failed_types() -> list[tuple[str, int]]:
    """``(event type, failed count)`` for every type with failed events."""
    session = get_state().db.session
    rows = session.execute(
        sa.select(WebhookEvent.type, sa.func.count())
        .where(WebhookEvent.status == EventStatus.FAILED)
        .group_by(WebhookEvent.type)
        .order_by(WebhookEvent.type)
    )
    return [(event_type, int(count)) for event_type, count in rows]


@dataclass(frozen=True)
class TimelineEntry:
    """One stored event about an object, and where it stands against the row's watermark:
    ``current`` (the last event applied), ``older`` (created before the watermark: it was
    applied earlier or skipped as stale) or ``newer`` (not applied yet), or None when
    there is no local row."""

    event: WebhookEvent
    position: str | None


def timeline(object_id: str, limit: int = 500) -> tuple[list[TimelineEntry], Any]:
    """Every stored event about ``object_id`` in watermark order (``created``, then id),
    and the local row that the projection keeps for it (a customer, subscription or
    invoice, or None)."""
    session = get_state().db.session
    events = session.scalars(
        sa.select(WebhookEvent)
        .where(WebhookEvent.object_id == object_id)
        .order_by(WebhookEvent.created, WebhookEvent.id)
        .limit(limit)
    ).all()
    row = _projected_row(object_id)
    entries = [TimelineEntry(event, _position(event, row)) for event in events]
    return entries, row


def _projected_row(object_id: str) -> Customer | Subscription | Invoice | None:
    session = get_state().db.session
    if object_id.startswith("cus_"):
        return session.scalar(sa.select(Customer).where(Customer.stripe_customer_id == object_id))
    if object_id.startswith("sub_"):
        return session.scalar(
            sa.select(Subscription).where(Subscription.stripe_subscription_id == object_id)
        )
    if object_id.startswith("in_"):
        return session.scalar(sa.select(Invoice).where(Invoice.stripe_invoice_id == object_id))
    return None


def _position(event: WebhookEvent, row: Customer | Subscription | Invoice | None) -> str | None:
    if row is None or row.watermark_created is None:
        return None
    if event.id == row.watermark_event_id:
        return "current"
    return (
        "older"
        if (event.created, event.id) < (row.watermark_created, row.watermark_event_id or "")
        else "newer"
    )
