"""Keyset pagination: a page of rows after a cursor, newest first, on an index.

A cursor is the ordering key of the last row shown, as text (``<iso time>|<id>`` or
``<id>``). A malformed cursor is a 400, never a 500.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session
from werkzeug.exceptions import BadRequest

from ..billing.form_values import whole_number
from ..errors import InvalidNumber

T = TypeVar("T")

PAGE_SIZE = 50
#: The largest integer id a cursor may name (a signed 64-bit column's).
_MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows and the cursor of the next page (``None`` on the last)."""

    rows: Sequence[T]
    next_cursor: str | None


def _parse(cursor: str, timed: bool) -> tuple[Any, ...]:
    try:
        if timed:
            moment, key = cursor.split("|", 1)
            parsed = datetime.fromisoformat(moment)
            if parsed.tzinfo is None or not key:
                raise ValueError(cursor)
            return parsed, key
        return (whole_number(cursor, "after", low=0, high=_MAX_ID),)
    except (ValueError, InvalidNumber):
        raise BadRequest("The page cursor is not valid; start again from the first page.") from None


def keyset_page(
    session: Session | scoped_session[Any],
    query: sa.Select[Any],
    columns: Sequence[sa.ColumnElement[Any]],
    cursor: str | None,
    size: int = PAGE_SIZE,
) -> Page[Any]:
    """Run ``query`` (selecting an entity) ordered by ``columns`` descending, after
    ``cursor``; ``columns`` is ``(time, id)`` or ``(integer id,)``."""
    timed = len(columns) == 2
    if cursor:
        key = _parse(cursor, timed)
        query = query.where(sa.tuple_(*columns) < sa.tuple_(*key))
    rows = list(session.scalars(query.order_by(*(c.desc() for c in columns)).limit(size + 1)))
    if len(rows) <= size:
        return Page(rows, None)
    rows = rows[:size]
    last = rows[-1]
    values = [getattr(last, str(column.key)) for column in columns]
    next_cursor = f"{values[0].isoformat()}|{values[1]}" if timed else str(values[0])
    return Page(rows, next_cursor)
