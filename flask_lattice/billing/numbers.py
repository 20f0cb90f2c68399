"""The one parser for whole numbers sent in forms and query strings (seats, unix times).

Python's ``int()`` accepts far more than a person types into a number field: ``"5_0"``
(as 50), other scripts' digits (``"٣"`` as 3), signs (``"+2"``) and surrounding spaces.
:func:`whole_number` accepts only ASCII digits, within a range, and otherwise raises
:class:`InvalidNumber` (a 400 whose description names the field).
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import InvalidNumber

_ASCII_DIGITS = re.compile(r"[0-9]{1,18}")


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
