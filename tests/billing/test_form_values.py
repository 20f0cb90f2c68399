"""The one parser for dates sent in forms and query strings: ``YYYY-MM-DD`` and nothing else."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from flask_lattice import InvalidDate
from flask_lattice.billing.form_values import calendar_date


@pytest.mark.parametrize(
    ("raw", "day"),
    [("2026-01-31", date(2026, 1, 31)), ("0001-01-01", date.min), ("9999-12-31", date.max)],
)
def test_a_calendar_date_reads_yyyy_mm_dd(raw: str, day: date) -> None:
    assert calendar_date(raw, "since") == day


@pytest.mark.parametrize(
    "raw",
    [
        "2026-01-31T00:00:00",
        "2026-01-31 00:00",
        "2026-01-31+14:00",
        "2026-W05-6",
        "2026-031",
        "20260131",
        " 2026-01-31",
        "2026-1-31",
        "٢٠٢٦-٠١-٣١",
        "2026-02-30",
        "0000-01-01",
        "10000-01-01",
        "",
        None,
        20260131,
    ],
)
def test_anything_else_is_an_invalid_date_naming_the_field(raw: Any) -> None:
    with pytest.raises(InvalidDate, match="since must be a date written YYYY-MM-DD") as refused:
        calendar_date(raw, "since")
    assert refused.value.code == 400
