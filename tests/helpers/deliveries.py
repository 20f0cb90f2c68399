"""Hypothesis strategies for webhook deliveries: signed and unsigned, well and badly formed.

A :class:`Delivery` is a body and a ``Stripe-Signature`` header (or none), plus what the
strategy knows about it: whether the header is a valid signature of the body by the
app's secret, within the tolerance (``signed``), and whether the body is also an event
the route must accept (``acceptable``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from flask_lattice.stripe_gateway import API_VERSION
from flask_lattice.testing import sign_payload

#: Seconds a signature may differ from now (``LATTICE_WEBHOOK_TOLERANCE``'s default).
TOLERANCE = 300
#: The body limit the fuzzed app runs with (small, so that 413s happen too).
MAX_BYTES = 32 * 1024


@dataclass(frozen=True)
class Delivery:
    """One POST to the webhook route."""

    body: bytes
    header: str | None
    signed: bool
    acceptable: bool


# -- bodies -------------------------------------------------------------------------------

_clean_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
_clean_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _clean_text
)
#: Leaves that are not valid JSON once serialised: NaN, infinities, lone surrogates.
_json_leaves = _clean_leaves | st.floats() | st.text(max_size=20)


def _tree(leaves: st.SearchStrategy[Any], keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)
        ),
        max_leaves=8,
    )


_clean_json = _tree(_clean_leaves, _clean_text)
_json = _tree(_json_leaves, st.text(max_size=8))
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
_good_ids = st.text(_ID_ALPHABET, min_size=1, max_size=40).map(lambda tail: "evt_" + tail)
_types = st.sampled_from(
    [
        "customer.updated",
        "customer.subscription.updated",
        "invoice.paid",
        "checkout.session.completed",
        "price.created",
        "some.future_type",
    ]
)
_created = st.integers(min_value=0, max_value=253_402_300_799)


@st.composite
def good_events(draw: st.DrawFn) -> dict[str, Any]:
    """An event the route must accept: a valid envelope and any JSON as data."""
    return {
        "id": draw(_good_ids),
        "object": "event",
        "type": draw(_types),
        "created": draw(_created),
        "livemode": draw(st.booleans()),
        "api_version": draw(st.sampled_from([API_VERSION, "2024-06-20", None])),
        "data": {"object": draw(_clean_json)},
    }


@st.composite
def odd_events(draw: st.DrawFn) -> dict[str, Any]:
    """An event-like object with any field possibly wrong, missing or strange."""
    event = draw(good_events())
    odd = {
        "id": _good_ids | st.text(max_size=30) | _json_leaves,
        "type": _types | st.text(max_size=140) | _json_leaves,
        "created": _created | _json_leaves | st.sampled_from([253_402_300_800, 2**63, -(10**12)]),
        "livemode": st.booleans() | _json_leaves,
        "api_version": st.text(max_size=80) | _json_leaves,
        "data": _json,
    }
    for field in draw(st.lists(st.sampled_from(sorted(odd)), unique=True, min_size=1)):
        if draw(st.booleans()):
            event.pop(field)
        else:
            event[field] = draw(odd[field])
    return event


def _dumps(value: Any, ensure_ascii: bool, indent: int | None) -> bytes:
    # Lone surrogates survive as invalid UTF-8, NaN as the non-JSON token NaN.
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent).encode(
        "utf-8", "surrogatepass"
    )


@st.composite
def event_bodies(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A serialised event, and whether the route must accept it."""
    good = draw(st.booleans())
    event = draw(good_events() if good else odd_events())
    body = _dumps(event, draw(st.booleans()), draw(st.sampled_from([None, 2])))
    return body, good and len(body) <= MAX_BYTES


@st.composite
def deep_bodies(draw: st.DrawFn) -> tuple[bytes, bool]:
    """An event whose data nests from a few to thousands of levels."""
    levels = draw(st.integers(min_value=1, max_value=3000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    inner = opener * levels + "1" + closer * levels
    event = draw(good_events())
    text = json.dumps({**event, "data": "@"}).replace('"@"', inner)
    return text.encode(), False


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, bool]:
    """Any body: events, deep events, raw bytes, text, padded past the size limit."""
    body, acceptable = draw(
        event_bodies()
        | event_bodies()
        | deep_bodies()
        | st.tuples(st.binary(max_size=300), st.just(False))
        | st.tuples(
            st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
            st.just(False),
        )
    )
    if draw(st.integers(min_value=1, max_value=20)) == 13:  # rarely: past the size limit
        body, acceptable = body + b" " * MAX_BYTES, False
    return body, acceptable


# -- headers ------------------------------------------------------------------------------

_within = st.integers(min_value=-(TOLERANCE - 10), max_value=TOLERANCE - 10)
_outside = st.integers(min_value=TOLERANCE + 10, max_value=10**10) | st.integers(
    min_value=-(10**10), max_value=-(TOLERANCE + 10)
)
_header_text = st.text(st.characters(blacklist_characters="\r\n"), max_size=120)


@st.composite
def headers(draw: st.DrawFn, body: bytes, secret: str) -> tuple[str | None, bool]:
    """A ``Stripe-Signature`` header for ``body`` (or none), and whether it is valid."""
    now = int(time.time())
    kind = draw(
        st.sampled_from(
            ["none", "valid", "valid", "rotated", "stale", "other-secret", "mangled", "text"]
        )
    )
    if kind == "none":
        return None, False
    if kind == "text":
        return draw(_header_text), False
    if kind in ("valid", "rotated"):
        header = sign_payload(body, secret, timestamp=now + draw(_within))
        if kind == "rotated":  # Stripe's extra signatures during a secret roll, and a v0
            header += (
                ",v1=" + "0" * 64 + ",v0=" + draw(st.from_regex(r"[0-9a-f]{64}", fullmatch=True))
            )
        return header, True
    if kind == "stale":
        return sign_payload(body, secret, timestamp=now + draw(_outside)), False
    if kind == "other-secret":
        return sign_payload(
            body, "whsec_" + draw(st.text("abc123", min_size=1)), timestamp=now
        ), False
    # Anything inserted strictly inside the hex digest makes it another signature.
    header = sign_payload(body, secret, timestamp=now)
    digest = header.index("v1=") + 3
    position = draw(st.integers(min_value=digest + 1, max_value=len(header) - 1))
    insert = draw(
        _header_text.filter(bool) | st.sampled_from(["é", "\x00", ",t=1", ",", "=", ",v1="])
    )
    return header[:position] + insert + header[position:], False


@st.composite
def deliveries(draw: st.DrawFn, secret: str) -> Delivery:
    """One delivery to the webhook route of an app that trusts ``secret``."""
    body, acceptable = draw(bodies())
    header, signed = draw(headers(body, secret))
    return Delivery(body=body, header=header, signed=signed, acceptable=acceptable and signed)
