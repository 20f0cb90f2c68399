"""``POST /billing/webhook``: verify, store in the inbox, enqueue. Nothing else.

The route reads at most ``LATTICE_WEBHOOK_MAX_BYTES``, verifies the raw bytes with the
SDK against every secret in ``LATTICE_WEBHOOK_SECRETS``, stores the event once by its id
(a duplicate delivery changes nothing) and, after the commit, hands its id to the
process's background enqueuer (:func:`flask_lattice.webhooks.queue.enqueue_soon`), which
enqueues its job a moment later. The 200 means "stored": when Redis is down, or the
process dies before the enqueue, the event is in the database and the drain enqueues
it later. The worker does the rest (:mod:`flask_lattice.webhooks.job`).
"""

from __future__ import annotations

import json
import logging
from typing import Any, cast

import sqlalchemy as sa
from flask import Response, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import ServiceUnavailable

from ..errors import InvalidSignature, WebhookRejected
from ..models import EventStatus, WebhookEvent, from_timestamp, insert_ignoring_conflicts, utcnow
from ..state import get_state
from ..stripe_gateway import verify_signature
from . import queue

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Stripe-Signature"
_CHUNK = 64 * 1024


def receive() -> Response:
    """Accept one Stripe delivery: 200 once the event is stored (or was already)."""
    state = get_state()
    config = state.config
    payload = _read_body(config.webhook_max_bytes)
    _verify(
        payload,
        request.headers.get(SIGNATURE_HEADER),
        config.webhook_secrets,
        config.webhook_tolerance,
    )
    row = _event_row(payload)
    try:
        stored = _store(state.db.engine, row)
    except SQLAlchemyError as error:
        log.error("could not store webhook event %s: %s", row["id"], error)
        raise ServiceUnavailable("The event could not be stored; Stripe will retry.") from None
    if stored:
        queue.enqueue_soon(row["id"])
    return Response(b"stored\n" if stored else b"duplicate\n", 200, mimetype="text/plain")


def store_event(payload: bytes) -> tuple[str, bool]:
    """Store one event body (already verified, or read from Stripe's API) through the
    same inbox insert as :func:`receive`, and enqueue it when it is new.

    Returns the event id and whether it was new (False: already stored, nothing changed).
    Raises :class:`~flask_lattice.errors.WebhookRejected` for a body that is not an event.
    """
    row = _event_row(payload)
    stored = _store(get_state().db.engine, row)
    if stored:
        queue.enqueue_soon(row["id"])
    return row["id"], stored


def _read_body(limit: int) -> bytes:
    """The raw body, at most ``limit`` bytes: Flask's per-request ``max_content_length``
    answers 413 for a longer body, announced or streamed (Werkzeug's limited stream)."""
    request.max_content_length = limit
    return request.get_data(cache=False)


def _verify(payload: bytes, header: str | None, secrets: tuple[str, ...], tolerance: int) -> None:
    if not secrets:
        raise WebhookRejected("No webhook signing secret is configured (LATTICE_WEBHOOK_SECRETS).")
    if not header:
        raise WebhookRejected(f"The {SIGNATURE_HEADER} header is missing.")
    reasons: list[str] = []
    for secret in secrets:
        try:
            verify_signature(payload, header, secret, tolerance)
        except InvalidSignature as error:
            reasons.append(str(error))
        else:
            return
    # Prefer the reason that names a stale timestamp: it means the right secret matched.
    reason = next((item for item in reasons if "tolerance" in item), reasons[0])
    raise WebhookRejected(f"Invalid signature: {reason}.")


def _event_row(payload: bytes) -> dict[str, Any]:
    text = payload.decode("utf-8")  # verified bodies are UTF-8: the signature check decodes them
    try:
        event = json.loads(text)
    except ValueError:
        raise WebhookRejected("The body is not JSON.") from None
    if not isinstance(event, dict):
        raise WebhookRejected("The body is not a Stripe event.")
    event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
    if (
        not isinstance(event_id, str)
        or not event_id
        or len(event_id) > 255
        or not isinstance(event_type, str)
        or not event_type
        or not isinstance(created, int)
        or isinstance(created, bool)
    ):
        raise WebhookRejected("The body is not a Stripe event (it needs an id, type and created).")
    api_version = event.get("api_version")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    object_id = obj.get("id") if isinstance(obj, dict) else None
    return {
        "id": event_id,
        "type": event_type[:128],
        "created": from_timestamp(created),
        "livemode": event.get("livemode") is True,
        "api_version": api_version if isinstance(api_version, str) else None,
        "object_id": object_id[:255] if isinstance(object_id, str) else None,
        "payload": text,
        "received_at": utcnow(),
        "status": EventStatus.RECEIVED,
        "attempts": 0,
    }


def _insert_ignoring_duplicates(dialect: str) -> sa.Insert:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING id`` for the event table."""
    table = cast(sa.Table, WebhookEvent.__table__)
    return insert_ignoring_conflicts(table, dialect).returning(table.c.id)


# One statement object per dialect, so SQLAlchemy's compiled cache serves every request.
_statements: dict[str, sa.Insert] = {}


def _store(engine: sa.Engine, row: dict[str, Any]) -> bool:
    """Insert the event, committed before the route answers; False for a duplicate delivery.

    On PostgreSQL the one statement runs in autocommit mode: a single round trip, and still
    a durable commit.
    """
    dialect = engine.dialect.name
    if dialect not in _statements:
        _statements[dialect] = _insert_ignoring_duplicates(dialect)
    if dialect == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            return connection.execute(_statements[dialect], row).first() is not None
    with engine.begin() as connection:
        return connection.execute(_statements[dialect], row).first() is not None
