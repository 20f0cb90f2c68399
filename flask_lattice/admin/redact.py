"""Bearer URLs out of event payloads before the console shows them.

A Checkout Session's or portal session's ``url`` lets whoever holds it act for the
customer, so it is replaced wherever such an object appears in a payload.
"""

from __future__ import annotations

from typing import Any

REDACTED = "[redacted]"
#: Stripe objects whose ``url`` is a bearer credential.
BEARER_OBJECTS = frozenset({"checkout.session", "billing_portal.session"})


def redact(value: Any) -> Any:
    """A copy of ``value`` (parsed JSON) with every bearer ``url`` replaced."""
    if isinstance(value, list):
        return [redact(item) for item in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("object")
    bearer = isinstance(kind, str) and kind in BEARER_OBJECTS
    return {
        key: REDACTED if bearer and key == "url" and item else redact(item)
        for key, item in value.items()
    }
