"""Stripe objects → local rows: order-safe, idempotent, one handler per event type.

Every handler runs inside the job's transaction (:func:`flask_lattice.webhooks.job.process_event`)
and follows the same rules:

* **Lock first.** The object's row is locked before anything is read from Stripe: a
  placeholder row is inserted if missing (``ON CONFLICT DO NOTHING``) and then selected
  ``FOR UPDATE`` on PostgreSQL. On SQLite the transaction already holds the database
  write lock. Two workers handling events of one subscription therefore run one after
  the other, and the second one fetches the newer state.
* **Watermark.** Each row keeps the ``created`` time and id of the newest event applied to
  it, and when it was last re-fetched. An event older than the watermark is skipped: the
  state already projected is newer. Otherwise the fetch policy
  (:mod:`flask_lattice.webhooks.fetch_policy`, ``LATTICE_TRUST_WEBHOOK_PAYLOADS``) decides
  between the event's snapshot, a re-fetch from Stripe, and only advancing the watermark
  (the row was re-fetched after the event arrived); a tie with the watermark (two events
  in the same second) is re-fetched, because only Stripe knows which snapshot is newer,
  and so is an event rendered in another API version than the pinned one.
* **Idempotent upserts.** Applying the same state twice changes nothing.
* **Ownership from the app's records.** A subscription or invoice belongs to the billable
  that owns its customer in ``lattice_customers``. A completed Checkout Session links a
  customer only when the app recorded it for that billable (``lattice_checkout_sessions``),
  or, for sessions the app did not create, when the host's ``checkout_owner`` hook says so.
  A claim that contradicts the record is logged and sent as ``ownership_conflict``, never
  applied.
* **Only what Stripe confirms.** Events of the other livemode are ignored; an object that
  Stripe answers 404 for is gone (its rows end), never projected from the payload; URLs
  are kept only when they are ``https`` (or on the configured API base, the sandbox);
  a timestamp out of range is logged and stored as null.

Signals are collected while projecting and sent by the job after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import sqlalchemy as sa
from blinker import NamedSignal
from flask import Flask, current_app
from sqlalchemy.orm import scoped_session

from .. import signals
from ..billable import BILLABLE_METADATA_KEY
from ..errors import StripeAPIError, StripeNotFound
from ..models import (
    SANDBOX_CLOCK_ID,
    CheckoutSession,
    CheckoutSessionStatus,
    Customer,
    Invoice,
    Price,
    Subscription,
    SubscriptionItem,
    TestClock,
    clock_of,
    from_timestamp,
    insert_ignoring_conflicts,
    utcnow,
)
from ..state import LatticeState, get_state
from ..stripe_gateway import API_VERSION
from . import fetch_policy
from .fetch_policy import Decision, FetchPolicy, PaidInvoice

log = logging.getLogger(__name__)

JSON = dict[str, Any]
#: A ``fetched_at`` that marks a cached price as stale (the next read fetches it again).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Statuses after which a subscription no longer bills or gives access.
ENDED_STATUSES = ("canceled", "incomplete_expired")

T = TypeVar("T")

# Statements most events run, built once (SQLAlchemy then only looks them up in its cache).
_OWNER_OF = sa.select(Customer.billable_key).where(
    Customer.stripe_customer_id == sa.bindparam("customer_id")
)
_KNOWN_CLOCK = sa.select(TestClock.id).where(TestClock.stripe_clock_id == sa.bindparam("clock_id"))


_LOCKING_SELECTS: dict[tuple[type[Any], str], sa.Select[Any]] = {}


def _locking_select(model: type[Any], column: str) -> sa.Select[Any]:
    """``SELECT … FOR UPDATE`` of the ``model`` row whose ``column`` is the ``key`` parameter,
    overwriting what the session holds of it (built once per model)."""
    if (model, column) not in _LOCKING_SELECTS:
        _LOCKING_SELECTS[model, column] = (
            sa.select(model)
            .where(getattr(model, column) == sa.bindparam("key"))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    return _LOCKING_SELECTS[model, column]


@dataclass(frozen=True)
class EventMark:
    """What orders snapshots: the event's ``created`` time and id; the API version its
    payload was rendered in (``None`` when Stripe sent ``null``); and when this app stored
    it (``received_at``, UTC, ``None`` if unknown), which decides coalescing."""

    id: str
    created: datetime
    api_version: str | None = None
    received_at: datetime | None = None

    @classmethod
    def of(cls, event: Mapping[str, Any], received_at: datetime | None = None) -> EventMark:
        """The mark of a Stripe event (a mapping with ``id``, ``created``, ``api_version``)."""
        created = from_timestamp(event["created"])
        assert created is not None
        return cls(
            id=event["id"],
            created=created,
            api_version=event.get("api_version"),
            received_at=received_at,
        )


@dataclass
class Projector:
    """Projects Stripe objects into the local tables within one transaction.

    ``mark`` is the event being applied (``None`` for a sync, which always uses the
    objects it was given). Signals to send after the commit collect in ``notices``.
    """

    state: LatticeState
    session: scoped_session[Any]
    mark: EventMark | None = None
    not_after: datetime | None = None
    notices: list[Callable[[Flask], None]] = field(default_factory=list)
    #: Every :meth:`decide` answer so far: all ``"skip"`` means the event was stale.
    decisions: list[Decision] = field(default_factory=list)

    @classmethod
    def for_app(
        cls, mark: EventMark | None = None, *, not_after: datetime | None = None
    ) -> Projector:
        """A projector on the current app's session."""
        state = get_state()
        return cls(state=state, session=state.db.session, mark=mark, not_after=not_after)

    # -- deciding ---------------------------------------------------------------------

    def decide(
        self,
        row: Customer | Subscription | Invoice | None,
        payload: JSON | None,
        kind: str,
        paid_invoice: PaidInvoice | None = None,
    ) -> Decision:
        """Skip, coalesce, re-fetch, or use the event's ``payload`` (a Stripe ``kind``
        object) for ``row`` (``None`` when there is none), under the app's fetch policy.

        Under ``when-safe`` a payload is only used when the event was rendered in the
        pinned API version: another version's object has another shape (an older one
        keeps the period on the subscription, not its items).
        """
        decision = fetch_policy.decide(
            FetchPolicy(self.state.config.fetch_policy),
            self.mark,
            watermark=row.watermark_created if row is not None else None,
            fetched_at=row.fetched_at if row is not None else None,
            payload=payload,
            kind=kind,
            pinned_version=API_VERSION,
            stored_status=getattr(row, "status", None),
            paid_invoice=paid_invoice,
        )
        self.decisions.append(decision)
        return decision

    def _advance(self, row: Customer | Subscription | Invoice) -> None:
        if self.mark is None:
            return
        if row.watermark_created is None or self.mark.created >= row.watermark_created:
            row.watermark_created = self.mark.created
            row.watermark_event_id = self.mark.id

    def _stale_for_sync(self, row: Customer | Subscription | Invoice, fresh: bool) -> bool:
        """During a sync, a row written after the sync began holds newer state: keep it."""
        return (
            self.mark is None
            and not fresh
            and self.not_after is not None
            and row.updated_at > self.not_after
        )

    # -- locking ----------------------------------------------------------------------

    def _lock(self, model: type[T], column: str, key: str, placeholder: JSON) -> tuple[T, bool]:
        """Lock and load the row; when it is missing, insert a placeholder row first.

        Returns the row and whether the placeholder was inserted now (a new row). A row
        that exists costs one statement; a missing one three (the insert skips a row that
        another worker inserted meanwhile, and the second read waits for its lock).
        """
        locked = _locking_select(model, column)
        row = self.session.scalars(locked, {"key": key}).one_or_none()
        if row is not None:
            return row, False
        table: sa.Table = getattr(model, "__table__")  # noqa: B009 - typed by the models
        now = utcnow()
        values = {column: key, **placeholder}
        if "created_at" in table.c:
            values.update(created_at=now, updated_at=now)
        inserted = self.session.execute(
            insert_ignoring_conflicts(table, self.session.get_bind().dialect.name)
            .values(**values)
            .returning(table.c[column])
        ).first()
        return self.session.scalars(locked, {"key": key}).one(), inserted is not None

    # -- customers --------------------------------------------------------------------

    def link_customer(
        self,
        customer_id: str,
        billable_key: str,
        *,
        email: str | None = None,
        name: str | None = None,
    ) -> None:
        """Record that ``customer_id`` belongs to ``billable_key`` unless it is known already.

        Rows projected before the link was known get the billable key now, so the result
        does not depend on which event came first.
        """
        table = cast(sa.Table, Customer.__table__)
        now = utcnow()
        inserted = self.session.execute(
            insert_ignoring_conflicts(table, self.session.get_bind().dialect.name)
            .values(
                billable_key=billable_key,
                stripe_customer_id=customer_id,
                email=email,
                name=name,
                livemode=False,
                deleted=False,
                created_at=now,
                updated_at=now,
            )
            .returning(table.c.id)
        ).first()
        if inserted is None:
            return
        for model in (Invoice, Subscription):
            self.session.execute(
                sa.update(model)
                .where(model.stripe_customer_id == customer_id, model.billable_key.is_(None))
                # Not a newer snapshot: keep updated_at, which a running sync compares.
                .values(billable_key=billable_key, updated_at=model.updated_at)
                .execution_options(synchronize_session="fetch")
            )

    def customer(self, customer_id: str, payload: JSON | None, *, deleted: bool = False) -> None:
        """Project a customer: contact details, the billable link, deletion."""
        row = self._locked_customer(customer_id)
        decision = self.decide(row, payload, "customer")
        if decision == "skip" or (row is not None and self._stale_for_sync(row, False)):
            return
        if decision == "coalesce" and row is not None:
            self._advance(row)
            return
        obj = self._object(
            decision, payload, lambda: self.state.stripe.retrieve_customer(customer_id), row
        )
        gone = deleted or obj is None or bool(obj.get("deleted"))
        if gone:
            self.customer_gone(customer_id)
            return
        assert obj is not None
        if row is None:
            billable_key = (obj.get("metadata") or {}).get(BILLABLE_METADATA_KEY)
            if not billable_key:
                return
            self.link_customer(
                customer_id, billable_key, email=obj.get("email"), name=obj.get("name")
            )
            row = self.session.scalars(
                sa.select(Customer).where(Customer.stripe_customer_id == customer_id)
            ).one_or_none()
            if row is None:  # the billable already has another customer
                log.warning(
                    "customer %s names billable %r, which already has a customer",
                    customer_id,
                    billable_key,
                )
                return
        row.email = obj.get("email", row.email)
        row.name = obj.get("name", row.name)
        row.livemode = bool(obj.get("livemode", row.livemode))
        self._advance(row)

    def _locked_customer(self, customer_id: str) -> Customer | None:
        """The customer's row, locked for this transaction and freshly read."""
        return self.session.scalars(
            sa.select(Customer)
            .where(Customer.stripe_customer_id == customer_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()

    def customer_gone(self, customer_id: str) -> None:
        """The customer no longer exists in Stripe (deleted, or unknown to this key).

        Its row is marked deleted (the billable's next checkout creates a new customer)
        and its subscriptions end locally now, so access ends at once.
        """
        row = self._locked_customer(customer_id)
        if row is not None:
            row.deleted = True
            self._advance(row)
        ended = self.session.scalars(
            sa.select(Subscription)
            .where(
                Subscription.stripe_customer_id == customer_id,
                Subscription.status.not_in(ENDED_STATUSES),
            )
            .with_for_update()
        ).all()
        for subscription in ended:
            self._end_subscription(subscription)

    def _end_subscription(self, row: Subscription) -> None:
        """End a subscription locally: Stripe no longer has it, or its customer."""
        old = (row.status, row.plan_key)
        row.status = "canceled"
        row.ended_at = row.ended_at or utcnow()
        self._notify_subscription_changed(row, old)

    def owner_of(self, customer_id: str) -> str | None:
        """The billable that owns ``customer_id`` in ``lattice_customers``, if any."""
        owner: str | None = self.session.scalar(_OWNER_OF, {"customer_id": customer_id})
        return owner

    def conflict(self, customer_id: str, owner: str, claimed_by: str, source: str) -> None:
        """Log and signal a claim on a customer that another billable owns; apply nothing."""
        log.warning(
            "ownership conflict: %s claims customer %s for billable %r, which belongs to %r; "
            "not applied",
            source,
            customer_id,
            claimed_by,
            owner,
        )
        details = {
            "customer_id": customer_id,
            "owner": owner,
            "claimed_by": claimed_by,
            "source": source,
        }
        self.notices.append(_signal(signals.ownership_conflict, details))

    def notify_about(
        self, row: Subscription | Invoice, signal: NamedSignal, **details: Any
    ) -> None:
        """Send ``signal`` after the commit with the row's ``billable_key`` and
        ``subscription_id`` (Stripe's ``sub_…``) and ``details``."""
        self.notices.append(
            _signal(
                signal,
                {
                    "billable_key": row.billable_key,
                    "subscription_id": row.stripe_subscription_id,
                    **details,
                },
            )
        )

    # -- subscriptions ----------------------------------------------------------------

    def subscription(
        self,
        subscription_id: str,
        payload: JSON | None,
        *,
        customer_id: str | None = None,
        refetch: bool = False,
        paid_invoice: JSON | None = None,
    ) -> Subscription | None:
        """Project a subscription and its items; ``refetch`` ignores a trusted payload.

        ``paid_invoice`` is the paid invoice (a Stripe invoice object) that asks for this
        refresh: a row the payment leaves as it is needs no fetch
        (:func:`~.fetch_policy.payment_settles`).

        ``None`` when Stripe does not know the subscription and it was never projected.
        """
        if customer_id is None and payload is not None:
            customer_id = _id_of(payload["customer"])
        row, new = self._lock(
            Subscription,
            "stripe_subscription_id",
            subscription_id,
            {
                "stripe_customer_id": customer_id or "",
                "status": "incomplete",
                "price_ids": [],
                "quantity": 1,
                "cancel_at_period_end": False,
                "livemode": False,
                "raw": {},
            },
        )
        paid = None
        if paid_invoice is not None and (
            created := _timestamps(paid_invoice["id"])(paid_invoice, "created")
        ):
            paid = PaidInvoice(
                paid_invoice.get("billing_reason"),
                created,
                None if new else row.current_period_end,
            )
        decision = self.decide(row, None if refetch else payload, "subscription", paid)
        if decision in ("skip", "coalesce") or self._stale_for_sync(row, new):
            row.billable_key = row.billable_key or self.owner_of(row.stripe_customer_id)
            if decision == "coalesce":
                self._advance(row)
            return row
        obj = self._object(
            decision,
            payload,
            lambda: self.state.stripe.retrieve_subscription(subscription_id),
            row,
        )
        if obj is None:
            if new:
                self.session.delete(row)
                return None
            if row.status not in ENDED_STATUSES:
                self._end_subscription(row)
            self._advance(row)
            return row
        old = (None, None) if new else (row.status, row.plan_key)
        self._copy_subscription(row, obj)
        self._advance(row)
        if (row.status, row.plan_key) != old:
            self._notify_subscription_changed(row, old)
        return row

    def _copy_subscription(self, row: Subscription, obj: JSON) -> None:
        catalog = self.state.config.plans
        items = _subscription_items(obj, self.state)
        # The item carrying the plan decides the plan, quantity and period.
        main, main_plan = catalog.plan_item(items)
        customer_id = _id_of(obj["customer"])
        clock = _id_of(obj["test_clock"]) if obj.get("test_clock") else None
        clock = clock_of(clock, self.state.config.stripe_api_base)
        # Every read comes before the first change to the row, so no read has to flush
        # a half-copied row first (autoflush).
        owner = self.owner_of(customer_id)
        if clock and clock != row.test_clock:  # a row already on the clock made sure of it
            self.known_clock(clock)
        existing = {item.stripe_item_id: item for item in row.items}
        row.stripe_customer_id = customer_id
        # Only the app's record of the customer says who owns it, never the object's metadata.
        row.billable_key = owner or row.billable_key
        row.status = obj["status"]
        row.plan_key = main_plan.key if main_plan else None
        row.price_ids = [item["price"]["id"] for item in items]
        row.quantity = int(main.get("quantity") or 1) if main else 1
        at = _timestamps(obj["id"])
        row.current_period_start = at(main, "current_period_start")
        row.current_period_end = at(main, "current_period_end")
        row.cancel_at_period_end = bool(obj.get("cancel_at_period_end"))
        row.cancel_at = at(obj, "cancel_at")
        row.canceled_at = at(obj, "canceled_at")
        row.ended_at = at(obj, "ended_at")
        row.trial_start = at(obj, "trial_start")
        row.trial_end = at(obj, "trial_end")
        pause = obj.get("pause_collection") or {}
        row.pause_collection_behavior = pause.get("behavior")
        row.pause_resumes_at = at(pause, "resumes_at")
        row.test_clock = clock
        row.livemode = bool(obj.get("livemode"))
        row.raw = {**obj, "customer": row.stripe_customer_id}
        row.items = [_copy_item(existing.get(item["id"]), item, at) for item in items]

    def _notify_subscription_changed(
        self, row: Subscription, old: tuple[str | None, str | None]
    ) -> None:
        self.notify_about(
            row,
            signals.subscription_changed,
            old_status=old[0],
            new_status=row.status,
            old_plan=old[1],
            new_plan=row.plan_key,
        )

    # -- invoices ---------------------------------------------------------------------

    def invoice(self, invoice_id: str, payload: JSON) -> Invoice | None:
        """Project an invoice (the short history shown on the billing page).

        ``None`` when Stripe does not know the invoice and it was never projected.
        """
        row, new = self._lock(
            Invoice,
            "stripe_invoice_id",
            invoice_id,
            {
                "stripe_customer_id": _id_of(payload["customer"]),
                "currency": payload.get("currency") or "",
                "amount_due": 0,
                "amount_paid": 0,
                "amount_remaining": 0,
                "total": 0,
            },
        )
        decision = self.decide(row, payload, "invoice")
        if decision == "skip" or self._stale_for_sync(row, new):
            return row
        if decision == "coalesce":
            self._advance(row)
            return row
        obj = self._object(
            decision, payload, lambda: self.state.stripe.retrieve_invoice(invoice_id), row
        )
        if obj is None:
            if new:
                self.session.delete(row)
                return None
            return row
        row.stripe_customer_id = _id_of(obj["customer"])
        row.stripe_subscription_id = invoice_subscription(obj)
        row.billable_key = self.owner_of(row.stripe_customer_id) or row.billable_key
        row.number = obj.get("number")
        row.status = obj.get("status")
        row.billing_reason = obj.get("billing_reason")
        row.currency = obj["currency"]
        for amount in ("amount_due", "amount_paid", "amount_remaining", "total"):
            setattr(row, amount, int(obj.get(amount) or 0))
        row.hosted_invoice_url = self.stripe_url(obj.get("hosted_invoice_url"), invoice_id)
        at = _timestamps(invoice_id)
        row.period_start = at(obj, "period_start")
        row.period_end = at(obj, "period_end")
        row.stripe_created = at(obj, "created")
        self._advance(row)
        return row

    # -- catalog ----------------------------------------------------------------------

    def invalidate_prices(self) -> None:
        """Mark the cached catalog prices stale: the next read of the catalog refreshes them
        from Stripe (:func:`flask_lattice.billing.prices.catalog_prices`)."""
        self.session.execute(sa.update(Price).values(fetched_at=_EPOCH))

    # -- helpers ----------------------------------------------------------------------

    def _object(
        self,
        decision: Decision,
        payload: JSON | None,
        fetch: Callable[[], Any],
        row: Customer | Subscription | Invoice | None = None,
    ) -> JSON | None:
        """The object to project: the payload, or Stripe's copy; ``None`` if Stripe
        answers 404 (the object is gone: never fall back to the payload). A fetch records
        on ``row`` when it started (``fetched_at``), for coalescing."""
        if decision == "payload" and payload is not None:
            return payload
        started = utcnow()
        try:
            obj = dict(fetch().to_dict(for_json=True))
            if row is not None:
                row.fetched_at = started
            return obj
        except StripeNotFound:
            log.info("object %s is gone from Stripe", (payload or {}).get("id", "?"))
            return None

    def stripe_url(self, value: Any, object_id: str) -> str | None:
        """``value`` if it is an ``https`` URL, or one on the configured API base (the
        sandbox); anything else (``javascript:``, ``http:`` elsewhere) is dropped."""
        if not isinstance(value, str) or not value:
            return None
        parts = urlsplit(value)
        base = self.state.config.stripe_api_base
        if parts.scheme == "https" and parts.netloc:
            return value
        if base and value.startswith(base.rstrip("/") + "/"):
            return value
        log.warning("%s: refused a URL that is not https: %.80r", object_id, value)
        return None

    # -- clocks -----------------------------------------------------------------------

    def known_clock(self, clock_id: str) -> None:
        """Make sure the test clock ``clock_id`` is stored, fetching it once if needed."""
        known = self.session.scalar(_KNOWN_CLOCK, {"clock_id": clock_id})
        if known is not None:
            return
        try:
            clock = self.state.stripe.retrieve_test_clock(clock_id)
        except StripeNotFound:
            log.info("test clock %s is gone from Stripe", clock_id)
            return
        except StripeAPIError as error:
            if clock_id != SANDBOX_CLOCK_ID:
                raise
            # The API base is not the sandbox, or it is down: the wall clock stands in
            # until its test_helpers.test_clock.ready webhook arrives.
            log.info("the sandbox clock could not be read: %s", error)
            return
        self.clock(dict(clock.to_dict(for_json=True)))

    def clock(self, obj: JSON, *, deleted: bool = False) -> None:
        """Keep a test clock's time: its ``frozen_time`` only ever moves forward."""
        clock_id = obj["id"]
        frozen = _timestamps(clock_id)(obj, "frozen_time")
        # frozen_time is whole seconds: so is the moment it was observed.
        observed = utcnow().replace(microsecond=0)
        row, _ = self._lock(
            TestClock,
            "stripe_clock_id",
            clock_id,
            {
                "frozen_time": frozen or observed,
                "observed_at": observed,
                "runs": clock_id == SANDBOX_CLOCK_ID,
                "deleted": False,
            },
        )
        if frozen is not None and frozen >= row.frozen_time:
            row.frozen_time, row.observed_at = frozen, observed
        row.deleted = row.deleted or deleted or bool(obj.get("deleted"))


# -- plain helpers ----------------------------------------------------------------------


def _signal(signal: NamedSignal, details: Mapping[str, Any]) -> Callable[[Flask], None]:
    def send(app: Flask) -> None:
        signal.send(app, **details)

    return send


def _id_of(value: Any) -> str:
    return value if isinstance(value, str) else str(value["id"])


def _timestamps(object_id: str) -> Callable[[Mapping[str, Any] | None, str], datetime | None]:
    """Read unix-time fields of one object; a value out of range is logged and read as null."""

    def read(source: Mapping[str, Any] | None, name: str) -> datetime | None:
        if source is None:
            return None
        value = source.get(name)
        try:
            return from_timestamp(value)
        except (OverflowError, OSError, ValueError, TypeError):
            log.warning(
                "%s: %s=%.40r is not a valid timestamp; stored as null", object_id, name, value
            )
            return None

    return read


def invoice_subscription(invoice: Mapping[str, Any]) -> str | None:
    """The subscription an invoice bills: ``parent.subscription_details.subscription``."""
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    subscription = details.get("subscription")
    return _id_of(subscription) if subscription else None


def _subscription_items(obj: JSON, state: LatticeState) -> list[JSON]:
    items = obj.get("items") or {}
    data: list[JSON] = list(items.get("data") or [])
    if items.get("has_more"):
        listed = state.stripe.list_subscription_items(obj["id"])
        data = [item.to_dict(for_json=True) for item in listed]
    return data


def _copy_item(
    row: SubscriptionItem | None,
    item: JSON,
    at: Callable[[Mapping[str, Any] | None, str], datetime | None],
) -> SubscriptionItem:
    row = row or SubscriptionItem(stripe_item_id=item["id"])
    price = item["price"]
    row.price_id = price["id"]
    row.lookup_key = price.get("lookup_key")
    row.product_id = _id_of(price["product"]) if price.get("product") else None
    row.quantity = int(item.get("quantity") or 1)
    row.current_period_start = at(item, "current_period_start")
    row.current_period_end = at(item, "current_period_end")
    return row


# -- event handlers ---------------------------------------------------------------------

Handler = Callable[[Projector, JSON], None]


def _on_checkout_completed(projector: Projector, event: JSON) -> None:
    session = event["data"]["object"]
    if session.get("mode") != "subscription":
        return
    if projector.decide(None, session, "checkout.session") != "payload":
        found = projector._object(
            "fetch", None, lambda: projector.state.stripe.retrieve_checkout_session(session["id"])
        )
        if found is None:
            return
        session = found
    recorded = _record_status(projector, session["id"], CheckoutSessionStatus.COMPLETE)
    customer_id = _id_of(session["customer"]) if session.get("customer") else None
    if customer_id:
        _settle_owner(projector, session, customer_id, recorded)
    if session.get("subscription"):
        projector.subscription(
            _id_of(session["subscription"]), None, customer_id=customer_id, refetch=True
        )


def _settle_owner(
    projector: Projector, session: JSON, customer_id: str, recorded: CheckoutSession | None
) -> None:
    """Link the session's customer to the billable the app recorded the session for (or
    the host's ``checkout_owner`` hook names); a claim against the record is a conflict."""
    if recorded is not None:
        decided: str | None = recorded.billable_key
        source = "the recorded checkout session"
    else:
        hook = projector.state.hooks.checkout_owner
        decided = hook(session) if hook is not None else None
        source = "the checkout_owner hook"
    claims = {decided: source} if decided else {}
    for field_name, value in (
        ("client_reference_id", session.get("client_reference_id")),
        ("metadata", (session.get("metadata") or {}).get(BILLABLE_METADATA_KEY)),
    ):
        if isinstance(value, str) and value:
            claims.setdefault(value, f"{field_name} of checkout session {session['id']}")
    owner = projector.owner_of(customer_id)
    if owner is None and decided:
        details = session.get("customer_details") or {}
        projector.link_customer(
            customer_id, decided, email=details.get("email"), name=details.get("name")
        )
        owner = projector.owner_of(customer_id)
    for claimed_by, claim_source in claims.items():
        if owner is not None and claimed_by != owner:
            projector.conflict(customer_id, owner, claimed_by, claim_source)


def _record_status(
    projector: Projector, session_id: str, status: CheckoutSessionStatus
) -> CheckoutSession | None:
    """Move the app's record of a Checkout Session to a final ``status`` (if recorded)."""
    row = projector.session.scalars(
        sa.select(CheckoutSession)
        .where(CheckoutSession.stripe_session_id == session_id)
        .with_for_update()
    ).one_or_none()
    if row is not None and row.status == CheckoutSessionStatus.OPEN:
        row.status = status
    return row


def _on_checkout_expired(projector: Projector, event: JSON) -> None:
    _record_status(projector, event["data"]["object"]["id"], CheckoutSessionStatus.EXPIRED)


def _on_clock(projector: Projector, event: JSON) -> None:
    obj = event["data"]["object"]
    projector.clock(obj, deleted=event["type"] == "test_helpers.test_clock.deleted")


def _on_subscription(projector: Projector, event: JSON) -> None:
    obj = event["data"]["object"]
    projector.subscription(obj["id"], obj)


def _on_trial_will_end(projector: Projector, event: JSON) -> None:
    obj = event["data"]["object"]
    row = projector.subscription(obj["id"], obj)
    if row is None or row.status != "trialing":
        return
    projector.notify_about(row, signals.trial_will_end, trial_end=row.trial_end)


def _on_invoice(projector: Projector, event: JSON) -> None:
    obj = event["data"]["object"]
    row = projector.invoice(obj["id"], obj)
    subscription_id = row.stripe_subscription_id if row else invoice_subscription(obj)
    if subscription_id:
        paid = event["type"] == "invoice.paid" and obj.get("status") == "paid"
        projector.subscription(
            subscription_id,
            None,
            customer_id=_id_of(obj["customer"]),
            refetch=True,
            paid_invoice=obj if paid else None,
        )
    if event["type"] == "invoice.payment_failed" and row is not None and row.status != "paid":
        projector.notify_about(
            row,
            signals.payment_failed,
            customer_id=row.stripe_customer_id,
            invoice_id=row.stripe_invoice_id,
            hosted_invoice_url=row.hosted_invoice_url,
        )


def _on_invoice_change(projector: Projector, event: JSON) -> None:
    obj = event["data"]["object"]
    projector.invoice(obj["id"], obj)


def _on_customer(projector: Projector, event: JSON) -> None:
    obj = event["data"]["object"]
    projector.customer(obj["id"], obj, deleted=event["type"] == "customer.deleted")
    previous = (event["data"].get("previous_attributes") or {}).get("invoice_settings") or {}
    if "default_payment_method" in previous:

        def follow(app: Flask) -> None:
            follow_default_payment_method(obj["id"])

        projector.notices.append(follow)


def _on_catalog(projector: Projector, event: JSON) -> None:
    projector.invalidate_prices()


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _on_checkout_completed,
    "checkout.session.expired": _on_checkout_expired,
    "customer.subscription.created": _on_subscription,
    "customer.subscription.updated": _on_subscription,
    "customer.subscription.deleted": _on_subscription,
    "customer.subscription.paused": _on_subscription,
    "customer.subscription.resumed": _on_subscription,
    "customer.subscription.trial_will_end": _on_trial_will_end,
    "invoice.paid": _on_invoice,
    "invoice.payment_failed": _on_invoice,
    "invoice.payment_action_required": _on_invoice,
    **{
        f"invoice.{change}": _on_invoice_change
        for change in (
            "created",
            "finalized",
            "updated",
            "payment_succeeded",
            "marked_uncollectible",
            "voided",
        )
    },
    "customer.created": _on_customer,
    "customer.updated": _on_customer,
    "customer.deleted": _on_customer,
    **{
        f"test_helpers.test_clock.{change}": _on_clock
        for change in ("created", "advancing", "ready", "internal_failure", "deleted")
    },
    **{
        f"{kind}.{change}": _on_catalog
        for kind in ("price", "product")
        for change in ("created", "updated", "deleted")
    },
}


def handled_types() -> frozenset[str]:
    """The event types this app acts on: those the projection applies (:data:`HANDLERS`)
    and those with an ``@billing.on_event`` handler. The webhook route stores an event of
    any other type as ``ignored``, without a job (:func:`handles`)."""
    return frozenset(HANDLERS).union(get_state().hooks.event_handlers)


def handles(event_type: str) -> bool:
    """Whether ``event_type`` is one of :func:`handled_types`, without building the set
    (the webhook route asks once per delivery)."""
    return event_type in HANDLERS or event_type in get_state().hooks.event_handlers


def refusal(event: JSON) -> str | None:
    """Why an event must not be applied at all, or ``None``: an event of the other
    livemode than the app's key is not the app's to project."""
    live = get_state().config.is_live
    if bool(event.get("livemode")) != live:
        mode, other = ("live", "test") if live else ("test", "live")
        return f"a {other}-mode event; this app uses a {mode}-mode key"
    return None


def project_event(event: JSON, received_at: datetime | None = None) -> Projector | None:
    """Apply one event in the current transaction; ``None`` when no handler knows its type.

    ``received_at`` is when the app stored the event (UTC): a row re-fetched after then
    needs no fetch for this event (see :mod:`flask_lattice.webhooks.fetch_policy`).
    """
    handler = HANDLERS.get(event["type"])
    if handler is None:
        return None
    projector = Projector.for_app(EventMark.of(event, received_at))
    handler(projector, event)
    return projector


def send_notices(projector: Projector) -> None:
    """Send the signals collected while projecting (call after the commit)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    for notice in projector.notices:
        notice(app)


#: Statuses in which Stripe still charges a subscription's card (an ``unpaid`` one is retried
#: when the customer pays its open invoice).
_CHARGED_STATUSES = ("active", "trialing", "past_due", "unpaid")


def follow_default_payment_method(customer_id: str) -> list[str]:
    """Make the customer's default card the one its billed subscriptions charge.

    Stripe's portal saves a new card only as the customer's
    ``invoice_settings.default_payment_method``, and a subscription's own
    ``default_payment_method`` (Checkout sets one) takes precedence over it: without this the
    card the customer chose would never be charged. Reads the customer and its subscriptions
    from Stripe (the event may be stale) and points each billed subscription that names another
    card at the default. Returns the ids of the subscriptions updated; a Stripe error is logged,
    not raised (the next ``customer.updated`` retries).
    """
    gateway = get_state().stripe
    try:
        customer = gateway.retrieve_customer(customer_id).to_dict()
        if customer.get("deleted"):
            return []
        default = customer["invoice_settings"]["default_payment_method"]
        if not default:
            return []
        updated = []
        for sub in gateway.list_subscriptions(customer_id):
            current = sub["default_payment_method"]
            if sub["status"] in _CHARGED_STATUSES and current and current != default:
                gateway.update_subscription(
                    sub["id"], {"default_payment_method": default, "proration_behavior": "none"}
                )
                updated.append(str(sub["id"]))
        return updated
    except StripeAPIError:
        log.warning("could not point %s's subscriptions at its default card", customer_id)
        return []
