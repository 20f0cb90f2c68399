"""List envelopes, cursor pagination, and ``expand``."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from .wire import JSON, StripeError, invalid_param

Resolver = Callable[[str], JSON | None]


def envelope(data: list[JSON], url: str, has_more: bool = False) -> JSON:
    """A ``list`` object as Stripe nests it (``subscription.items``, ``invoice.lines``)."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def page_limit(params: JSON) -> int:
    """The ``limit`` param (default 10), or Stripe's 400 outside 1..100."""
    limit = params.get("limit", 10)
    if not 1 <= limit <= 100:
        raise invalid_param("limit", "Invalid limit: must be between 1 and 100.")
    return int(limit)


def paginate(items: Sequence[JSON], params: JSON, url: str) -> JSON:
    """One page of ``items`` (already newest first) honouring limit/starting_after/ending_before."""
    limit = page_limit(params)
    ids = [item["id"] for item in items]
    after, before = params.get("starting_after"), params.get("ending_before")
    if after:
        if after not in ids:
            raise invalid_param("starting_after", f"No such object: '{after}'")
        window = list(items[ids.index(after) + 1 :])
        page, more = window[:limit], len(window) > limit
    elif before:
        if before not in ids:
            raise invalid_param("ending_before", f"No such object: '{before}'")
        window = list(items[: ids.index(before)])
        page, more = window[-limit:], len(window) > limit
    else:
        page, more = list(items[:limit]), len(items) > limit
    return envelope(page, url, more)


def expand(obj: JSON, paths: Sequence[str], resolve: Resolver) -> JSON:
    """Replace id strings with objects along each dotted ``expand`` path (``data.*`` included)."""
    result = copy.deepcopy(obj)
    for path in paths:
        _expand_path(result, path.split("."), resolve, path)
    return result


def _expand_path(node: Any, parts: list[str], resolve: Resolver, path: str) -> None:
    if isinstance(node, list):
        for item in node:
            _expand_path(item, parts, resolve, path)
        return
    if not isinstance(node, dict):
        return
    key, rest = parts[0], parts[1:]
    if key not in node:
        raise invalid_param(
            "expand",
            f"This property cannot be expanded ({path}). You may want to try expanding "
            "a different property.",
        )
    value = node[key]
    if isinstance(value, str):
        found = resolve(value)
        if found is None:
            raise StripeError(f"This property cannot be expanded ({path}).", param="expand")
        node[key] = value = copy.deepcopy(found)
    if rest:
        _expand_path(value, rest, resolve, path)
