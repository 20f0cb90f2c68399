"""What a webhook delivery must look like before anything is stored: data in, verdict out.

The route (:mod:`.route`) runs these checks in order; the first that fails raises
:class:`Refused`, whose ``reason`` names the rejection counter (:mod:`.rejections`) and
whose message becomes the text of the 400:

1. :func:`signature_time`: the ``Stripe-Signature`` header is present, printable ASCII,
   at most :data:`MAX_HEADER` characters, with exactly one ``t=<unix seconds>`` and a
   ``v1=`` signature (the SDK's ``hmac.compare_digest`` raises ``TypeError`` on
   non-ASCII text, so nothing else may reach it) → ``header``;
2. :func:`decode_body`: the body is UTF-8 → ``body``;
3. the SDK verifies the HMAC (:func:`flask_lattice.stripe_gateway.verify_signature`)
   → ``signature``;
4. :func:`check_time`: the signature's timestamp is within the tolerance of now, in
   either direction → ``timestamp``;
5. :func:`parse_event`: the body is one JSON object at most :data:`MAX_DEPTH` levels
   deep, whose ``id`` is a Stripe event id, whose ``type`` and ``api_version`` are
   printable ASCII that fits their columns, whose ``created`` is a unix time a
   datetime can hold, and whose ``livemode`` is a boolean → ``body`` or ``event``.

Nothing here touches the database, Redis or the request: the checks take values and
return values, so the route and the worker (which re-reads stored payloads) share them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

import orjson
import sqlalchemy as sa

from ..models import WebhookEvent, from_timestamp


class Reason(StrEnum):
    """Why a delivery was refused: the name of its rejection counter."""

    #: The ``Stripe-Signature`` header is missing or malformed.
    HEADER = "header"
    #: A well-formed header whose signatures match none of ``LATTICE_WEBHOOK_SECRETS``
    #: (or no secret is configured).
    SIGNATURE = "signature"
    #: A valid signature whose timestamp is outside ``LATTICE_WEBHOOK_TOLERANCE``.
    TIMESTAMP = "timestamp"
    #: The body is not UTF-8, not JSON, too deep, or not a JSON object.
    BODY = "body"
    #: A JSON object whose ``id``, ``type``, ``api_version``, ``created`` or
    #: ``livemode`` is not what Stripe sends.
    EVENT = "event"
    #: The body is larger than ``LATTICE_WEBHOOK_MAX_BYTES`` (413).
    TOO_LARGE = "too_large"


class Refused(ValueError):
    """A delivery the route cannot accept; ``reason`` counts it, the message explains it."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


#: The longest ``Stripe-Signature`` header accepted (characters). Stripe sends one ``t``
#: and a ``v1`` (64 hex digits) per active secret, far below this.
MAX_HEADER = 2048
#: The deepest JSON nesting accepted (the event object itself is level 1). Stripe's
#: events nest about ten levels; Python's recursion limit is about a thousand.
MAX_DEPTH = 64
#: The latest ``created`` accepted: 9999-12-31T23:59:59Z, the last second a datetime holds.
MAX_CREATED = 253_402_300_799


def _length(column: str) -> int:
    """The length of one of the inbox's string columns."""
    length = cast(sa.String, cast(sa.Table, WebhookEvent.__table__).c[column].type).length
    assert length is not None
    return length


_ID_LENGTH = _length("id")
_TYPE_LENGTH = _length("type")
_VERSION_LENGTH = _length("api_version")
#: A Stripe event id: ``evt_`` and letters, digits or underscores, fitting the id column.
EVENT_ID = re.compile(rf"evt_[A-Za-z0-9_]{{1,{_ID_LENGTH - 4}}}")
#: Printable ASCII without spaces: what Stripe's event types and API versions are made of.
_TOKEN = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class Envelope:
    """The fields of a verified event that the inbox stores next to its raw payload.

    ``id`` is the Stripe event id (``evt_…``); ``created`` is the event's ``created``
    as an aware UTC datetime; ``api_version`` is ``None`` when Stripe sent ``null``.
    """

    id: str
    type: str
    created: datetime
    livemode: bool
    api_version: str | None


