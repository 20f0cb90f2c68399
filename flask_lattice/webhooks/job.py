"""RQ job functions. They take ids, and run inside the app context the worker pushes.

:func:`process_event` turns one stored webhook event into local state:

1. count the attempt (its own short commit, so it survives a crash);
2. in one transaction: lock the event row (``FOR UPDATE`` on PostgreSQL; a first write
   takes the database write lock on SQLite), stop if it is already done, project it
   (:mod:`flask_lattice.webhooks.projection`), run the ``@billing.on_event`` handlers, and mark it
   ``processed`` (``ignored`` for a type that neither the projection nor a handler knows);
3. after the commit, send the signals and ``event_processed``.

A failure rolls everything back, marks the event ``failed`` with the error and re-raises,
so RQ retries it with backoff; a later success marks it ``processed``. An event whose
object is not what its type promises (:mod:`flask_lattice.webhooks.shapes`) fails the
same way, with a one-line reason such as ``data.object has no customer`` as its
``last_error``, and stays ``failed`` once its retries are spent.

A Stripe rate limit (429, ``Stripe-Should-Retry: true``, or the read budget exhausted;
:class:`~flask_lattice.errors.StripeRateLimited`) is not a failure: the attempt is not
counted, the event stays ``received``, and the job returns an RQ ``Retry`` that
reschedules it after :data:`RATE_LIMIT_BACKOFF` seconds (growing, then steady).
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from flask import Flask, current_app
from rq import Retry
from sqlalchemy.orm import scoped_session

from .. import signals
from ..errors import MalformedEvent, StripeRateLimited
from ..models import EventStatus, WebhookEvent, utcnow
from ..state import get_state
from ..stripe_gateway import API_VERSION
from . import envelope, projection, shapes

log = logging.getLogger(__name__)

DONE = (EventStatus.PROCESSED, EventStatus.IGNORED)
#: Decisions that leave a row's state as it was: the row already holds newer state.
STALE = frozenset({"skip", "coalesce"})
_EVENTS = cast(sa.Table, WebhookEvent.__table__)
#: Seconds before a rate-limited job runs again (the last one repeats).
RATE_LIMIT_BACKOFF = (1, 2, 4, 8, 15, 30)
#: How often one job may be rescheduled for rate limits before it fails for good.
RATE_LIMIT_RESCHEDULES = 200

# Every job runs these statements: built once here, so SQLAlchemy neither builds them nor
# computes their cache keys again per job.
_EVENT_ID: sa.BindParameter[str] = sa.bindparam("event_id")
_LOCKED_COLUMNS = (_EVENTS.c.status, _EVENTS.c.type, _EVENTS.c.payload, _EVENTS.c.received_at)
_COUNT_ATTEMPT = (
    sa.update(_EVENTS)
    .where(_EVENTS.c.id == _EVENT_ID)
    .values(attempts=_EVENTS.c.attempts + sa.case((_EVENTS.c.status.in_(DONE), 0), else_=1))
    .returning(_EVENTS.c.status)
)
# A first write takes SQLite's database write lock for the whole transaction.
_LOCK_EVENT_SQLITE = (
    sa.update(_EVENTS)
    .where(_EVENTS.c.id == _EVENT_ID)
    .values(status=_EVENTS.c.status)
    .returning(*_LOCKED_COLUMNS)
)
_LOCK_EVENT = sa.select(*_LOCKED_COLUMNS).where(_EVENTS.c.id == _EVENT_ID).with_for_update()
# A spare work horse reads with it while it waits (open_connection).
_READ_STATUS = sa.select(_EVENTS.c.status).where(_EVENTS.c.id == _EVENT_ID)
_FINISH_EVENT = (
    sa.update(_EVENTS)
    .where(_EVENTS.c.id == _EVENT_ID)
    .values(
        status=sa.bindparam("new_status"),
        processed_at=sa.bindparam("processed"),
        last_error=sa.bindparam("error"),
        outcome=sa.bindparam("new_outcome"),
    )
)


def process_event(event_id: str) -> str | Retry:
    """Process one stored event; returns its final status (``processed``/``ignored``), or an
    RQ ``Retry`` when Stripe's rate limit (or the read budget) says to come back later."""
    try:
        return _process(event_id)[0]
    except StripeRateLimited:
        log.info("webhook event %s hit Stripe's rate limit; rescheduled", event_id)
        return Retry(max=RATE_LIMIT_RESCHEDULES, interval=list(RATE_LIMIT_BACKOFF))


@dataclass(frozen=True)
class ReplayOutcome:
    """What replaying one stored event did."""

    event_id: str
    #: ``applied`` (state written), ``skipped`` (every object it names holds newer
    #: state), ``ignored`` (no projection or handler for its type), ``failed`` or
    #: ``missing`` (no such stored event).
    outcome: str
    event_type: str = ""
    attempts: int = 0
    error: str | None = None


