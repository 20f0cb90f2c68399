"""The ``lattice_*`` tables: local, webhook-projected billing state.

The mapped classes are ordinary typed SQLAlchemy models. :func:`attach_tables` copies
their tables onto the host's ``db.metadata`` at ``init_app``, so ``db.create_all()``
creates them and Flask-Migrate/Alembic autogenerate sees them, and queries go through
the host's ``db.session``.

Amounts are integers in minor units; timestamps are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .errors import LatticeError

_NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def insert_ignoring_conflicts(table: sa.Table, dialect: str) -> sa.Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` into ``table``: a row that would break a unique
    key is skipped, not an error (PostgreSQL and SQLite)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()
    raise LatticeError(f"Flask-Lattice supports PostgreSQL and SQLite, not {dialect}")


def from_timestamp(value: int | None) -> datetime | None:
    """A Stripe unix timestamp as an aware UTC datetime (``None`` stays ``None``)."""
    return None if value is None else datetime.fromtimestamp(value, UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always loads them aware, on every backend."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("lattice timestamps must be timezone-aware (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the lattice tables (its metadata is copied onto the host's)."""

    metadata = sa.MetaData(naming_convention=_NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: sa.JSON(), list[str]: sa.JSON()}


class TimestampedMixin:
    """``created_at`` and ``updated_at`` columns."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WatermarkMixin:
    """The newest event applied to a row: its ``created`` time (UTC) and its ``evt_…`` id.

    An event older than the watermark is stale and never overwrites the row; see
    :mod:`flask_lattice.webhooks.projection`.
    """

    watermark_created: Mapped[datetime | None]
    watermark_event_id: Mapped[str | None] = mapped_column(sa.String(255))
    #: When the row was last re-fetched from Stripe (this machine's UTC clock, taken just
    #: before the request): an event received before then needs no fetch of its own.
    fetched_at: Mapped[datetime | None]


class EventStatus(StrEnum):
    """Where a stored webhook event is in the pipeline (``lattice_webhook_events.status``)."""

    #: Stored by the webhook route; its job is queued or waiting for the drain.
    RECEIVED = "received"
    #: Projected, and the ``@billing.on_event`` handlers ran.
    PROCESSED = "processed"
    #: Nothing to project and no handler, or not the app's to apply (another livemode;
    #: ``last_error`` then says why): kept for the record.
    IGNORED = "ignored"
    #: Every attempt failed; ``last_error`` says why. ``flask lattice replay`` retries it.
    FAILED = "failed"


class Customer(TimestampedMixin, WatermarkMixin, Base):
    """The one Stripe customer of a billable (user, account or team)."""

    __tablename__ = "lattice_customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    billable_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    stripe_customer_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(320))
    name: Mapped[str | None] = mapped_column(sa.String(255))
    livemode: Mapped[bool] = mapped_column(default=False)
    deleted: Mapped[bool] = mapped_column(default=False)


class Subscription(TimestampedMixin, WatermarkMixin, Base):
    """A Stripe subscription as last confirmed by a webhook or a sync."""

    __tablename__ = "lattice_subscriptions"
    __table_args__ = (
        sa.Index("ix_lattice_subscriptions_status_plan", "status", "plan_key"),
        sa.Index("ix_lattice_subscriptions_status_trial_end", "status", "trial_end"),
        sa.Index("ix_lattice_subscriptions_status_period_end", "status", "current_period_end"),
        sa.Index("ix_lattice_subscriptions_updated", "updated_at"),
        sa.Index(
            "ix_lattice_subscriptions_cancel_period_end",
            "cancel_at_period_end",
            "current_period_end",
        ),
        sa.Index("ix_lattice_subscriptions_cancel_at", "cancel_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_subscription_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    stripe_customer_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    billable_key: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    status: Mapped[str] = mapped_column(sa.String(32))
    plan_key: Mapped[str | None] = mapped_column(sa.String(64))
    price_ids: Mapped[list[str]] = mapped_column(default=list)
    quantity: Mapped[int] = mapped_column(default=1)
    current_period_start: Mapped[datetime | None]
    current_period_end: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    cancel_at: Mapped[datetime | None]
    canceled_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    trial_start: Mapped[datetime | None]
    trial_end: Mapped[datetime | None]
    pause_collection_behavior: Mapped[str | None] = mapped_column(sa.String(32))
    pause_resumes_at: Mapped[datetime | None]
    #: The Stripe test clock (``clock_…``) the subscription lives on, if any: its billing
    #: time is that clock's ``frozen_time`` (see :class:`TestClock`).
    test_clock: Mapped[str | None] = mapped_column(sa.String(255))
    livemode: Mapped[bool] = mapped_column(default=False)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)

    items: Mapped[list[SubscriptionItem]] = relationship(
        back_populates="subscription", cascade="all, delete-orphan", lazy="selectin"
    )


class SubscriptionItem(Base):
    """One price line of a subscription, with its own billing period."""

    __tablename__ = "lattice_subscription_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_item_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    subscription_id: Mapped[int] = mapped_column(
        sa.ForeignKey("lattice_subscriptions.id", ondelete="CASCADE"), index=True
    )
    price_id: Mapped[str] = mapped_column(sa.String(255))
    lookup_key: Mapped[str | None] = mapped_column(sa.String(255))
    product_id: Mapped[str | None] = mapped_column(sa.String(255))
    quantity: Mapped[int] = mapped_column(default=1)
    current_period_start: Mapped[datetime | None]
    current_period_end: Mapped[datetime | None]

    subscription: Mapped[Subscription] = relationship(back_populates="items")


class Invoice(TimestampedMixin, WatermarkMixin, Base):
    """A short invoice history per customer, for the billing page."""

    __tablename__ = "lattice_invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_invoice_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    stripe_customer_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    billable_key: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    number: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str | None] = mapped_column(sa.String(32))
    billing_reason: Mapped[str | None] = mapped_column(sa.String(64))
    currency: Mapped[str] = mapped_column(sa.String(3))
    amount_due: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    amount_paid: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    amount_remaining: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    total: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    hosted_invoice_url: Mapped[str | None] = mapped_column(sa.Text)
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    stripe_created: Mapped[datetime | None]


class CheckoutSessionStatus(StrEnum):
    """A recorded Checkout Session's ``status``, as Stripe reports it."""

    OPEN = "open"
    COMPLETE = "complete"
    EXPIRED = "expired"


