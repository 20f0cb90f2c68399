"""Emitting events: snapshots of objects, queued for delivery when the request commits."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from .ids import new_id
from .objects.platform import event
from .wire import JSON

if TYPE_CHECKING:
    from .core import SandboxCore


def endpoint_wants(endpoint: JSON, event_type: str) -> bool:
    """Whether a webhook endpoint's ``enabled_events`` covers ``event_type``."""
    enabled = endpoint["enabled_events"]
    return endpoint["status"] == "enabled" and ("*" in enabled or event_type in enabled)


def targets(core: SandboxCore, event_type: str) -> list[tuple[str, str]]:
    """``(url, signing secret)`` for every receiver of ``event_type``."""
    found = [
        (endpoint["url"], core.store.secret(endpoint["id"])["secret"])
        for endpoint in core.store.all("webhook_endpoint")
        if endpoint_wants(endpoint, event_type)
    ]
    if core.forward_to:
        found.append((core.forward_to, core.webhook_secret))
    return found


def emit(
    core: SandboxCore, event_type: str, obj: JSON, *, at: int, previous: JSON | None = None
) -> JSON:
    """Record an event of ``event_type`` about ``obj`` at sandbox time ``at``."""
    receivers = targets(core, event_type)
    request = core.request or {"id": None, "idempotency_key": None}
    evt = event(
        new_id("evt"),
        at,
        type=event_type,
        obj=copy.deepcopy(obj),
        previous=copy.deepcopy(previous),
        request=dict(request),
        api_version=core.api_version,
        pending_webhooks=len(receivers),
    )
    core.store.put(evt)
    core.pending.append((evt, receivers))
    return evt


def changes(before: JSON, after: JSON) -> JSON:
    """``previous_attributes``: the old values of the top-level fields that changed."""
    return {key: before.get(key) for key in after if before.get(key) != after[key]}
