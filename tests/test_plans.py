"""The plan catalog (``flask_lattice.plans``): parsing, validation and queries."""

from __future__ import annotations

from typing import Any

import pytest

from flask_lattice.errors import ConfigurationError, UnknownPlanError
from flask_lattice.plans import MAX_SEATS, SeatRange, is_price_id, parse_plans
from tests.helpers.support import TEST_PLANS


def test_catalog_is_rank_ordered_and_queryable() -> None:
    catalog = parse_plans(list(reversed(TEST_PLANS)))
    assert [plan.key for plan in catalog] == ["free", "pro", "team"]
    assert len(catalog) == 3 and "pro" in catalog and "gold" not in catalog
    assert catalog.free_plan is not None and catalog.free_plan.key == "free"
    assert [plan.key for plan in catalog.paid_plans] == ["pro", "team"]
    assert catalog.price_refs == ["pro_monthly", "pro_yearly", "team_monthly", "team_yearly"]
    assert catalog.get("team").trial_days == 14
    assert catalog.get("pro").price_ref("year") == "pro_yearly"
    with pytest.raises(KeyError):
        catalog.get("free").price_ref("month")


def test_admits_follows_rank_and_features_follow_the_plan() -> None:
    catalog = parse_plans(TEST_PLANS)
    assert catalog.admits("team", "pro") and catalog.admits("pro", "pro")
    assert not catalog.admits("free", "pro") and not catalog.admits(None, "pro")
    assert not catalog.admits("retired", "pro")
    assert catalog.has_feature("pro", "export") and not catalog.has_feature("free", "export")
    assert not catalog.has_feature(None, "notes")
    assert catalog.features == {"notes", "unlimited_notes", "export", "seats"}
    with pytest.raises(UnknownPlanError, match="known plans: free, pro, team"):
        catalog.admits("pro", "gold")


def test_plan_for_price_matches_ids_then_lookup_keys() -> None:
    catalog = parse_plans(
        [
            {"key": "pro", "name": "Pro", "rank": 1, "prices": {"month": "price_123"}},
            {"key": "max", "name": "Max", "rank": 2, "prices": {"month": "max_monthly"}},
        ]
    )
    assert catalog.plan_for_price("price_123").key == "pro"  # type: ignore[union-attr]
    assert catalog.plan_for_price("price_999", "max_monthly").key == "max"  # type: ignore[union-attr]
    assert catalog.plan_for_price("price_999", "other") is None
    assert is_price_id("price_123") and not is_price_id("pro_monthly")


