"""Factories for Stripe objects, every field present (null where empty), per the 16.1.0 digest."""

from __future__ import annotations

from ..wire import JSON


def nulls(names: str) -> JSON:
    """``{name: None}`` for each whitespace-separated name."""
    return dict.fromkeys(names.split())


def base(kind: str, object_id: str, created: int) -> JSON:
    """The fields every top-level object starts with."""
    return {"id": object_id, "object": kind, "created": created, "livemode": False}
