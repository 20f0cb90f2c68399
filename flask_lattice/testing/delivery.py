"""Delivering sandbox events to an app in-process, and running its queued jobs now."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from flask import Flask

from ..state import get_state
from .helpers import sign_payload


def run_jobs(app: Flask) -> None:
    """Run every job queued for ``app`` now, in this process (RQ's burst mode).

    Events handed to the web process's background enqueuer are enqueued first. Jobs
    that fail are retried as configured (``LATTICE_JOB_RETRY_INTERVALS``) once due.
    """
    from ..webhooks import queue
    from ..webhooks.worker import build_worker

    queue.flush_enqueued(app)
    build_worker(app, simple=True).work(burst=True)


def deliver_events(app: Flask, events: Iterable[dict[str, Any]], secret: str) -> None:
    """POST each event to ``app``'s webhook route, signed with ``secret`` as Stripe signs.

    Raises ``AssertionError`` naming the event when the route does not answer 200.
    """
    client = app.test_client()
    url = f"{get_state(app).config.url_prefix}/webhook"
    for event in events:
        body = json.dumps(event).encode()
        response = client.post(
            url,
            data=body,
            headers={"Stripe-Signature": sign_payload(body, secret)},
            content_type="application/json",
        )
        if response.status_code != 200:
            raise AssertionError(
                f"the webhook route answered {response.status_code} to {event['id']} "
                f"({event['type']}): {response.get_data(as_text=True)[:500]}"
            )
