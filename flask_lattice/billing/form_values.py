"""The one parser for whole numbers and dates sent in forms and query strings.

Python's ``int()`` accepts far more than a person types into a number field: ``"5_0"``
(as 50), other scripts' digits (``"٣"`` as 3), signs (``"+2"``) and surrounding spaces.
:func:`whole_number` accepts only ASCII digits, within a range, and otherwise raises
:class:`InvalidNumber` (a 400 whose description names the field). Likewise
``date.fromisoformat`` reads week dates (``2030-W01-1``) and the basic form
(``20300101``), and ``datetime.fromisoformat`` reads times and UTC offsets; a date field
takes :func:`calendar_date`, which accepts ``YYYY-MM-DD`` only and otherwise raises
:class:`InvalidDate`.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from ..errors import InvalidDate, InvalidNumber

_ASCII_DIGITS = re.compile(r"[0-9]{1,18}")
_CALENDAR_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def whole_number(raw: Any, field: str, *, low: int, high: int) -> int:
    """``raw`` (a form value) as an ``int`` from ``low`` to ``high``, both included.

    Only ASCII digits are accepted (no sign, separator, exponent, space or other script),
    so ``"5_0"``, ``"٣"``, ``"+2"``, ``"-1"`` and ``"1e3"`` are refused, as is anything
    outside the range (such as ``"0"`` when ``low`` is 1). Raises :class:`InvalidNumber`
    naming ``field``.
    """
    if isinstance(raw, str) and _ASCII_DIGITS.fullmatch(raw):
        value = int(raw)
        if low <= value <= high:
            return value
    raise InvalidNumber(
        f"{field} must be a whole number from {low:,} to {high:,}, written with the digits 0-9"
        f" (got {str(raw)[:20]!r})."
    )


def calendar_date(raw: Any, field: str) -> date:
    """``raw`` (a form or query value) as the calendar date it writes as ``YYYY-MM-DD``.

    Nothing else is read as a date: no time of day or UTC offset (which would be dropped
    or would move the day), no week date and no basic form. Raises :class:`InvalidDate`
    naming ``field``.
    """
    if isinstance(raw, str) and _CALENDAR_DATE.fullmatch(raw):
        try:
            return date.fromisoformat(raw)
        except ValueError:  # 2026-02-30, year 0
            pass
    raise InvalidDate(
        f"{field} must be a date written YYYY-MM-DD, such as 2026-01-31 (got {str(raw)[:20]!r})."
    )
