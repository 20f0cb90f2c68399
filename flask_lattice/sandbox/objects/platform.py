"""Event, webhook endpoint and test clock objects."""

from __future__ import annotations

from ..wire import JSON
from . import base


def event(
    object_id: str,
    created: int,
    *,
    type: str,
    obj: JSON,
    previous: JSON | None,
    request: JSON | None,
    api_version: str,
    pending_webhooks: int,
) -> JSON:
    """An event carrying a snapshot of ``obj``."""
    data: JSON = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {
        **base("event", object_id, created),
        "account": None,
        "api_version": api_version,
        "context": None,
        "data": data,
        "pending_webhooks": pending_webhooks,
        "request": request or {"id": None, "idempotency_key": None},
        "type": type,
    }


def webhook_endpoint(
    object_id: str, created: int, *, url: str, enabled_events: list[str], api_version: str | None
) -> JSON:
    """A webhook endpoint (its ``secret`` is added to the create response only)."""
    return {
        **base("webhook_endpoint", object_id, created),
        "api_version": api_version,
        "application": None,
        "description": None,
        "enabled_events": enabled_events,
        "metadata": {},
        "secret": None,
        "status": "enabled",
        "url": url,
    }


def test_clock(object_id: str, created: int, *, frozen_time: int, name: str | None) -> JSON:
    """A ready test clock frozen at ``frozen_time``."""
    return {
        **base("test_helpers.test_clock", object_id, created),
        "deletes_after": created + 30 * 86_400,
        "frozen_time": frozen_time,
        "name": name,
        "status": "ready",
        "status_details": {"advancing": None},
    }