def replay_event(event_id: str) -> ReplayOutcome:
    """Process a stored event again, now, in this process, whatever its status.

    Its ``attempts`` keep counting (a replay is one more attempt), and ``last_error``
    stays until an attempt succeeds. Never raises for a failing event: the outcome
    says ``failed`` with the error, and the event is marked ``failed`` as by a worker.
    """
    session = get_state().db.session
    found = session.execute(
        sa.update(_EVENTS)
        .where(_EVENTS.c.id == event_id)
        .values(status=EventStatus.RECEIVED, processed_at=None, outcome=None)
    )
    session.commit()
    if not found.rowcount:  # type: ignore[attr-defined]
        return ReplayOutcome(event_id, "missing")
    try:
        status, _ = _process(event_id)
        error = None
    except Exception as failure:
        status, error = EventStatus.FAILED, str(failure) or type(failure).__name__
    row = session.execute(
        sa.select(_EVENTS.c.type, _EVENTS.c.attempts, _EVENTS.c.outcome).where(
            _EVENTS.c.id == event_id
        )
    ).one()
    session.commit()
    outcome = "failed" if status == EventStatus.FAILED else (row.outcome or "applied")
    return ReplayOutcome(event_id, outcome, row.type, row.attempts, error)


def _outcome(status: str, projector: projection.Projector | None, handled: bool) -> str:
    """``ignored``, ``skipped`` (every object the event names held newer state, and no
    ``@billing.on_event`` handler ran) or ``applied``, for a processed event
    (``lattice_webhook_events.outcome``)."""
    if status == EventStatus.IGNORED:
        return "ignored"
    stale = projector is not None and projector.decisions and set(projector.decisions) <= STALE
    return "skipped" if stale and not handled else "applied"


def _process(event_id: str) -> tuple[str, projection.Projector | None]:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    session = get_state().db.session
    status = _count_attempt(session, event_id)
    if status is None:
        log.warning("webhook event %s is not stored; nothing to do", event_id)
        return "missing", None
    if status in DONE:
        return status, None
    try:
        status, projector, event_type = _apply(session, event_id)
    except StripeRateLimited:
        session.rollback()
        _uncount_attempt(session, event_id)
        raise
    except Exception as error:
        session.rollback()
        event_type = _mark_failed(session, event_id, error)
        signals.event_processed.send(
            app, event_id=event_id, event_type=event_type, status=EventStatus.FAILED
        )
        raise
    if projector is not None:
        projection.send_notices(projector)
    signals.event_processed.send(app, event_id=event_id, event_type=event_type, status=status)
    return status, projector


def _count_attempt(session: scoped_session[Any], event_id: str) -> str | None:
    """Count one more attempt at an event that is not done, in a commit of its own (one
    statement); returns the event's status, or ``None`` when it is not stored."""
    status: str | None = session.scalar(_COUNT_ATTEMPT, {"event_id": event_id})
    session.commit()
    return status


def _uncount_attempt(session: scoped_session[Any], event_id: str) -> None:
    session.execute(
        sa.update(_EVENTS)
        .where(_EVENTS.c.id == event_id, _EVENTS.c.attempts > 0)
        .values(attempts=_EVENTS.c.attempts - 1)
    )
    session.commit()


