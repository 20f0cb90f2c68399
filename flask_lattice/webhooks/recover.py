"""Recover events Stripe could not deliver: list them from the API and store what the
inbox is missing, through the webhook route's own insert (so running it twice adds
nothing)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

from ..models import utcnow
from ..state import get_state
from .route import store_event

#: How far back Stripe keeps events, and so how far back a recovery looks.
LOOKBACK = timedelta(days=30)


@dataclass
class RecoveryReport:
    """What a recovery saw: ``listed`` undelivered events, of which ``stored`` were new."""

    listed: int = 0
    stored: list[str] = field(default_factory=list)


def recover_undelivered() -> RecoveryReport:
    """Store every undelivered event of the last 30 days that the inbox lacks.

    Events of the other mode (``livemode``) are stored like a delivery would be; the job
    ignores them. Raises :class:`~flask_lattice.errors.StripeAPIError` when Stripe fails.
    """
    since = int((utcnow() - LOOKBACK).timestamp())
    report = RecoveryReport()
    for event in get_state().stripe.list_undelivered_events(since):
        report.listed += 1
        event_id, new = store_event(json.dumps(event).encode())
        if new:
            report.stored.append(event_id)
    return report
