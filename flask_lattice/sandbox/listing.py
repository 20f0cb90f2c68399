"""List envelopes, cursor pagination, the search query subset, and ``expand``."""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Callable, Sequence
from typing import Any

from .wire import JSON, StripeError, invalid_param

Resolver = Callable[[str], JSON | None]


def envelope(data: list[JSON], url: str, has_more: bool = False) -> JSON:
    """A ``list`` object as Stripe nests it (``subscription.items``, ``invoice.lines``)."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _limit(params: JSON) -> int:
    limit = params.get("limit", 10)
    if not 1 <= limit <= 100:
        raise invalid_param("limit", "Invalid limit: must be between 1 and 100.")
    return int(limit)


def paginate(items: Sequence[JSON], params: JSON, url: str) -> JSON:
    """One page of ``items`` (already newest first) honouring limit/starting_after/ending_before."""
    limit = _limit(params)
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


_CLAUSE = re.compile(r"\s*(?P<field>[a-z_]+(?:\['[^']*'\])?)\s*:\s*'(?P<value>[^']*)'\s*")


def parse_query(query: str, fields: frozenset[str]) -> list[tuple[str, str]]:
    """Parse ``email:'a@b' AND metadata['k']:'v'`` into ``[(field, value), …]``."""
    clauses = []
    for part in re.split(r"\s+AND\s+", query.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.fullmatch(part)
        field = match["field"] if match else ""
        base = field.split("[", 1)[0]
        if not match or base not in fields:
            raise invalid_param("query", f"Invalid search query: {part!r} is not supported.")
        clauses.append((field, match["value"]))
    return clauses


def matches(obj: JSON, clauses: list[tuple[str, str]]) -> bool:
    """Whether ``obj`` satisfies every parsed search clause (exact, case-sensitive match)."""
    for field, value in clauses:
        if field.startswith("metadata["):
            actual = (obj.get("metadata") or {}).get(field[len("metadata['") : -2])
        else:
            actual = obj.get(field)
            if isinstance(actual, dict):
                actual = actual.get("id")
            elif isinstance(actual, bool):
                actual = "true" if actual else "false"
        if actual != value:
            return False
    return True


def search_page(items: Sequence[JSON], params: JSON, url: str, fields: frozenset[str]) -> JSON:
    """A ``search_result`` page of ``items`` filtered by ``params["query"]``."""
    hits = [item for item in items if matches(item, parse_query(params["query"], fields))]
    limit = _limit(params)
    token = params.get("page")
    try:
        offset = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    except ValueError:
        raise invalid_param("page", f"Invalid page: {token}") from None
    end = offset + limit
    more = end < len(hits)
    return {
        "object": "search_result",
        "data": list(hits[offset:end]),
        "has_more": more,
        "next_page": base64.urlsafe_b64encode(str(end).encode()).decode() if more else None,
        "url": url,
        "total_count": len(hits),
    }


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
