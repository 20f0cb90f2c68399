"""Checked by mypy (``make lint``), never run: the gates keep a view's exact signature."""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_type

from flask.typing import ResponseReturnValue

from flask_lattice import requires_feature, requires_plan
from flask_lattice.access.gates import feature_required, plan_required


@requires_plan("pro")
def report(year: int, *, fmt: str = "html") -> str:
    return f"{year}.{fmt}"


@requires_feature("export")
def export(note_id: int) -> dict[str, int]:
    return {"id": note_id}


@requires_plan("team")
@requires_feature("seats")
async def seats(team_id: int) -> list[str]:
    return [str(team_id)]


assert_type(report(2031, fmt="csv"), str)
assert_type(export(1), dict[str, int])


async def caller() -> None:
    assert_type(await seats(7), list[str])


# Each ignore below is needed only because the signature survived decoration; strict mypy
# reports an unused ignore if a gate ever widened the view to ``Callable[..., Any]``.
report("2031")  # type: ignore[arg-type]
report(2031, format="csv")  # type: ignore[call-arg]
export()  # type: ignore[call-arg]

assert_type(plan_required("pro"), Callable[[], ResponseReturnValue | None])
assert_type(feature_required("export"), Callable[[], ResponseReturnValue | None])
