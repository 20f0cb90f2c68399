"""``POST /billing/webhook``: verify, validate, store in the inbox, enqueue. Nothing else.

The route reads at most ``LATTICE_WEBHOOK_MAX_BYTES``, checks the ``Stripe-Signature``
header's syntax, verifies the raw bytes with the SDK against every secret in
``LATTICE_WEBHOOK_SECRETS``, checks the signature's timestamp in both directions and the
event's envelope (:mod:`flask_lattice.webhooks.envelope`), stores the event once by its id
(a duplicate delivery changes nothing) and, after the commit, hands its id to the
process's background enqueuer (:func:`flask_lattice.webhooks.queue.enqueue_soon`), which
enqueues its job a moment later. The 200 means "stored": when Redis is down, or the
process dies before the enqueue, the event is in the database and the drain enqueues
it later. The worker does the rest (:mod:`flask_lattice.webhooks.job`).

Every delivery the route cannot accept gets a 4xx that says why, nothing is stored, and
the refusal is counted per reason (:mod:`flask_lattice.webhooks.rejections`).
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

import sqlalchemy as sa
from flask import Response, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge, ServiceUnavailable

from ..config import LatticeConfig
from ..direct import DirectStatement
from ..errors import BillingHTTPError
from ..models import EventStatus, WebhookEvent, insert_ignoring_conflicts, utcnow
from ..state import get_state
from ..stripe_gateway import InvalidSignature, verify_signature
from . import envelope, queue, rejections
from .envelope import Reason, Refused

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Stripe-Signature"
_CHUNK = 64 * 1024


class WebhookRejected(BillingHTTPError):
    """A delivery that is not a verified Stripe event (400); nothing was stored."""


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
        raise ServiceUnavailable("The event could not be stored; Stripe will retry.") from None
    if stored:
        queue.enqueue_soon(row["id"])
    return Response(b"stored\n" if stored else b"duplicate\n", 200, mimetype="text/plain")


def _read_body(limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    stream = request.stream
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(_CHUNK, limit + 1 - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    if size > limit:
        raise _too_large(limit)
    return b"".join(parts)


def _too_large(limit: int) -> Refused:
    return Refused(Reason.TOO_LARGE, f"Webhook bodies are limited to {limit} bytes.")


def _accept(payload: bytes, header: str | None, config: LatticeConfig) -> dict[str, Any]:
    """The inbox row of a delivery; raises :class:`Refused` at the first failed check."""
    signed_at = envelope.signature_time(header)
    text = envelope.decode_body(payload)
    assert header is not None  # signature_time refuses a missing header
    _verify(payload, header, config.webhook_secrets)
    envelope.check_time(signed_at, time.time(), config.webhook_tolerance)
    event, _ = envelope.parse_event(payload)
    return {
        "id": event.id,
        "type": event.type,
        "created": event.created,
        "livemode": event.livemode,
        "api_version": event.api_version,
        "payload": text,
        "received_at": utcnow(),
        "status": EventStatus.RECEIVED,
        "attempts": 0,
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


#: The columns :func:`_accept` sets.
_EVENT_COLUMNS = (
    "id", "type", "created", "livemode", "api_version", "payload", "received_at", "status",
    "attempts",
)  # fmt: skip


def _insert_ignoring_duplicates(dialect: str) -> DirectStatement:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING id`` for the event table."""
    table = cast(sa.Table, WebhookEvent.__table__)
    insert = insert_ignoring_conflicts(table, dialect).returning(table.c.id)
    return DirectStatement(insert, _EVENT_COLUMNS)


_statements: dict[str, DirectStatement] = {}


def _store(engine: sa.Engine, row: dict[str, Any]) -> bool:
    """Insert the event, committed at once; False for a duplicate delivery.

    The hot path of the route, so it runs as a :class:`~.direct.DirectStatement`.
    """
    dialect = engine.dialect.name
    if dialect not in _statements:
        _statements[dialect] = _insert_ignoring_duplicates(dialect)
    return bool(_statements[dialect].run_alone(engine, row))
