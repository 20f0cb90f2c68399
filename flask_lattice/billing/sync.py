"""Backfill and heal: project every customer and subscription straight from Stripe.

Webhooks are the normal path; :func:`sync` is for a new install over an existing Stripe
account, and for drift after an endpoint was unreachable for longer than Stripe retries.
It pages through Stripe's lists and projects each object with the same code as the
webhook jobs (:class:`~flask_lattice.webhooks.projection.Projector`), one short transaction per
object. A row that a webhook job wrote after the sync started is left alone: it holds
newer state than the list page. Customers are linked to billables through their
``lattice_billable`` metadata.

A stored customer that Stripe no longer has (deleted, or an id from another key or a
restarted sandbox) is healed: its row is marked deleted and its subscriptions end
locally, as a ``customer.deleted`` webhook would do.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..errors import StripeNotFound
from ..models import Customer, utcnow
from ..state import get_state
from ..webhooks.projection import Projector, send_notices


@dataclass
class SyncReport:
    """What a sync saw and changed."""

    customers: int = 0
    subscriptions: int = 0
    changed: int = 0
    #: Stored customers that Stripe no longer has, now marked deleted.
    vanished: int = 0


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
    after projecting each, and counts into ``report``. Stripe's list pages are fetched as
    the iteration reaches them. Stored customers that Stripe no longer lists are healed
    (marked deleted, their subscriptions ended) after the customers, unless ``since``
    limits the listing. Raises :class:`~flask_lattice.errors.StripeAPIError` when a call
    fails."""
    gateway = get_state().stripe
    started = utcnow()
    created_gte = int(since.timestamp()) if since else None
    customers: Iterable[Any]
    subscriptions: Iterable[Any]
    if customer_id is not None:
        try:
            customers = [gateway.retrieve_customer(customer_id)]
        except StripeNotFound:
            if customer_id not in stored_customer_ids():
                raise  # nothing to heal: a typo, or another account's id
            customers = []
        subscriptions = gateway.list_subscriptions(customer_id)
    else:
        customers = gateway.iter_customers(created_gte=created_gte)
        subscriptions = gateway.iter_subscriptions(created_gte=created_gte)
    seen: set[str] = set()
    for customer in customers:
        obj = customer.to_dict(for_json=True)
        if not obj.get("deleted"):
            seen.add(obj["id"])
        with _transaction(started) as projector:
            projector.customer(obj["id"], obj)
        report.customers += 1
        yield "customer"
    if since is None:
        stored = [customer_id] if customer_id is not None else stored_customer_ids()
        for vanished in sorted(set(stored) - seen):
            with _transaction(started) as projector:
                projector.customer_gone(vanished)
            report.vanished += 1
            report.changed += len(projector.notices)
    for subscription in subscriptions:
        obj = subscription.to_dict(for_json=True)
        with _transaction(started) as projector:
            projector.subscription(obj["id"], obj)
        report.subscriptions += 1
        report.changed += len(projector.notices)
        yield "subscription"


def stored_customer_ids() -> list[str]:
    """The ``cus_…`` ids of every stored customer not marked deleted."""
    session = get_state().db.session
    ids = session.scalars(
        sa.select(Customer.stripe_customer_id).where(Customer.deleted.is_(False))
    ).all()
    return list(ids)


def missing_customer_ids() -> list[str]:
    """Stored customers (not marked deleted) that Stripe does not list: deleted in Stripe,
    or unknown to this key. Pages through every customer in Stripe."""
    present = {customer["id"] for customer in get_state().stripe.iter_customers()}
    return sorted(set(stored_customer_ids()) - present)


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