def _lock_event(session: scoped_session[Any], event_id: str) -> sa.Row[Any, Any, Any, Any]:
    """Lock the event row for this transaction (one statement); returns its status, type,
    payload and ``received_at``."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    statement = _LOCK_EVENT_SQLITE if sqlite else _LOCK_EVENT
    return session.execute(statement, {"event_id": event_id}).one()


def _apply(
    session: scoped_session[Any], event_id: str
) -> tuple[str, projection.Projector | None, str]:
    locked = _lock_event(session, event_id)
    status, event_type, payload = locked.status, locked.type, locked.payload
    if status in DONE:  # another worker finished it while we waited for the lock
        session.commit()
        return status, None, event_type
    try:
        event = envelope.load_json(payload)
    except envelope.Refused as refusal:  # stored before the route checked bodies
        raise MalformedEvent(f"the stored payload is not an event: {refusal}") from None
    reason = projection.refusal(event)
    if reason is not None:
        log.warning("webhook event %s ignored: %s", event_id, reason)
        session.execute(
            sa.update(_EVENTS)
            .where(_EVENTS.c.id == event_id)
            .values(
                status=EventStatus.IGNORED,
                processed_at=utcnow(),
                last_error=reason,
                outcome="ignored",
            )
        )
        session.commit()
        return EventStatus.IGNORED, None, event_type
    shapes.check(event)
    projector = projection.project_event(event, locked.received_at)
    handlers = get_state().hooks.event_handlers.get(event_type, ())
    for handler in handlers:
        handler(event)
    status = EventStatus.PROCESSED if projector is not None or handlers else EventStatus.IGNORED
    outcome = _outcome(status, projector, bool(handlers))
    session.execute(
        _FINISH_EVENT,
        {
            "event_id": event_id,
            "new_status": status,
            "processed": utcnow(),
            "error": None,
            "new_outcome": outcome,
        },
    )
    session.commit()
    return status, projector, event_type


def _mark_failed(session: scoped_session[Any], event_id: str, error: BaseException) -> str:
    if isinstance(error, MalformedEvent):
        summary = str(error)
    else:
        summary = "".join(traceback.format_exception_only(type(error), error)).strip()
    log.warning("webhook event %s failed: %s", event_id, summary)
    session.execute(
        sa.update(_EVENTS)
        .where(_EVENTS.c.id == event_id, _EVENTS.c.status.not_in(DONE))
        .values(status=EventStatus.FAILED, last_error=summary[:2000])
    )
    event_type: str = (
        session.scalar(sa.select(_EVENTS.c.type).where(_EVENTS.c.id == event_id)) or ""
    )
    session.commit()
    return event_type


#: The event id :func:`warm_up` runs the job's statements for (no Stripe event has it).
_WARM_UP_EVENT = "evt_lattice_warm_up"


def _warm_up_objects(period: int, invoice_status: str) -> tuple[dict[str, Any], ...]:
    """A synthetic customer, subscription (in its ``period``-th second-long period) and
    invoice, with ids no Stripe object can have."""
    return (
        {"id": "cus_lattice_warm_up", "object": "customer", "email": None, "name": None,
         "metadata": {}},
        {"id": "sub_lattice_warm_up", "object": "subscription", "customer": "cus_lattice_warm_up",
         "status": "active", "cancel_at_period_end": False, "cancel_at": None,
         "livemode": False, "metadata": {}, "items": {"object": "list", "has_more": False,
         "data": [{"id": "si_lattice_warm_up", "quantity": 1, "current_period_start": period,
                   "current_period_end": period + 1, "price": {"id": "price_lattice_warm_up"}}]}},
        {"id": "in_lattice_warm_up", "object": "invoice", "customer": "cus_lattice_warm_up",
         "status": invoice_status, "currency": "usd", "amount_due": 0, "amount_paid": 0,
         "amount_remaining": 0, "total": 0, "parent": None},
    )  # fmt: skip


#: What :func:`warm_up` projects, as events one second apart: new rows, a renewal (the
#: period moves on, the invoice is paid), then the same snapshots again (only the
#: watermarks move). Each is a set of changed columns whose UPDATE the ORM compiles.
_WARM_UP_STEPS = ((0, "open"), (1, "paid"), (1, "paid"))


def warm_up() -> None:
    """Run a job's SQL once, in a transaction that is rolled back (needs an app context).

    The forking worker calls this before it forks: SQLAlchemy compiles each statement once
    per process and caches it, so work horses forked afterwards inherit the compiled
    statements instead of compiling them again for every job. That covers the job's own
    statements and the ORM's UPDATEs of the commonest changes: a new row, a renewal, and
    an event that moves only the watermark. Makes no Stripe call and sends no signal; a
    failure is logged and ignored.
    """
    session = get_state().db.session
    try:
        _count_attempt(session, _WARM_UP_EVENT)
        with contextlib.suppress(sa.exc.NoResultFound):
            _lock_event(session, _WARM_UP_EVENT)
        for second, (period, invoice_status) in enumerate(_WARM_UP_STEPS, start=1):
            mark = projection.EventMark(
                id=f"{_WARM_UP_EVENT}_{second}",
                created=datetime.fromtimestamp(second, UTC),
                api_version=API_VERSION,
            )
            projector = projection.Projector.for_app(mark)
            customer, subscription, invoice = _warm_up_objects(period, invoice_status)
            projector.customer(customer["id"], customer)
            projector.subscription(subscription["id"], subscription)
            projector.invoice(invoice["id"], invoice)
            session.flush()
        session.execute(
            _FINISH_EVENT,
            {
                "event_id": _WARM_UP_EVENT,
                "new_status": EventStatus.PROCESSED,
                "processed": utcnow(),
                "error": None,
                "new_outcome": "applied",
            },
        )
    except Exception:
        log.warning("warming up the worker failed; jobs compile their SQL themselves",
                    exc_info=True)  # fmt: skip
    finally:
        session.rollback()


def open_connection() -> None:
    """Open the database connection the next job will use, and read the event table once
    (a new SQLite connection reads the schema then): a work horse forked ahead of its job
    calls this while it waits (needs an app context). Changes nothing; the connection goes
    back to the engine's pool when the app context ends, where the job's session finds it.
    """
    session = get_state().db.session
    session.execute(_READ_STATUS, {"event_id": _WARM_UP_EVENT})
    session.rollback()