class CheckoutSession(TimestampedMixin, Base):
    """A Checkout Session the app created, and for whom: the only sessions whose
    completion may link a customer to a billable."""

    __tablename__ = "lattice_checkout_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_session_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    billable_key: Mapped[str] = mapped_column(sa.String(255), index=True)
    stripe_customer_id: Mapped[str] = mapped_column(sa.String(255))
    plan_key: Mapped[str] = mapped_column(sa.String(64))
    interval: Mapped[str] = mapped_column(sa.String(16))
    seats: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(sa.String(16), default=CheckoutSessionStatus.OPEN)


#: The id under which the local sandbox publishes its own clock as a test clock. Unlike a
#: Stripe test clock it runs; subscriptions the sandbox bills without a test clock of
#: their own are projected onto it (see :mod:`flask_lattice.webhooks.projection`).
SANDBOX_CLOCK_ID = "clock_sandbox"


def clock_of(test_clock: str | None, api_base: str | None) -> str | None:
    """The clock a Stripe object lives on: its ``test_clock`` (``clock_…``); against the
    sandbox (a configured API base) an object without one runs on the sandbox's clock."""
    if test_clock:
        return test_clock
    return SANDBOX_CLOCK_ID if api_base else None


class TestClock(Base):
    """A clock that billing time follows: a Stripe test clock (``clock_…``), or the
    sandbox's own clock.

    A test clock is frozen: its time is ``frozen_time`` until it advances. A clock that
    ``runs`` (the sandbox's own) moves on with the wall clock from ``frozen_time``, as
    observed at ``observed_at``.
    """

    __test__ = False  # not a pytest test class
    __tablename__ = "lattice_test_clocks"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_clock_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    frozen_time: Mapped[datetime]
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)
    runs: Mapped[bool] = mapped_column(default=False)
    deleted: Mapped[bool] = mapped_column(default=False)


