"""Stripe's Search Query Language (https://docs.stripe.com/search#search-query-language).

A query is one or more clauses joined by ``AND`` or by ``OR`` (not both, at most 10 clauses).
A clause is ``field:value`` (exact match, case-insensitive for strings), ``field~value``
(substring, at least 3 characters), or ``field>value``, ``<``, ``>=``, ``<=`` on numeric fields
such as ``created``; a leading ``-`` negates it. Values are quoted with double or single quotes
(numbers may be bare); ``metadata['key']`` and ``metadata["key"]`` reach metadata, and ``null``
matches a missing value.

Search results are paginated with an opaque ``page`` token, and carry ``total_count`` only when
the request says ``expand[]=total_count``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .listing import page_limit
from .wire import JSON, StripeError, invalid_param

MAX_CLAUSES = 10
NUMERIC_FIELDS = frozenset({"created", "amount", "total"})

_VALUE = r"""(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s"']+)"""
_CLAUSE = re.compile(
    r"(?P<negate>-)?"
    r"(?P<field>[a-z_]+(?:\[(?:'[^']*'|\"[^\"]*\")\])?)"
    r"(?P<op>:|~|>=|<=|>|<)"
    rf"(?P<value>{_VALUE})"
)
_JOINER = re.compile(r"\s+(AND|OR)\s+")


@dataclass(frozen=True)
class Clause:
    """One parsed clause: ``[-]field op value`` (``value`` None stands for ``null``)."""

    field: str
    op: str
    value: str | None
    negate: bool

    def test(self, obj: JSON) -> bool:
        """Whether ``obj`` satisfies the clause."""
        return self._holds(_field_value(obj, self.field)) != self.negate

    def _holds(self, actual: Any) -> bool:
        if self.value is None:
            return actual is None
        if actual is None:
            return False
        if self.op in (">", "<", ">=", "<="):
            return bool(_COMPARE[self.op](int(actual), int(self.value)))
        if isinstance(actual, bool):
            actual = "true" if actual else "false"
        text, wanted = str(actual).casefold(), self.value.casefold()
        return wanted in text if self.op == "~" else text == wanted


_COMPARE = {
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}


def _field_value(obj: JSON, field: str) -> Any:
    if field.startswith("metadata["):
        return (obj.get("metadata") or {}).get(field[len("metadata[") + 1 : -2])
    actual = obj.get(field)
    return actual.get("id") if isinstance(actual, dict) else actual


def _unquote(raw: str) -> str | None:
    if raw[0] in "\"'":
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    return None if raw == "null" else raw


def _invalid(query: str, why: str) -> StripeError:
    return invalid_param("query", f"Invalid search query: {query!r}. {why}")


def parse_query(query: str, fields: frozenset[str]) -> tuple[str, list[Clause]]:
    """``(joiner, clauses)`` for ``query``; Stripe's 400 for anything outside the language."""
    text = query.strip()
    clauses: list[Clause] = []
    joiners: set[str] = set()
    position = 0
    while True:
        match = _CLAUSE.match(text, position)
        if match is None:
            raise _invalid(query, f"Expected a clause at position {position}.")
        clauses.append(_clause(query, match, fields))
        position = match.end()
        if position == len(text):
            break
        joiner = _JOINER.match(text, position)
        if joiner is None:
            raise _invalid(query, "Join clauses with ' AND ' or ' OR '.")
        joiners.add(joiner.group(1))
        position = joiner.end()
    if len(joiners) > 1:
        raise _invalid(query, "A query cannot combine AND and OR.")
    if len(clauses) > MAX_CLAUSES:
        raise _invalid(query, f"A query has at most {MAX_CLAUSES} clauses.")
    return (joiners.pop() if joiners else "AND"), clauses


def _clause(query: str, match: re.Match[str], fields: frozenset[str]) -> Clause:
    field, op = match["field"], match["op"]
    base = field.split("[", 1)[0]
    if base not in fields or (base == "metadata") != (field != base):
        raise _invalid(query, f"The field {field!r} is not searchable here.")
    value = _unquote(match["value"])
    if op in (">", "<", ">=", "<="):
        if base not in NUMERIC_FIELDS or value is None or not value.lstrip("-").isdigit():
            raise _invalid(query, f"{field}{op} needs a numeric field and a number.")
    elif op == "~" and (value is None or len(value) < 3):
        raise _invalid(query, "A substring match (~) needs at least 3 characters.")
    field = field if base != "metadata" else f"metadata['{field[len('metadata[') + 1 : -2]}']"
    return Clause(field, op, value, bool(match["negate"]))


def search_page(items: Sequence[JSON], params: JSON, url: str, fields: frozenset[str]) -> JSON:
    """A ``search_result`` page of ``items`` (already newest first) matching ``params["query"]``."""
    joiner, clauses = parse_query(params["query"], fields)
    combine = all if joiner == "AND" else any
    hits = [item for item in items if combine(clause.test(item) for clause in clauses)]
    limit = page_limit(params)
    token = params.get("page")
    try:
        offset = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    except ValueError:
        raise invalid_param("page", f"Invalid page: {token}") from None
    end = offset + limit
    more = end < len(hits)
    page: JSON = {
        "object": "search_result",
        "data": list(hits[offset:end]),
        "has_more": more,
        "next_page": base64.urlsafe_b64encode(str(end).encode()).decode() if more else None,
        "url": url,
    }
    if "total_count" in params.get("expand", []):
        page["total_count"] = len(hits)
    return page
