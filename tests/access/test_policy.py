"""The default access policy, one case per row of the table in docs/access.md.

Each case arranges one projected subscription row, freezes time at a boundary and asks
the gate. Times are measured from a fixed moment so each boundary is exact to the second.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask

from flask_lattice.access.policy import TRIAL_END_MARGIN, AccessPolicy, SubscriptionState, resolve
from flask_lattice.plans import parse_plans
from tests.helpers.gates import JSON, add_subscription, install_gated_views
from tests.helpers.support import TEST_PLANS, login, make_user

NOW = datetime(2031, 3, 10, 12, 0, tzinfo=UTC)
START = NOW - timedelta(days=20)
END = NOW + timedelta(days=10)
SECOND = timedelta(seconds=1)
GRACE = timedelta(days=3)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "access.md"


@dataclass(frozen=True)
class Case:
    """A row, the moment it is checked at, the config, and whether Pro is granted."""

    row: dict[str, Any]
    at: datetime
    admitted: bool
    config: dict[str, Any] = field(default_factory=dict)


CASES: dict[str, Case] = {
    # active
    "active": Case({"status": "active"}, NOW, True),
    "active, period end passed without an update": Case(
        {"status": "active"}, END + timedelta(days=5), True
    ),
    # trialing
    "trialing before trial end": Case({"status": "trialing", "trial_end": END}, END - SECOND, True),
    "trialing within the margin after trial end": Case(
        {"status": "trialing", "trial_end": END}, END + TRIAL_END_MARGIN - SECOND, True
    ),
    "trialing past trial end and margin": Case(
        {"status": "trialing", "trial_end": END}, END + TRIAL_END_MARGIN, False
    ),
    # past_due
    "past_due, no grace configured": Case({"status": "past_due"}, END + timedelta(days=40), True),
    "past_due renewed period, within grace": Case(
        {"status": "past_due"}, START + GRACE - SECOND, True, {"LATTICE_PAST_DUE_GRACE": GRACE}
    ),
    "past_due renewed period, after grace": Case(
        {"status": "past_due"}, START + GRACE, False, {"LATTICE_PAST_DUE_GRACE": GRACE}
    ),
    "past_due period end passed, within grace": Case(
        {"status": "past_due"}, END + GRACE - SECOND, True, {"LATTICE_PAST_DUE_GRACE": GRACE}
    ),
    "past_due period end passed, after grace": Case(
        {"status": "past_due"}, END + GRACE, False, {"LATTICE_PAST_DUE_GRACE": 3 * 86400}
    ),
    # scheduled cancel
    "cancel_at_period_end before period end": Case(
        {"status": "active", "cancel_at_period_end": True}, END - SECOND, True
    ),
    "cancel_at_period_end at period end": Case(
        {"status": "active", "cancel_at_period_end": True}, END, False
    ),
    "cancel_at before it": Case(
        {"status": "active", "cancel_at": NOW + timedelta(days=2)},
        NOW + timedelta(days=2) - SECOND,
        True,
    ),
    "cancel_at reached": Case(
        {"status": "active", "cancel_at": NOW + timedelta(days=2)}, NOW + timedelta(days=2), False
    ),
    "trialing with a cancel at period end, after it": Case(
        {"status": "trialing", "trial_end": END, "cancel_at_period_end": True}, END, False
    ),
    "past_due with a scheduled cancel, after it": Case(
        {"status": "past_due", "cancel_at": NOW}, NOW, False
    ),
    # pause
    "paused status": Case({"status": "paused"}, NOW, False),
    "pause_collection, access kept (default)": Case(
        {"status": "active", "pause_collection_behavior": "void"}, NOW, True
    ),
    "pause_collection, access withheld": Case(
        {"status": "active", "pause_collection_behavior": "keep_as_draft"},
        NOW,
        False,
        {"LATTICE_PAUSE_COLLECTION_ACCESS": False},
    ),
    "pause_collection withheld, before resumes_at": Case(
        {
            "status": "active",
            "pause_collection_behavior": "mark_uncollectible",
            "pause_resumes_at": NOW + SECOND,
        },
        NOW,
        False,
        {"LATTICE_PAUSE_COLLECTION_ACCESS": False},
    ),
    "pause_collection withheld, resumes_at passed": Case(
        {"status": "active", "pause_collection_behavior": "void", "pause_resumes_at": NOW},
        NOW,
        True,
        {"LATTICE_PAUSE_COLLECTION_ACCESS": False},
    ),
    # no access
    "canceled": Case({"status": "canceled"}, NOW, False),
    "unpaid": Case({"status": "unpaid"}, NOW, False),
    "incomplete": Case({"status": "incomplete"}, NOW, False),
    "incomplete_expired": Case({"status": "incomplete_expired"}, NOW, False),
    "an unknown status": Case({"status": "something_new"}, NOW, False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_policy_table(name: str, app_factory: Callable[..., Flask]) -> None:
    case = CASES[name]
    app = app_factory(**case.config)
    install_gated_views(app)
    client = app.test_client()
    user_id = make_user(app)
    fields = {"current_period_start": START, "current_period_end": END, **case.row}
    add_subscription(app, user_id, **fields)
    with time_machine.travel(case.at, tick=False):
        login(client, user_id)
        response = client.get("/pro", headers=JSON)
    expected = 200 if case.admitted else 402
    assert response.status_code == expected, response.text
    if not case.admitted:
        assert response.json == {"error": "plan_required", "required": "pro", "current": "free"}


def test_every_status_has_a_row_in_the_docs_table() -> None:
    table = DOCS.read_text()
    statuses = [
        "active",
        "trialing",
        "past_due",
        "paused",
        "canceled",
        "unpaid",
        "incomplete",
        "incomplete_expired",
    ]
    for status in statuses:
        assert re.search(rf"^\|[^\n]*`{status}`", table, re.MULTILINE), status
    for setting in ("LATTICE_PAST_DUE_GRACE", "LATTICE_PAUSE_COLLECTION_ACCESS"):
        assert setting in table


# -- the pure parts, without an app -----------------------------------------------------------

PLANS = parse_plans(TEST_PLANS)


def _row(**fields: Any) -> SubscriptionState:
    values: dict[str, Any] = {
        "id": 1,
        "stripe_subscription_id": "sub_1",
        "status": "active",
        "plan_key": "pro",
        "current_period_start": START,
        "current_period_end": END,
    }
    values.update(fields)
    return SubscriptionState(**values)


def test_deadline_is_the_earliest_limit() -> None:
    policy = AccessPolicy(PLANS, past_due_grace=GRACE)
    row = _row(status="past_due", cancel_at=START + SECOND, cancel_at_period_end=True)
    assert policy.deadline(row, NOW) == START + SECOND
    assert policy.deadline(_row(), NOW) is None


def test_trial_margin_can_be_changed_by_a_host_policy() -> None:
    strict = AccessPolicy(PLANS, trial_end_margin=timedelta(0))
    row = _row(status="trialing", trial_end=NOW)
    assert strict(row, NOW - SECOND) == "pro"
    assert strict(row, NOW) is None


def test_resolve_prefers_the_higher_rank_and_reports_its_row() -> None:
    pro, team = _row(id=1, plan_key="pro"), _row(id=2, plan_key="team", stripe_subscription_id="s2")
    access = resolve([pro, team], NOW, AccessPolicy(PLANS), PLANS)
    assert access.plan is not None
    assert access.plan.key == "team"
    assert access.subscription is team


def test_resolve_without_a_free_plan_gives_none() -> None:
    paid_only = parse_plans([plan for plan in TEST_PLANS if plan["key"] != "free"])
    access = resolve([_row(status="canceled")], NOW, AccessPolicy(paid_only), paid_only)
    assert access.plan is None
    assert access.subscription is not None


def test_resolve_reports_the_latest_started_row_when_none_grants() -> None:
    older = _row(id=2, status="canceled", current_period_start=START - timedelta(days=60))
    newer = _row(id=1, status="unpaid", current_period_start=START)
    never_paid = _row(id=3, status="incomplete_expired", current_period_start=None)
    access = resolve([older, newer, never_paid], NOW, AccessPolicy(PLANS), PLANS)
    assert access.plan is not None and access.plan.key == "free"
    assert access.subscription is newer
    assert (access.active, access.status) == (False, "unpaid")


def test_resolve_marks_a_granted_plan_active() -> None:
    access = resolve([_row(status="trialing", trial_end=END)], NOW, AccessPolicy(PLANS), PLANS)
    assert (access.active, access.status) == (True, "trialing")
    assert resolve([], NOW, AccessPolicy(PLANS), PLANS).status is None
