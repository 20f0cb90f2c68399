"""HTTP endpoints, one module per Stripe resource, and helpers they share."""

from __future__ import annotations

from collections.abc import Callable

from ..core import SandboxCore
from ..listing import paginate
from ..wire import JSON, StripeError


def apply_metadata(obj: JSON, metadata: JSON | str | None) -> None:
    """Stripe's metadata update rules: merge keys, ``""`` unsets a key or (whole) all keys."""
    if metadata is None:
        return
    if metadata == "":
        obj["metadata"] = {}
        return
    current = dict(obj.get("metadata") or {})
    for key, value in metadata.items():  # type: ignore[union-attr]
        if value == "":
            current.pop(key, None)
        else:
            current[key] = value
    obj["metadata"] = current


def created_filter(params: JSON) -> Callable[[JSON], bool]:
    """A predicate for the ``created`` list filter (an exact time or gt/gte/lt/lte)."""
    spec = params.get("created")
    if spec is None:
        return lambda obj: True
    if isinstance(spec, int):
        return lambda obj: bool(obj["created"] == spec)
    bounds = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    return lambda obj: all(bounds[op](obj["created"], value) for op, value in spec.items())


def list_of(
    core: SandboxCore,
    kind: str,
    params: JSON,
    url: str,
    keep: Callable[[JSON], bool] = lambda obj: True,
) -> JSON:
    """A page of ``kind`` objects (newest first) passing ``keep`` and the ``created`` filter."""
    when = created_filter(params)
    items = [obj for obj in core.store.all(kind) if keep(obj) and when(obj)]
    return paginate(items, params, url)


def check_customer_filter(core: SandboxCore, params: JSON) -> None:
    """A list filtered by ``customer`` needs a customer that exists (or existed): Stripe answers
    an unknown one with a 400 ``resource_missing``."""
    customer_id = params.get("customer")
    if customer_id is None:
        return
    known = customer_id in core.store.objects.get("customer", {})
    if not known and not core.store.private.get(customer_id, {}).get("deleted"):
        raise StripeError(
            f"No such customer: '{customer_id}'", code="resource_missing", param="customer"
        )
