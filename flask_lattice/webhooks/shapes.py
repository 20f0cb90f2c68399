"""What the object of each projected event type must look like, checked before projecting.

An event whose ``data.object`` is missing, is not a JSON object, is another kind of object
than its type promises, or lacks a reference the projection follows, fails with a
:class:`~flask_lattice.errors.MalformedEvent` that says so in one line (for example
``data.object has no customer``), instead of a ``KeyError`` deep inside a handler.
Types the projection does not handle are not checked: ``@billing.on_event`` handlers get
the event as Stripe sent it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import MalformedEvent
from .projection import HANDLERS

#: A Stripe object id: letters, digits and underscores (``sub_…``, ``cus_…``, ``in_…``).
STRIPE_ID = re.compile(r"[A-Za-z0-9_]{1,255}")

#: Type prefix → the object kind it carries, the references it must have, and the
#: references it may have (each a Stripe id, or an expanded object with one).
_SHAPES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("checkout.session.", "checkout.session", (), ("customer", "subscription")),
    ("customer.subscription.", "subscription", ("customer",), ()),
    ("invoice.", "invoice", ("customer",), ()),
    ("customer.", "customer", (), ()),
)


def check(event: Mapping[str, Any]) -> None:
    """Raise :class:`MalformedEvent` if the event's object cannot be projected."""
    event_type = event.get("type")
    if event_type not in HANDLERS:
        return
    shape = next((shape for shape in _SHAPES if event_type.startswith(shape[0])), None)
    if shape is None:  # catalog events: the projection reads nothing from the object
        return
    _, kind, required, optional = shape
    data = event.get("data")
    if not isinstance(data, Mapping) or "object" not in data:
        raise MalformedEvent("the event has no data.object")
    obj = data["object"]
    if not isinstance(obj, Mapping):
        raise MalformedEvent(f"data.object is {_json_kind(obj)}, not a {kind} object")
    if obj.get("object", kind) != kind:
        raise MalformedEvent(f"data.object is a {obj['object']!r} object, not a {kind}")
    if not _is_id(obj.get("id")):
        raise MalformedEvent(
            "data.object has no id" if "id" not in obj else "data.object.id is not a Stripe id"
        )
    for name in required:
        if obj.get(name) is None:
            raise MalformedEvent(f"data.object has no {name}")
    for name in (*required, *optional):
        value = obj.get(name)
        if value is not None and not _is_reference(value):
            raise MalformedEvent(
                f"data.object.{name} is neither a Stripe id nor an object with one"
            )


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and STRIPE_ID.fullmatch(value) is not None


def _is_reference(value: Any) -> bool:
    return _is_id(value) or (isinstance(value, Mapping) and _is_id(value.get("id")))


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
