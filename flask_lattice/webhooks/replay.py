"""Replay: process stored webhook events again (``flask lattice replay`` and the console).

An event is reset to ``received`` (attempts, error and processing time cleared) in one
commit, then its job is replaced with a fresh one. If Redis is down the reset stays, and
the next drain enqueues the events.
"""

from __future__ import annotations

from typing import cast

import sqlalchemy as sa

from ..models import EventStatus, WebhookEvent
from ..state import get_state
from . import queue

_EVENTS = cast(sa.Table, WebhookEvent.__table__)


def select_for_replay(
    *, event_id: str | None = None, event_type: str | None = None, limit: int | None = None
) -> list[str]:
    """The ids that a replay would reset, oldest first: ``event_id`` if it is stored, else
    every ``failed`` event (only of ``event_type`` when given; at most ``limit``)."""
    query = sa.select(_EVENTS.c.id).order_by(_EVENTS.c.created, _EVENTS.c.id)
    if event_id is not None:
        query = query.where(_EVENTS.c.id == event_id)
    else:
        query = query.where(_EVENTS.c.status == EventStatus.FAILED)
        if event_type is not None:
            query = query.where(_EVENTS.c.type == event_type)
    if limit is not None:
        query = query.limit(limit)
    return list(get_state().db.session.scalars(query))


def replay(event_ids: list[str]) -> list[str]:
    """Reset ``event_ids`` to ``received``, commit, and enqueue a fresh job for each.

    Returns the ids. Raises ``redis.exceptions.RedisError`` when Redis cannot be reached
    (after the commit: the next drain enqueues them).
    """
    session = get_state().db.session
    if event_ids:
        session.execute(
            sa.update(_EVENTS)
            .where(_EVENTS.c.id.in_(event_ids))
            .values(status=EventStatus.RECEIVED, attempts=0, last_error=None, processed_at=None)
        )
    session.commit()
    for event_id in event_ids:
        queue.requeue_event(event_id)
    return event_ids
