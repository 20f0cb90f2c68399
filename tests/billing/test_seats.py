"""Seat rules (``billing.seats``) and the one number parser (``billing.numbers``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_lattice.billable import Billable
from flask_lattice.billing.form_values import whole_number
from flask_lattice.billing.seats import swap_quantity
from flask_lattice.errors import InvalidNumber, LatticeError, SeatsRefused
from flask_lattice.state import get_state

BILLABLE = Billable("user:1")
PLANS: list[dict[str, Any]] = [
    {"key": "solo", "name": "Solo", "rank": 1, "prices": {"month": "solo_m"}},
    {
        "key": "team",
        "name": "Team",
        "rank": 2,
        "prices": {"month": "team_m"},
        "seats": {"min": 2, "max": 10},
    },
    {
        "key": "firm",
        "name": "Firm",
        "rank": 3,
        "prices": {"month": "firm_m"},
        "seats": {"min": 5, "max": 100},
    },
]


@pytest.fixture
def rules(app_factory: Callable[..., Flask]) -> Callable[[str | None, int, str, int], int]:
    """``rules(current, quantity, target, in_use)``: the quantity a swap bills."""
    app = app_factory(LATTICE_PLANS=PLANS)

    def swap(current: str | None, quantity: int, target: str, in_use: int) -> int:
        get_state(app).hooks.seats_in_use = lambda billable: in_use
        with app.app_context():
            catalog = get_state().config.plans
            plan = catalog.get(current) if current else None
            return swap_quantity(BILLABLE, plan, quantity, catalog.get(target))

    return swap


def test_swaps_follow_the_target_plan(rules: Callable[[str | None, int, str, int], int]) -> None:
    # per seat -> flat: one
    assert rules("team", 7, "solo", 7) == 1
    # flat (or a price outside the catalog) -> per seat: max(min, seats in use)
    assert rules("solo", 1, "team", 0) == 2
    assert rules("solo", 1, "team", 4) == 4
    assert rules(None, 1, "firm", 3) == 5
    # per seat -> per seat: the current seats, clamped to the target's range
    assert rules("team", 3, "firm", 3) == 5
    assert rules("firm", 8, "team", 8) == 8
    assert rules("firm", 40, "team", 6) == 10


def test_a_target_too_small_for_the_seats_in_use_is_refused(
    rules: Callable[[str | None, int, str, int], int],
) -> None:
    with pytest.raises(SeatsRefused, match="You use 12 seats, but the Team plan has at most 10"):
        rules("solo", 1, "team", 12)
    with pytest.raises(SeatsRefused):
        rules("firm", 40, "team", 11)


def test_the_hook_must_return_a_count(rules: Callable[[str | None, int, str, int], int]) -> None:
    with pytest.raises(LatticeError, match="seats_in_use hook must return"):
        rules("solo", 1, "team", -1)


@pytest.mark.parametrize("raw", ["5_0", "٣", "+2", "0", "-1", "1e3", " 3", "3 ", "", "2.5", None])
def test_whole_number_refuses_anything_but_ascii_digits_in_range(raw: Any) -> None:
    with pytest.raises(InvalidNumber, match="seats must be a whole number from 1 to 50") as caught:
        whole_number(raw, "seats", low=1, high=50)
    assert caught.value.code == 400


def test_whole_number_accepts_digits_in_range() -> None:
    assert whole_number("7", "seats", low=1, high=50) == 7
    assert whole_number("050", "seats", low=1, high=50) == 50
    with pytest.raises(InvalidNumber):
        whole_number("51", "seats", low=1, high=50)
    with pytest.raises(InvalidNumber):
        whole_number("9" * 40, "seats", low=1, high=50)
