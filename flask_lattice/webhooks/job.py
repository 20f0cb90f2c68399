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
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.orm import scoped_session

from .. import signals
from ..errors import MalformedEvent
from ..models import EventStatus, WebhookEvent, utcnow
from ..state import get_state
from . import envelope, projection, shapes

log = logging.getLogger(__name__)

DONE = (EventStatus.PROCESSED, EventStatus.IGNORED)
_EVENTS = cast(sa.Table, WebhookEvent.__table__)


def process_event(event_id: str) -> str:
    """Process one stored event; returns its final status (``processed``/``ignored``)."""
    return _process(event_id)[0]


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
        .values(status=EventStatus.RECEIVED, processed_at=None)
    )
    session.commit()
    if not found.rowcount:  # type: ignore[attr-defined]
        return ReplayOutcome(event_id, "missing")
    try:
        status, projector = _process(event_id)
        error = None
    except Exception as failure:
        status, projector, error = EventStatus.FAILED, None, str(failure) or type(failure).__name__
    row = session.execute(
        sa.select(_EVENTS.c.type, _EVENTS.c.attempts).where(_EVENTS.c.id == event_id)
    ).one()
    session.commit()
    outcome = "failed" if status == EventStatus.FAILED else _outcome(status, projector)
    return ReplayOutcome(event_id, outcome, row.type, row.attempts, error)


def _outcome(status: str, projector: projection.Projector | None) -> str:
    """``ignored``, ``skipped`` (every object the event names held newer state) or
    ``applied``, for a processed event (``lattice_webhook_events.outcome``)."""
    if status == EventStatus.IGNORED:
        return "ignored"
    if projector is not None and projector.decisions and set(projector.decisions) == {"skip"}:
        return "skipped"
    return "applied"


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
    session.execute(
        sa.update(_EVENTS)
        .where(_EVENTS.c.id == event_id, _EVENTS.c.status.not_in(DONE))
        .values(attempts=_EVENTS.c.attempts + 1)
    )
    status: str | None = session.scalar(sa.select(_EVENTS.c.status).where(_EVENTS.c.id == event_id))
    session.commit()
    return status


def _lock_event(session: scoped_session[Any], event_id: str) -> tuple[str, str, str]:
    """Lock the event row for this transaction; returns its status, type and payload."""
    if session.get_bind().dialect.name == "sqlite":
        # A first write takes SQLite's database write lock for the whole transaction.
        session.execute(
            sa.update(_EVENTS).where(_EVENTS.c.id == event_id).values(status=_EVENTS.c.status)
        )
    row = session.execute(
        sa.select(_EVENTS.c.status, _EVENTS.c.type, _EVENTS.c.payload)
        .where(_EVENTS.c.id == event_id)
        .with_for_update()
    ).one()
    return row.status, row.type, row.payload


def _apply(
    session: scoped_session[Any], event_id: str
) -> tuple[str, projection.Projector | None, str]:
    status, event_type, payload = _lock_event(session, event_id)
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
    projector = projection.project_event(event)
    handlers = get_state().hooks.event_handlers.get(event_type, ())
    for handler in handlers:
        handler(event)
    status = EventStatus.PROCESSED if projector is not None or handlers else EventStatus.IGNORED
    session.execute(
        sa.update(_EVENTS)
        .where(_EVENTS.c.id == event_id)
        .values(
            status=status,
            processed_at=utcnow(),
            last_error=None,
            outcome=_outcome(status, projector),
        )
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
