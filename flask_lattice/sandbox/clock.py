"""Sandbox time: a shiftable wall clock, and calendar arithmetic for billing periods."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime

DAY = 86_400
#: The last second of year 9999: Stripe refuses timestamps past it, and so does ``datetime``.
MAX_TIMESTAMP = 253_402_300_799
#: Stripe's longest billing interval, three years, in each interval unit.
MAX_INTERVAL_COUNT = {"day": 1095, "week": 156, "month": 36, "year": 3}


class Clock:
    """Real time plus an offset that tests and the demo can push forward."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> int:
        """The sandbox's current unix time."""
        return int(time.time() + self.offset)

    def advance(self, seconds: float) -> None:
        """Move sandbox time forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self.offset += seconds

    def advance_to(self, timestamp: int) -> None:
        """Move sandbox time forward to ``timestamp``."""
        self.advance(max(0, timestamp - self.now()))


def add_interval(anchor: int, interval: str, count: int) -> int:
    """``anchor`` plus ``count`` intervals; month ends clamp like Stripe (Jan 31 → Feb 28).

    ``count`` must be positive: a zero count would never move a billing period forward.
    """
    if count < 1:
        raise ValueError(f"an interval count must be at least 1, not {count}")
    if interval == "day":
        return anchor + count * DAY
    if interval == "week":
        return anchor + count * 7 * DAY
    months = count * (12 if interval == "year" else 1)
    start = datetime.fromtimestamp(anchor, UTC)
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


def format_date(timestamp: int) -> str:
    """A timestamp as ``Jan 5, 2026`` for hosted pages and line descriptions."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return f"{moment:%b} {moment.day}, {moment.year}"