class Price(Base):
    """A Stripe price cached for the pricing page (amounts come from Stripe, not config)."""

    __tablename__ = "lattice_prices"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_price_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    lookup_key: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    product_id: Mapped[str | None] = mapped_column(sa.String(255))
    product_name: Mapped[str | None] = mapped_column(sa.String(255))
    currency: Mapped[str] = mapped_column(sa.String(3))
    unit_amount: Mapped[int | None] = mapped_column(sa.BigInteger)
    interval: Mapped[str | None] = mapped_column(sa.String(16))
    interval_count: Mapped[int] = mapped_column(default=1)
    active: Mapped[bool] = mapped_column(default=True)
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookEvent(Base):
    """The durable inbox: every verified Stripe event, stored once by its id."""

    __tablename__ = "lattice_webhook_events"
    __table_args__ = (
        sa.Index("ix_lattice_webhook_events_status_received", "status", "received_at"),
        sa.Index("ix_lattice_webhook_events_received", "received_at"),
        sa.Index("ix_lattice_webhook_events_type_received", "type", "received_at"),
        sa.Index("ix_lattice_webhook_events_object_created", "object_id", "created"),
    )

    id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(128), index=True)
    created: Mapped[datetime]
    #: The id of the Stripe object the event is about (``data.object.id``), if any.
    object_id: Mapped[str | None] = mapped_column(sa.String(255))
    livemode: Mapped[bool] = mapped_column(default=False)
    api_version: Mapped[str | None] = mapped_column(sa.String(64))
    payload: Mapped[str] = mapped_column(sa.Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(sa.String(16), default=EventStatus.RECEIVED)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    processed_at: Mapped[datetime | None]
    #: What processing did: ``applied`` (state written), ``skipped`` (every object it names
    #: already held newer state) or ``ignored``; ``None`` until processed.
    outcome: Mapped[str | None] = mapped_column(sa.String(16))


class AdminAudit(Base):
    """One write made from the operations console: who, what, on which object, when."""

    __tablename__ = "lattice_admin_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(sa.String(255))
    action: Mapped[str] = mapped_column(sa.String(64))
    target: Mapped[str | None] = mapped_column(sa.String(255))
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class MrrPosition(Base):
    """A subscription's monthly recurring revenue, as last computed from its projection.

    ``mrr`` is in minor units of ``currency`` per month (0 once the subscription is not
    ``active`` or ``past_due``); ``baseline_mrr`` is its value at the last daily snapshot.
    """

    __tablename__ = "lattice_mrr_positions"
    __table_args__ = (sa.Index("ix_lattice_mrr_positions_currency_mrr", "currency", "mrr"),)

    stripe_subscription_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    currency: Mapped[str] = mapped_column(sa.String(3))
    mrr: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    baseline_mrr: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    source_updated_at: Mapped[datetime]


class MrrSnapshot(Base):
    """MRR at the start of one UTC day and how it moved since the previous snapshot, per
    currency (all amounts in minor units per month)."""

    __tablename__ = "lattice_mrr_snapshots"
    __table_args__ = (sa.UniqueConstraint("day", "currency"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date)
    currency: Mapped[str] = mapped_column(sa.String(3))
    mrr: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    new: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    expansion: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    contraction: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    churned: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    subscriptions: Mapped[int] = mapped_column(default=0)
    taken_at: Mapped[datetime] = mapped_column(default=utcnow)


def attach_tables(metadata: sa.MetaData) -> None:
    """Copy the lattice tables onto ``metadata`` (the host's ``db.metadata``), once."""
    for table in Base.metadata.sorted_tables:
        if table.name not in metadata.tables:
            table.to_metadata(metadata)
