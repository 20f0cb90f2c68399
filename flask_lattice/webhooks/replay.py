"""Replay: process stored webhook events again (``flask lattice replay`` and the console).

Both choose events with :func:`select_for_replay` and process them with :func:`replay`,
which runs each event's job now, in the calling process
(:func:`flask_lattice.webhooks.job.replay_event`): a replay is one more attempt, and its
outcome (applied, skipped as stale, ignored or failed) is reported per event.
"""

from __future__ import annotations

from typing import cast

import sqlalchemy as sa

from ..models import EventStatus, WebhookEvent
from ..state import get_state
from .job import ReplayOutcome, replay_event

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


def replay(event_ids: list[str]) -> list[ReplayOutcome]:
    """Process each of ``event_ids`` again now, in order; one outcome per event."""
    return [replay_event(event_id) for event_id in event_ids]
