"""``POST /billing/webhook``: verify, validate, store in the inbox, enqueue. Nothing else.

The route reads at most ``LATTICE_WEBHOOK_MAX_BYTES``, checks the ``Stripe-Signature``
header's syntax, verifies the raw bytes with the SDK against every secret in
``LATTICE_WEBHOOK_SECRETS``, checks the signature's timestamp in both directions and the
event's envelope (:mod:`flask_lattice.webhooks.envelope`), stores the event once by its id
(a duplicate delivery changes nothing) and, after the commit, hands its id to the
process's background enqueuer (:func:`flask_lattice.webhooks.queue.enqueue_soon`), which
enqueues its job a moment later. An event of a type that neither the projection nor an
``@billing.on_event`` handler takes (``charge.succeeded``, ``payment_intent.created``…,
half of a renewal's events; see
:func:`~flask_lattice.webhooks.projection.handled_types`) is stored as ``ignored`` and
gets no job, since a worker would only mark it so. The 200 means "stored": when Redis is
down, or the process dies before the enqueue, the event is in the database and the drain
enqueues it later. The worker does the rest (:mod:`flask_lattice.webhooks.job`).

Every delivery the route cannot accept gets a 4xx that says why, nothing is stored, and
the refusal is counted per reason (:mod:`flask_lattice.webhooks.rejections`).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, cast

import sqlalchemy as sa
from flask import Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge, ServiceUnavailable

from .. import signals
from ..config import LatticeConfig
from ..errors import DatabaseBusy, InvalidSignature, WebhookRejected
from ..models import EventStatus, WebhookEvent, insert_ignoring_conflicts, utcnow
from ..state import get_state
from ..stripe_gateway import verify_signature
from . import envelope, projection, queue, rejections
from .envelope import Reason, Refused

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Stripe-Signature"
#: What a Stripe object id looks like (``sub_…``, ``in_…``, ``cus_…``), within the column.
_OBJECT_ID = re.compile(r"[A-Za-z0-9_]{1,255}")


def receive() -> Response:
    """Accept one Stripe delivery: 200 once the event is stored (or was already)."""
    state = get_state()
    config = state.config
    try:
        payload = _read_body(config.webhook_max_bytes)
        row = _accept(payload, request.headers.get(SIGNATURE_HEADER), config)
    except Refused as refusal:
        rejections.count(refusal.reason)
        if refusal.reason is Reason.TOO_LARGE:
            raise RequestEntityTooLarge(str(refusal)) from None
        raise WebhookRejected(str(refusal)) from None
    try:
        stored = _store(state.db.engine, row)
    except SQLAlchemyError as error:
        log.error("could not store webhook event %s: %s", row["id"], error)
        raise ServiceUnavailable(
            "The event could not be stored; Stripe will retry.",
            retry_after=DatabaseBusy.retry_after,
        ) from None
    if stored:
        _hand_over(row)
    return Response(b"stored\n" if stored else b"duplicate\n", 200, mimetype="text/plain")


def store_event(payload: bytes) -> tuple[str, bool]:
    """Store one event body (already verified, or read from Stripe's API) through the
    same inbox insert as :func:`receive`, and enqueue it when it is new.

    Returns the event id and whether it was new (False: already stored, nothing changed).
    Raises :class:`~flask_lattice.errors.WebhookRejected` for a body that is not an event.
    """
    try:
        row = _event_row(payload, envelope.decode_body(payload))
    except Refused as refusal:
        raise WebhookRejected(str(refusal)) from None
    stored = _store(get_state().db.engine, row)
    if stored:
        _hand_over(row)
    return row["id"], stored


def _hand_over(row: dict[str, Any]) -> None:
    """After a new event's commit: enqueue its job, or, for an event stored ``ignored``,
    send ``event_processed`` as the worker would have. The event is stored either way: a
    receiver that raises is logged, and the delivery still gets its 200."""
    if row["status"] == EventStatus.RECEIVED:
        queue.enqueue_soon(row["id"])
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        signals.event_processed.send(
            app, event_id=row["id"], event_type=row["type"], status=row["status"]
        )
    except Exception:
        log.exception("an event_processed receiver failed for stored event %s", row["id"])


def _read_body(limit: int) -> bytes:
    """The raw body, at most ``limit`` bytes: Flask's per-request ``max_content_length``
    refuses a longer announced body. A streamed (chunked) one is read up to one byte past
    ``limit``, because Werkzeug stops a stream at its limit without saying whether more
    was sent: a body that reaches that byte is too large."""
    request.max_content_length = limit + 1
    try:
        payload = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise _too_large(limit) from None
    if len(payload) > limit:
        raise _too_large(limit)
    return payload


def _too_large(limit: int) -> Refused:
    return Refused(Reason.TOO_LARGE, f"Webhook bodies are limited to {limit} bytes.")


def _accept(payload: bytes, header: str | None, config: LatticeConfig) -> dict[str, Any]:
    """The inbox row of a delivery; raises :class:`Refused` at the first failed check."""
    signed_at = envelope.signature_time(header)
    text = envelope.decode_body(payload)
    assert header is not None  # signature_time refuses a missing header
    _verify(payload, header, config.webhook_secrets)
    envelope.check_time(signed_at, time.time(), config.webhook_tolerance)
    return _event_row(payload, text)


def _event_row(payload: bytes, text: str) -> dict[str, Any]:
    """The inbox row of a verified (or API-read) event body and its text; raises
    :class:`Refused` when the body is not an event as Stripe sends it."""
    event, parsed = envelope.parse_event(payload)
    received_at = utcnow()
    ignored = not projection.handles(event.type)
    data = parsed.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    object_id = obj.get("id") if isinstance(obj, dict) else None
    return {
        "id": event.id,
        "type": event.type,
        "created": event.created,
        "livemode": event.livemode,
        "api_version": event.api_version,
        # Kept only when it looks like a Stripe id, so no payload string (a NUL byte, say)
        # can make the insert fail; the console's timeline is keyed by it.
        "object_id": object_id
        if isinstance(object_id, str) and _OBJECT_ID.fullmatch(object_id)
        else None,
        "payload": text,
        "received_at": received_at,
        "status": EventStatus.IGNORED if ignored else EventStatus.RECEIVED,
        "attempts": 0,
        "processed_at": received_at if ignored else None,
        "outcome": "ignored" if ignored else None,
    }


def _verify(payload: bytes, header: str, secrets: tuple[str, ...]) -> None:
    if not secrets:
        raise Refused(
            Reason.SIGNATURE,
            "No webhook signing secret is configured (LATTICE_WEBHOOK_SECRETS).",
        )
    reasons: list[str] = []
    for secret in secrets:
        try:
            verify_signature(payload, header, secret)
        except InvalidSignature as error:
            reasons.append(str(error))
        else:
            return
    raise Refused(Reason.SIGNATURE, f"Invalid signature: {reasons[0]}.")


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
