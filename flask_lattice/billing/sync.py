"""Backfill and heal: project every customer and subscription straight from Stripe.

Webhooks are the normal path; :func:`sync` is for a new install over an existing Stripe
account, and for drift after an endpoint was unreachable for longer than Stripe retries.
It pages through Stripe's lists and projects each object with the same code as the
webhook jobs (:class:`~flask_lattice.webhooks.projection.Projector`), one short transaction per
object. A row that a webhook job wrote after the sync started is left alone: it holds
newer state than the list page. Customers are linked to billables through their
``lattice_billable`` metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..models import utcnow
from ..state import get_state
from ..stripe_gateway import translated
from ..webhooks.projection import Projector, send_notices


@dataclass
class SyncReport:
    """What a sync saw and changed."""

    customers: int = 0
    subscriptions: int = 0
    changed: int = 0


def sync(customer_id: str | None = None, *, since: datetime | None = None) -> SyncReport:
    """Project every customer and subscription from Stripe (or only ``customer_id``'s,
    or only those created at or after ``since``, an aware UTC datetime)."""
    report = SyncReport()
    for _ in sync_objects(report, customer_id, since=since):
        pass
    return report


def sync_objects(
    report: SyncReport, customer_id: str | None = None, *, since: datetime | None = None
) -> Iterator[str]:
    """:func:`sync`, one object at a time: yields ``"customer"`` or ``"subscription"``
    after projecting each, and counts into ``report``. Stripe's list pages are fetched
    as the iteration reaches them. Raises ``StripeAPIError`` when a call fails."""
    gateway = get_state().stripe
    started = utcnow()
    customers: Iterable[Any]
    subscriptions: Iterable[Any]
    if customer_id is not None:
        customers = [gateway.retrieve_customer(customer_id)]
        subscriptions = gateway.list_subscriptions(customer_id)
    else:
        created = {"created": {"gte": int(since.timestamp())}} if since else {}
        customers = gateway.v1.customers.list({"limit": 100, **created}).auto_paging_iter()
        subscriptions = gateway.v1.subscriptions.list(
            {"status": "all", "limit": 100, **created}
        ).auto_paging_iter()
    with translated():
        for customer in customers:
            obj = customer.to_dict(for_json=True)
            with _transaction(started) as projector:
                projector.customer(obj["id"], obj)
            report.customers += 1
            yield "customer"
        for subscription in subscriptions:
            obj = subscription.to_dict(for_json=True)
            with _transaction(started) as projector:
                projector.subscription(obj["id"], obj)
            report.subscriptions += 1
            report.changed += len(projector.notices)
            yield "subscription"


@contextmanager
def _transaction(started: datetime) -> Iterator[Projector]:
    """One object's transaction: commit, then send the signals it collected."""
    projector = Projector.for_app(not_after=started)
    try:
        yield projector
        projector.session.commit()
    except BaseException:
        projector.session.rollback()
        raise
    send_notices(projector)