def test_mapping_form_is_accepted() -> None:
    catalog = parse_plans({"pro": {"name": "Pro", "rank": 1, "prices": {"month": " pro_m "}}})
    assert catalog.get("pro").prices == {"month": "pro_m"}
    assert catalog.get("pro").is_free is False


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("pro", "must be a list"),
        ([{"key": "pro"}], r"LATTICE_PLANS\[0\].rank"),
        ([{"key": "pro", "name": "Pro", "rank": "1"}], "rank must be an integer"),
        ([{"key": "pro plan", "name": "P", "rank": 1}], "identifier"),
        ([{"key": "pro", "name": "", "rank": 1, "prices": {"month": "m"}}], "name is required"),
        ([{"key": "pro", "name": "P", "rank": 1, "prices": {"week": "w"}}], "'month' or 'year'"),
        ([{"key": "pro", "name": "P", "rank": 1, "prices": {"month": ""}}], "prices.month"),
        (
            [{"key": "pro", "name": "P", "rank": 1, "trial_days": 0, "prices": {"month": "m"}}],
            "trial_days",
        ),
        (
            [
                {
                    "key": "pro",
                    "name": "P",
                    "rank": 1,
                    "features": "export",
                    "prices": {"month": "m"},
                }
            ],
            "features",
        ),
        ([{"key": "pro", "name": "P", "rank": 1, "colour": "red"}], "unknown field"),
        ([{"key": "free", "name": "Free", "rank": 0}], "no paid plan"),
        (
            [
                {"key": "pro", "name": "P", "rank": 1, "prices": {"month": "m"}},
                {"key": "pro", "name": "Q", "rank": 2, "prices": {"month": "n"}},
            ],
            "names plan 'pro' twice",
        ),
        (
            [
                {"key": "pro", "name": "P", "rank": 1, "prices": {"month": "m"}},
                {"key": "max", "name": "M", "rank": 2, "prices": {"year": "m"}},
            ],
            "used by both",
        ),
    ],
)
def test_invalid_catalogs_name_the_entry(raw: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_plans(raw)


def _paid(**extra: Any) -> list[dict[str, Any]]:
    return [{"key": "team", "name": "Team", "rank": 1, "prices": {"month": "m"}, **extra}]


def test_per_seat_plans_have_a_seat_range_and_flat_plans_none() -> None:
    catalog = parse_plans(TEST_PLANS)
    team, pro = catalog.get("team"), catalog.get("pro")
    assert team.per_seat and team.seats == SeatRange(1, 50)
    assert not pro.per_seat and pro.seats is None
    defaults = parse_plans(_paid(seats={})).get("team").seats
    assert defaults == SeatRange(1, MAX_SEATS)
    ranged = SeatRange(2, 5)
    assert [ranged.clamp(n) for n in (1, 2, 4, 5, 9)] == [2, 2, 4, 5, 5]
    assert 2 in ranged and 5 in ranged and 6 not in ranged and 1 not in ranged


@pytest.mark.parametrize(
    ("seats", "message"),
    [
        ("many", r"LATTICE_PLANS\[0\]\.seats must be a mapping"),
        ({"min": 1, "most": 5}, r"LATTICE_PLANS\[0\]\.seats must be a mapping"),
        ({"min": 0}, r"LATTICE_PLANS\[0\]\.seats\.min must be a whole number of seats"),
        ({"min": "2"}, r"LATTICE_PLANS\[0\]\.seats\.min"),
        ({"max": True}, r"LATTICE_PLANS\[0\]\.seats\.max"),
        ({"max": MAX_SEATS + 1}, r"LATTICE_PLANS\[0\]\.seats\.max"),
        ({"min": 5, "max": 2}, r"LATTICE_PLANS\[0\]\.seats\.min \(5\) must not be more than"),
    ],
)
def test_invalid_seats_name_the_key(seats: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_plans(_paid(seats=seats))


def test_a_free_plan_cannot_sell_seats() -> None:
    plans = [{"key": "free", "name": "Free", "rank": 0, "seats": {"max": 3}}, *_paid()]
    with pytest.raises(ConfigurationError, match=r"LATTICE_PLANS\[0\]\.seats: the 'free' plan"):
        parse_plans(plans)


def test_a_price_with_an_amount_keeps_its_lookup_key_and_amount() -> None:
    from flask_lattice.plans import PriceAmount

    catalog = parse_plans(
        [
            {
                "key": "pro",
                "name": "Pro",
                "rank": 10,
                "prices": {
                    "month": {"lookup_key": "pro_monthly", "amount": 1200},
                    "year": "pro_yearly",
                },
            }
        ]
    )
    plan = catalog.get("pro")
    assert plan.prices == {"month": "pro_monthly", "year": "pro_yearly"}
    assert plan.amounts == {"month": PriceAmount(1200, "usd")}


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ({"amount": 1200}, "prices.month.lookup_key is required"),
        ({"lookup_key": "price_123", "amount": 1200}, "prices.month.lookup_key is required"),
        ({"lookup_key": "pro", "amount": 12.5}, "prices.month.amount must be a whole number"),
        ({"lookup_key": "pro", "amount": -1}, "prices.month.amount must be a whole number"),
        ({"lookup_key": "pro", "amount": 1, "currency": "dollars"}, "three-letter ISO code"),
        ({"lookup_key": "pro", "amount": 1, "interval": "month"}, "unknown field(s) ['interval']"),
    ],
)
def test_a_bad_priced_entry_is_named(price: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_plans([{"key": "pro", "name": "Pro", "rank": 1, "prices": {"month": price}}])
    assert message in str(raised.value)
