"""When the projection may use an event's own snapshot, and when it must ask Stripe.

``LATTICE_TRUST_WEBHOOK_PAYLOADS`` names one of three policies:

``always-fetch``
    Re-fetch the object for every event that is not older than the row's watermark
    (one Stripe read per event; the behaviour before the policies existed).
``when-safe`` (the default)
    Project the event's snapshot when it is *strictly* newer than the row's watermark,
    was rendered in the pinned API version, and carries the whole object; re-fetch on a
    tie with the watermark, another API version, or a thin or partial payload. The ties
    that need no fetch are between invoice snapshots at different lifecycle stages (an
    invoice never goes back from ``paid`` to ``open``) and between two snapshots of a
    ``paid`` (or two of a ``void``) invoice, which agree on every field the projection
    reads. A renewal's ``invoice.paid`` refreshes its subscription only when the payment
    can have changed it (:func:`payment_settles`); and a snapshot that would end a row's
    good standing (``active`` or ``trialing`` to any other status) is always re-fetched,
    since a payment since may have settled it. On top of
    that a row re-fetched after the event reached this app already holds state at least
    as new as the event's: the event only advances the watermark (coalescing). A row
    re-fetched within :data:`CLOCK_TOLERANCE` of the event's arrival is re-fetched again,
    since which state is newer cannot be told.
``always-trust``
    Project any strictly newer snapshot of the pinned API version (another version's
    object has another shape), without checking that it is complete; ties are still
    re-fetched, because only Stripe knows which of two same-second snapshots is newer.
    Coalescing applies as in ``when-safe``, but an event that arrived about when the row
    was fetched is trusted. This is what ``True`` meant before.

:func:`decide` is pure: the projection hands it the event, the row's watermark and fetch
time, and acts on the :data:`Decision`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, Protocol

#: ``skip``: the row is newer than the event; ``coalesce``: the row was fetched after the
#: event arrived (advance the watermark, write nothing); ``fetch``: re-fetch from Stripe;
#: ``payload``: project the event's snapshot.
Decision = Literal["skip", "coalesce", "fetch", "payload"]

#: How far the clocks of the web and worker machines may disagree. A fetch must start this
#: much later than the event's receipt to make the event's own fetch unnecessary.
CLOCK_TOLERANCE = timedelta(seconds=1)


class FetchPolicy(StrEnum):
    """The values of ``LATTICE_TRUST_WEBHOOK_PAYLOADS``."""

    ALWAYS_FETCH = "always-fetch"
    WHEN_SAFE = "when-safe"
    ALWAYS_TRUST = "always-trust"


#: An invoice's statuses in lifecycle order: an invoice only ever moves to a later stage
#: (draft → open → uncollectible → paid or void), so of two snapshots from the same second
#: the one at a later stage is the newer one.
INVOICE_STAGES: Mapping[str, int] = {
    "draft": 0,
    "open": 1,
    "uncollectible": 2,
    "paid": 3,
    "void": 3,
}

#: Invoice statuses after which no field the projection reads changes: two snapshots of
#: a ``paid`` (or of a ``void``) invoice from the same second agree.
FINAL_INVOICE_STATUSES = frozenset({"paid", "void"})

#: Subscription statuses in good standing: paying a renewal invoice leaves them as they
#: are, and a snapshot moving a row out of them is confirmed with Stripe first.
GOOD_STANDING = frozenset({"active", "trialing"})

#: The fields the projection reads from each kind of object (Stripe's ``object`` value).
#: A snapshot missing any of them is partial and is re-fetched.
REQUIRED_FIELDS: Mapping[str, frozenset[str]] = {
    "subscription": frozenset(
        {"id", "customer", "status", "items", "cancel_at_period_end", "cancel_at", "livemode"}
    ),
    "invoice": frozenset(
        {
            "id",
            "customer",
            "status",
            "currency",
            "amount_due",
            "amount_paid",
            "amount_remaining",
            "total",
            "parent",
        }
    ),
    "customer": frozenset({"id", "email", "name", "metadata"}),
    "checkout.session": frozenset(
        {"id", "mode", "customer", "subscription", "client_reference_id", "metadata"}
    ),
}


class EventFacts(Protocol):
    """What the policy needs to know about the event being applied (the projection's
    :class:`~flask_lattice.webhooks.projection.EventMark`).

    ``created`` is the event's ``created`` (UTC), ``api_version`` its ``api_version``, and
    ``received_at`` when this app stored it (UTC, this app's clock; ``None`` if unknown).
    """

    @property
    def created(self) -> datetime: ...

    @property
    def api_version(self) -> str | None: ...

    @property
    def received_at(self) -> datetime | None: ...


def is_complete(payload: Mapping[str, Any] | None, kind: str) -> bool:
    """Whether ``payload`` is a whole Stripe ``kind`` object as the projection reads it.

    A thin event (no ``data.object``), another object type, or a missing field fails; so
    does a subscription whose items list is truncated (``items.has_more``).
    """
    if payload is None or payload.get("object") != kind:
        return False
    if not REQUIRED_FIELDS.get(kind, frozenset({"id"})) <= payload.keys():
        return False
    if kind == "subscription":
        items = payload["items"]
        return isinstance(items, Mapping) and "data" in items and not items.get("has_more")
    return True


def decide(
    policy: FetchPolicy,
    event: EventFacts | None,
    *,
    watermark: datetime | None,
    fetched_at: datetime | None,
    payload: Mapping[str, Any] | None,
    kind: str,
    pinned_version: str,
    stored_status: str | None = None,
    paid_invoice: PaidInvoice | None = None,
) -> Decision:
    """Skip, coalesce, re-fetch or use the payload, for one row and one event.

    ``event`` is ``None`` for a sync, which projects the objects it was given.
    ``watermark`` and ``fetched_at`` are the row's (``None`` for a new row); ``kind`` is
    the Stripe object type the row holds; ``pinned_version`` is the API version the
    gateway sends; ``stored_status`` is the row's ``status``, which breaks a tie between
    two invoice snapshots of different lifecycle stages (:data:`INVOICE_STAGES`).
    ``paid_invoice`` is given when ``invoice.paid`` asks to refresh the invoice's
    subscription (the row); its payload is then ``None``. Outside ``always-fetch``, a
    subscription snapshot that would take the row out of good standing
    (:data:`GOOD_STANDING`) is re-fetched: it may predate a payment whose refresh
    :func:`payment_settles` skipped, and losing access is confirmed with Stripe first.
    """
    if event is None:
        return "payload"
    if watermark is not None and event.created < watermark:
        return "skip"
    if policy is FetchPolicy.ALWAYS_FETCH:
        return "fetch"
    if paid_invoice is not None and payment_settles(paid_invoice, stored_status):
        return "skip"
    if fetched_at is not None and event.received_at is not None:
        if fetched_at > event.received_at + CLOCK_TOLERANCE:
            return "coalesce"
        if policy is FetchPolicy.WHEN_SAFE and fetched_at > event.received_at - CLOCK_TOLERANCE:
            return "fetch"  # fetched about when the event arrived: which is newer is unknown
    if payload is None:
        return "fetch"
    trusted = event.api_version == pinned_version and (
        policy is FetchPolicy.ALWAYS_TRUST or is_complete(payload, kind)
    )
    if not trusted or _ends_good_standing(kind, stored_status, payload.get("status")):
        return "fetch"
    if watermark is None or event.created > watermark:
        return "payload"
    return _break_tie(kind, stored_status, payload.get("status"))


@dataclass(frozen=True)
class PaidInvoice:
    """What :func:`payment_settles` compares: the paid invoice's ``billing_reason`` and
    ``created`` (UTC), and the subscription row's ``current_period_end`` (UTC, ``None``
    for a row with no period)."""

    billing_reason: str | None
    invoice_created: datetime
    period_end: datetime | None


def payment_settles(paid: PaidInvoice, stored_status: str | None) -> bool:
    """Whether the row of a paid invoice's subscription already holds what the payment
    leaves it at, so ``invoice.paid`` needs no fetch of the subscription.

    True for a renewal's invoice (``billing_reason`` ``subscription_cycle``) when the row
    is ``active`` or ``trialing`` (:data:`GOOD_STANDING`) and its period ends after the
    invoice was created, so the row already holds the period the invoice bills (a
    renewal invoice is created as the new period starts): paying it changes nothing the
    projection reads. Any other invoice (the first, a proration, the final one of a
    cancellation), a row in another status (``incomplete``, ``past_due``, ``unpaid``...)
    or one still in an earlier period is re-fetched.

    Skipping leaves the watermark where it was, so a snapshot from before the payment
    can still arrive and be projected; one that would take the row out of good standing
    (the payment's own failures, held up) is re-fetched by :func:`decide`.
    """
    return (
        paid.billing_reason == "subscription_cycle"
        and stored_status in GOOD_STANDING
        and paid.period_end is not None
        and paid.period_end > paid.invoice_created
    )


def _ends_good_standing(kind: str, stored: str | None, offered: Any) -> bool:
    return kind == "subscription" and stored in GOOD_STANDING and offered not in GOOD_STANDING


def _break_tie(kind: str, stored: str | None, offered: Any) -> Decision:
    """A snapshot from the watermark's second: newer only if its lifecycle stage says so;
    two snapshots of a paid (or a void) invoice agree, so the stored one stands."""
    if kind == "invoice" and stored == offered and stored in FINAL_INVOICE_STATUSES:
        return "skip"
    before = INVOICE_STAGES.get(stored or "") if kind == "invoice" else None
    after = INVOICE_STAGES.get(offered) if isinstance(offered, str) else None
    if before is None or after is None or after == before:
        return "fetch"
    return "payload" if after > before else "skip"