def signature_time(header: str | None) -> int:
    """The ``t`` of a well-formed ``Stripe-Signature`` header, in unix seconds.

    Raises :class:`Refused` (``header``) when the header is missing, not printable
    ASCII, longer than :data:`MAX_HEADER`, without exactly one decimal ``t`` or
    without a ``v1`` signature.
    """
    if not header:
        raise Refused(Reason.HEADER, "The Stripe-Signature header is missing.")
    if len(header) > MAX_HEADER or not (header.isascii() and header.isprintable()):
        raise Refused(
            Reason.HEADER,
            f"The Stripe-Signature header must be printable ASCII of at most {MAX_HEADER} "
            "characters.",
        )
    pairs = [item.partition("=") for item in header.split(",")]
    times = [value for key, _, value in pairs if key == "t"]
    if len(times) != 1 or not times[0].isdigit() or len(times[0]) > 12:
        raise Refused(
            Reason.HEADER,
            "The Stripe-Signature header needs exactly one t= timestamp (unix seconds).",
        )
    if not any(key == "v1" and value for key, _, value in pairs):
        raise Refused(Reason.HEADER, "The Stripe-Signature header has no v1= signature.")
    return int(times[0])


def decode_body(payload: bytes) -> str:
    """The body as text; raises :class:`Refused` (``body``) when it is not UTF-8."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(Reason.BODY, "The body is not UTF-8.") from None


def check_time(signed_at: int, now: float, tolerance: int) -> None:
    """Refuse (``timestamp``) a signature time more than ``tolerance`` seconds from ``now``.

    Stripe's SDK only refuses timestamps that are too old; one from the future is just
    as wrong (a replay prepared in advance, or a clock that is off).
    """
    if abs(signed_at - now) > tolerance:
        direction = "old" if signed_at < now else "far in the future"
        raise Refused(
            Reason.TIMESTAMP,
            f"The signature timestamp {signed_at} is too {direction}: it may differ from "
            f"this server's clock by at most {tolerance} seconds (LATTICE_WEBHOOK_TOLERANCE).",
        )


def load_json(payload: bytes | str) -> dict[str, Any]:
    """Parse a JSON object at most :data:`MAX_DEPTH` levels deep.

    Raises :class:`Refused` (``body``) for anything else: invalid JSON (including NaN,
    lone surrogates and a byte order mark), too deep, or not an object.
    """
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        if "depth" in str(error):  # orjson stops at 1024 levels, and says so
            raise _too_deep() from None
        raise Refused(Reason.BODY, "The body is not JSON.") from None
    if not isinstance(value, dict):
        raise Refused(Reason.BODY, "The body is not a Stripe event (not a JSON object).")
    if _opening_brackets(payload) > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        raise _too_deep()
    return value


def _opening_brackets(payload: bytes | str) -> int:
    """An upper bound of the nesting depth, counted in C: most events skip the walk."""
    if isinstance(payload, bytes):
        return payload.count(b"{") + payload.count(b"[")
    return payload.count("{") + payload.count("[")


def _too_deep() -> Refused:
    return Refused(Reason.BODY, f"The body nests deeper than {MAX_DEPTH} levels.")


def _deeper_than(value: dict[str, Any], limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def parse_event(payload: bytes | str) -> tuple[Envelope, dict[str, Any]]:
    """The envelope of a verified body, and the whole event as parsed JSON.

    Raises :class:`Refused` (``body`` or ``event``) naming the first field that is not
    what Stripe sends.
    """
    event = load_json(payload)
    event_id = event.get("id")
    if not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id):
        raise Refused(
            Reason.EVENT,
            f"The event id must be 'evt_' and up to {_ID_LENGTH - 4} letters, digits or "
            "underscores.",
        )
    event_type = event.get("type")
    if not _is_token(event_type, _TYPE_LENGTH):
        raise Refused(
            Reason.EVENT,
            f"The event type must be printable ASCII of at most {_TYPE_LENGTH} characters.",
        )
    api_version = event.get("api_version")
    if api_version is not None and not _is_token(api_version, _VERSION_LENGTH):
        raise Refused(
            Reason.EVENT,
            f"The api_version must be null or printable ASCII of at most {_VERSION_LENGTH} "
            "characters.",
        )
    created = event.get("created")
    if not isinstance(created, int) or isinstance(created, bool) or not 0 <= created <= MAX_CREATED:
        raise Refused(
            Reason.EVENT, f"The event's created must be a unix time from 0 to {MAX_CREATED}."
        )
    livemode = event.get("livemode", False)
    if not isinstance(livemode, bool):
        raise Refused(Reason.EVENT, "The event's livemode must be true or false.")
    stamp = from_timestamp(created)
    assert stamp is not None
    envelope = Envelope(
        id=event_id,
        type=cast(str, event_type),
        created=stamp,
        livemode=livemode,
        api_version=api_version,
    )
    return envelope, event


def _is_token(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) <= length and bool(_TOKEN.fullmatch(value))
