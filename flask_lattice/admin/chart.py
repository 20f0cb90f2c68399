"""The revenue chart: MRR snapshots as an inline SVG polyline (no JavaScript)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from ..models import MrrSnapshot

WIDTH = 720
HEIGHT = 200
PAD = 24


@dataclass(frozen=True)
class Chart:
    """An SVG chart's geometry: ``points`` for a ``<polyline>``, the y-axis top value
    (minor units), and the first and last day shown."""

    width: int
    height: int
    points: str
    top: int
    first: date | None
    last: date | None


def mrr_chart(snapshots: Sequence[MrrSnapshot]) -> Chart:
    """Plot ``snapshots`` (one currency, oldest first) over their days."""
    if not snapshots:
        return Chart(WIDTH, HEIGHT, "", 0, None, None)
    first, last = snapshots[0].day, snapshots[-1].day
    span = max(1, (last - first).days)
    top = max(1, *(row.mrr for row in snapshots))
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    points = " ".join(
        f"{PAD + inner_w * (row.day - first).days / span:.1f},"
        f"{PAD + inner_h * (1 - row.mrr / top):.1f}"
        for row in snapshots
    )
    return Chart(WIDTH, HEIGHT, points, top, first, last)
