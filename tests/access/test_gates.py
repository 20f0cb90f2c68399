"""Access gating: the decorators, blueprint guards, denials, hooks and helpers.

The app here has no Stripe at all (its API base is a closed port), so every answer
below comes from local rows alone.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
import stripe
import time_machine
from flask import Flask, render_template_string
from flask.testing import FlaskClient
from flask_sqlalchemy.record_queries import get_recorded_queries

from flask_lattice import requires_feature
from flask_lattice import requires_plan as requires_plan_public
from flask_lattice.access.gates import Denial, plan_required, requires_plan
from flask_lattice.access.policy import SubscriptionState
from flask_lattice.access.query import live_subscription
from flask_lattice.errors import LatticeError, UnknownPlanError
from flask_lattice.models import utcnow
from flask_lattice.state import get_state
from flask_lattice.webhooks.projection import Projector
from tests.helpers.gates import JSON, add_subscription, billing_of, install_gated_views
from tests.helpers.support import driver_statements, host, login, make_user


@pytest.fixture
def app(app_factory: Callable[..., Flask]) -> Flask:
    """A host app whose Stripe client points at a closed port."""
    application = app_factory()
    install_gated_views(application)
    return application


@pytest.fixture
def user_id(app: Flask, client: FlaskClient) -> int:
    """A signed-in user with no subscription yet."""
    uid = make_user(app)
    login(client, uid)
    return uid


@contextmanager
def lattice_queries(app: Flask) -> Iterator[list[str]]:
    """Collect the SQL statements the driver runs that read the lattice tables."""
    with driver_statements(app) as statements:
        lattice: list[str] = []
        yield lattice
    lattice.extend(statement for statement in statements if "lattice_" in statement)


# -- gates: ranking and features -------------------------------------------------------------


def test_plan_admits_itself_and_higher_ranks(app: Flask, client: FlaskClient, user_id: int) -> None:
    add_subscription(app, user_id, plan_key="team")
    assert client.get("/pro").text == "pro content"
    assert client.get("/team").text == "team content"


def test_lower_plan_is_refused_a_higher_one(app: Flask, client: FlaskClient, user_id: int) -> None:
    add_subscription(app, user_id, plan_key="pro")
    assert client.get("/pro").status_code == 200
    response = client.get("/team", headers=JSON)
    assert response.status_code == 402
    assert response.json == {"error": "plan_required", "required": "team", "current": "pro"}


def test_free_plan_applies_when_nothing_is_live(
    app: Flask, client: FlaskClient, user_id: int
) -> None:
    response = client.get("/pro", headers=JSON)
    assert response.status_code == 402
    assert response.json == {"error": "plan_required", "required": "pro", "current": "free"}


def test_features_follow_the_plan(app: Flask, client: FlaskClient, user_id: int) -> None:
    add_subscription(app, user_id, plan_key="pro")
    assert client.get("/export").text == "export content"
    response = client.get("/seats", headers=JSON)
    assert response.status_code == 402
    assert response.json == {"error": "feature_required", "required": "seats", "current": "pro"}


def test_free_plan_features_are_denied_paid_ones(
    app: Flask, client: FlaskClient, user_id: int
) -> None:
    response = client.get("/export", headers=JSON)
    assert response.json == {"error": "feature_required", "required": "export", "current": "free"}


def test_highest_ranked_live_subscription_wins(
    app: Flask, client: FlaskClient, user_id: int
) -> None:
    add_subscription(app, user_id, plan_key="pro")
    add_subscription(app, user_id, plan_key="team")
    add_subscription(app, user_id, plan_key="team", status="canceled")
    assert client.get("/team").status_code == 200


def test_other_billables_rows_do_not_count(app: Flask, client: FlaskClient, user_id: int) -> None:
    other = make_user(app, email="bob@example.com")
    add_subscription(app, other, plan_key="team")
    assert client.get("/pro", headers=JSON).status_code == 402


def test_view_arguments_and_metadata_pass_through(
    app: Flask, client: FlaskClient, user_id: int
) -> None:
    add_subscription(app, user_id)
    assert client.get("/items/7").text == "item 7"
    assert app.view_functions["item_view"].__name__ == "item_view"
    wrapped: Any = app.view_functions["item_view"]
    assert wrapped.__wrapped__.__name__ == "item_view"


def test_options_is_exempt(app: Flask, client: FlaskClient) -> None:
    response = client.options("/pro")
    assert response.status_code == 200


def test_post_is_gated_like_get(app: Flask, client: FlaskClient, user_id: int) -> None:
    assert client.post("/pro", headers=JSON).status_code == 402


def test_public_names_are_the_same_gates() -> None:
    assert requires_plan_public is requires_plan


# -- blueprints ------------------------------------------------------------------------------


def test_blueprint_guard_by_plan(app: Flask, client: FlaskClient, user_id: int) -> None:
    add_subscription(app, user_id, plan_key="pro")
    response = client.get("/reports/", headers=JSON)
    assert response.status_code == 402
    assert response.json == {"error": "plan_required", "required": "team", "current": "pro"}
    assert client.get("/exports/").text == "exports"


def test_blueprint_guard_admits_higher_plan(app: Flask, client: FlaskClient, user_id: int) -> None:
    add_subscription(app, user_id, plan_key="team")
    assert client.get("/reports/").text == "reports"


def test_blueprint_guard_exempts_options_and_sends_anonymous_to_login(
    app: Flask, client: FlaskClient
) -> None:
    assert client.options("/reports/").status_code == 200
    assert client.get("/reports/").status_code == 401


# -- names checked at decoration and at request ----------------------------------------------


def test_bare_decorator_is_refused_at_decoration() -> None:
    def view() -> str:
        return "x"

    with pytest.raises(LatticeError, match=r"@requires_plan\('…'\)"):
        requires_plan(view)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "  ", None, 3])
def test_empty_or_non_string_names_are_refused_at_decoration(name: Any) -> None:
    with pytest.raises(LatticeError, match="needs a non-empty"):
        requires_feature(name)
    with pytest.raises(LatticeError, match="needs a non-empty"):
        plan_required(name)


def test_unknown_plan_fails_clearly_at_request(app: Flask, client: FlaskClient) -> None:
    with pytest.raises(UnknownPlanError, match=r"unknown plan 'platinum' \(known plans: free, pro"):
        client.get("/typo-plan")


def test_unknown_feature_fails_clearly_at_request(app: Flask, client: FlaskClient) -> None:
    with pytest.raises(LatticeError, match=r"unknown feature 'exports'.*known features: export,"):
        client.get("/typo-feature")


def test_unknown_names_in_helpers_fail_clearly(app: Flask, user_id: int) -> None:
    with app.test_request_context():
        with pytest.raises(UnknownPlanError):
            billing_of(app).has_plan("gold")
        with pytest.raises(LatticeError, match="unknown feature"):
            billing_of(app).has_feature("gold")


# -- denials -----------------------------------------------------------------------------------


def test_anonymous_goes_to_login_manager_unauthorized(app: Flask, client: FlaskClient) -> None:
    assert client.get("/pro").status_code == 401

    app.login_manager.login_view = "open_view"  # type: ignore[attr-defined]
    response = client.get("/pro")
    assert response.status_code == 302
    assert urlsplit(response.location).path == "/open"


def test_anonymous_does_not_query_the_lattice_tables(app: Flask, client: FlaskClient) -> None:
    with lattice_queries(app) as statements:
        client.get("/pro")
    assert statements == []


def test_browser_denial_flashes_and_redirects_to_pricing(
    app: Flask, client: FlaskClient, user_id: int
) -> None:
    response = client.get("/team?tab=2", headers={"Accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 302
    with app.test_request_context():
        pricing = urlsplit(app.url_for("lattice.pricing"))
    location = urlsplit(response.location)
    assert location.path == pricing.path
    assert parse_qs(location.query)["next"] == ["/team?tab=2"]
    with client.session_transaction() as session:
        assert session["_flashes"] == [("warning", "This page needs the Team plan or higher.")]


def test_browser_denial_next_is_the_plain_path_without_a_query(
    app: Flask, client: FlaskClient, user_id: int
) -> None:
    response = client.get("/export")
    assert parse_qs(urlsplit(response.location).query)["next"] == ["/export"]


def test_json_body_request_gets_402(app: Flask, client: FlaskClient, user_id: int) -> None:
    response = client.post("/pro", json={"x": 1})
    assert response.status_code == 402
    assert response.json == {"error": "plan_required", "required": "pro", "current": "free"}


def test_accept_preferring_html_over_json_gets_the_redirect(
    app: Flask, client: FlaskClient, user_id: int
) -> None:
    headers = {"Accept": "text/html,application/json;q=0.5"}
    assert client.get("/pro", headers=headers).status_code == 302


def test_custom_denial_handler_replaces_every_denial(
    app: Flask, client: FlaskClient, user_id: int
) -> None:
    seen: list[Denial] = []

    @billing_of(app).plan_required_handler
    def upsell(denial: Denial) -> tuple[str, int]:
        seen.append(denial)
        return f"upgrade to {denial.required}", 403

    add_subscription(app, user_id, plan_key="pro")
    response = client.get("/team", headers=JSON)
    assert (response.status_code, response.text) == (403, "upgrade to team")
    assert client.get("/seats").text == "upgrade to seats"
    assert [(d.kind, d.required, d.current and d.current.key) for d in seen] == [
        ("plan", "team", "pro"),
        ("feature", "seats", "pro"),
    ]
    assert seen[0].billable is not None
    assert seen[0].billable.key == f"user:{user_id}"


def test_custom_handler_is_not_used_for_anonymous(app: Flask, client: FlaskClient) -> None:
    billing_of(app).plan_required_handler(lambda denial: ("custom", 403))
    assert client.get("/pro").status_code == 401


# -- the custom access policy ------------------------------------------------------------------


def test_custom_policy_decides_the_plan(app: Flask, client: FlaskClient, user_id: int) -> None:
    calls: list[tuple[str, datetime]] = []

    @billing_of(app).access_policy
    def past_due_is_read_only(subscription: SubscriptionState, now: datetime) -> str | None:
        calls.append((subscription.status, now))
        if subscription.status == "past_due":
            return "free"
        return subscription.plan_key if subscription.status == "active" else None

    add_subscription(app, user_id, plan_key="team", status="past_due")
    response = client.get("/pro", headers=JSON)
    assert response.json == {"error": "plan_required", "required": "pro", "current": "free"}
    assert [status for status, _ in calls] == ["past_due"]
    assert calls[0][1].tzinfo is not None


def test_custom_policy_can_fall_back_on_the_default(
    app: Flask, client: FlaskClient, user_id: int
) -> None:
    from flask_lattice.access.gates import default_policy

    comped: list[str] = []

    @billing_of(app).access_policy
    def comp_accounts(subscription: SubscriptionState, now: datetime) -> str | None:
        if subscription.stripe_subscription_id in comped:
            return "team"
        return default_policy(subscription, now)

    comped.append(add_subscription(app, user_id, plan_key="pro", status="canceled"))
    assert client.get("/team").status_code == 200

    other = make_user(app, email="bob@example.com")
    add_subscription(app, other, plan_key="pro", status="canceled")
    login(client, other)
    assert client.get("/pro", headers=JSON).status_code == 402


def test_custom_policy_returning_an_unknown_plan_fails_clearly(
    app: Flask, client: FlaskClient, user_id: int
) -> None:
    billing_of(app).access_policy(lambda subscription, now: "gold")
    add_subscription(app, user_id)
    with pytest.raises(UnknownPlanError, match="access policy returned plan 'gold'"):
        client.get("/pro")


def test_rows_on_a_plan_no_longer_in_the_catalog_grant_nothing(
    app: Flask, client: FlaskClient, user_id: int
) -> None:
    add_subscription(app, user_id, plan_key="legacy_gold")
    add_subscription(app, user_id, plan_key=None)
    response = client.get("/pro", headers=JSON)
    assert response.json == {"error": "plan_required", "required": "pro", "current": "free"}


# -- async views -------------------------------------------------------------------------------


def test_async_views_stay_coroutine_functions(app: Flask) -> None:
    view: Any = app.view_functions["async_pro_view"]
    assert inspect.iscoroutinefunction(view)
    assert view.__name__ == "async_pro_view"


def test_async_views_are_gated_like_sync_ones(
    app: Flask, client: FlaskClient, user_id: int
) -> None:
    refused = client.get("/async-pro", headers=JSON)
    assert refused.status_code == 402
    assert refused.json == {"error": "plan_required", "required": "pro", "current": "free"}
    redirected = client.get("/async-pro")
    assert redirected.status_code == 302
    assert urlsplit(redirected.location).path.endswith("/pricing")
    add_subscription(app, user_id)
    admitted = client.get("/async-pro")
    assert (admitted.status_code, admitted.text) == (200, "async pro content")


def test_async_views_send_anonymous_to_login(app: Flask, client: FlaskClient) -> None:
    assert client.get("/async-pro").status_code == 401


# -- helpers in views and templates; one query per request ---------------------------------------

CHECKS = """
{%- set plan = lattice_current_plan() -%}
plan={{ plan.key if plan else 'none' }}
pro={{ lattice_has_plan('pro') }} team={{ lattice_has_plan('team') }}
export={{ lattice_has_feature('export') }} seats={{ lattice_has_feature('seats') }}
plans={{ lattice_plans | map(attribute='key') | join(',') }}
"""
ROW = """
{%- set sub = lattice_subscription() -%}
sub={{ sub.status if sub else 'none' }} raw={{ sub.raw.get('id') if sub else 'none' }}
"""


@pytest.fixture
def helper_views(app: Flask) -> None:
    billing = billing_of(app)

    @app.get("/dashboard")
    @requires_plan("pro")
    @requires_feature("export")
    def dashboard() -> str:
        checks = [
            billing.has_plan("pro"),
            billing.has_plan("team"),
            billing.has_feature("export"),
            billing.current_plan() is not None,
        ]
        return render_template_string(CHECKS) + f"checks={checks}"

    @app.get("/account")
    def account() -> str:
        return render_template_string(CHECKS + ROW)


def test_template_helpers_render_the_effective_plan(
    app: Flask, client: FlaskClient, user_id: int, helper_views: None
) -> None:
    add_subscription(app, user_id, status="past_due")
    page = client.get("/account").text
    assert "plan=pro" in page
    assert "pro=True team=False" in page
    assert "export=True seats=False" in page
    assert "sub=past_due" in page
    assert "plans=free,pro,team" in page


def test_template_helpers_for_anonymous(
    app: Flask, client: FlaskClient, helper_views: None
) -> None:
    page = client.get("/account").text
    assert "plan=none" in page
    assert "pro=False" in page
    assert "sub=none" in page


def test_subscription_helper_reports_the_ended_row_when_nothing_is_live(
    app: Flask, client: FlaskClient, user_id: int, helper_views: None
) -> None:
    now = utcnow()
    add_subscription(app, user_id, status="canceled", current_period_start=now - timedelta(days=60))
    add_subscription(app, user_id, status="unpaid", current_period_start=now - timedelta(days=30))
    page = client.get("/account").text
    assert "plan=free" in page
    assert "sub=unpaid" in page


def test_any_number_of_checks_cost_one_query(
    app: Flask, client: FlaskClient, user_id: int, helper_views: None
) -> None:
    add_subscription(app, user_id, plan_key="team")
    add_subscription(app, user_id, plan_key="pro", status="canceled")
    with lattice_queries(app) as statements:
        response = client.get("/dashboard")
    assert response.status_code == 200
    assert "checks=[True, True, True, True]" in response.text
    assert len(statements) == 1, statements
    assert "FROM lattice_subscriptions" in statements[0]
    assert "raw" not in statements[0], "the check reads only the columns it needs"

    with lattice_queries(app) as statements:
        client.get("/dashboard")
    assert len(statements) == 1, "the cache is per request, not per process"


def test_the_full_row_is_loaded_once_and_only_when_asked_for(
    app: Flask, client: FlaskClient, user_id: int
) -> None:
    billing = billing_of(app)

    @app.get("/row")
    @requires_plan("pro")
    def row_view() -> str:
        row = billing.subscription()
        assert row is not None and row is billing.subscription()
        return f"{row.stripe_subscription_id} {row.raw} items={len(row.items)}"

    add_subscription(app, user_id, plan_key="team", status="canceled")
    granting = add_subscription(app, user_id, raw={"object": "subscription"})
    with lattice_queries(app) as statements:
        response = client.get("/row")
    assert response.text == f"{granting} {{'object': 'subscription'}} items=0"
    snapshot, row, *on_use = statements
    assert "raw" not in snapshot
    assert "WHERE lattice_subscriptions.id =" in row
    assert len(on_use) == 2, "items and raw load when used, once"


def test_template_subscription_helper_is_the_full_row(
    app: Flask, client: FlaskClient, user_id: int, helper_views: None
) -> None:
    add_subscription(app, user_id, raw={"id": "sub_x"})
    assert "sub=active raw=sub_x" in client.get("/account").text


def test_access_reflects_new_rows_on_the_next_request(
    app: Flask, client: FlaskClient, user_id: int
) -> None:
    assert client.get("/pro", headers=JSON).status_code == 402
    add_subscription(app, user_id)
    assert client.get("/pro", headers=JSON).status_code == 200


def test_gated_requests_answer_with_stripe_unreachable(
    app: Flask, client: FlaskClient, user_id: int
) -> None:
    with pytest.raises(stripe.APIConnectionError):
        get_state(app).stripe.client.v1.customers.list()
    add_subscription(app, user_id, plan_key="pro")
    assert client.get("/pro").text == "pro content"
    assert client.get("/team", headers=JSON).status_code == 402
    assert client.get("/export").text == "export content"


# -- one answer for the gates and the status pages ----------------------------------------------


def test_status_json_agrees_with_the_gates_past_the_grace_period(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(LATTICE_PAST_DUE_GRACE=timedelta(days=3))
    install_gated_views(app)
    client = app.test_client()
    user_id = make_user(app)
    now = utcnow()
    add_subscription(
        app,
        user_id,
        status="past_due",
        current_period_start=now - timedelta(days=2),
        current_period_end=now + timedelta(days=28),
    )
    login(client, user_id)
    assert client.get("/pro").status_code == 200
    assert _without_revision(client.get("/billing/status.json").json) == {
        "plan": "pro",
        "plan_name": "Pro",
        "status": "past_due",
        "active": True,
    }
    with time_machine.travel(now + timedelta(days=1, seconds=1), tick=False):
        login(client, user_id)
        assert client.get("/pro", headers=JSON).status_code == 402
        assert _without_revision(client.get("/billing/status.json").json) == {
            "plan": "free",
            "plan_name": "Free",
            "status": "past_due",
            "active": False,
        }


def test_status_json_follows_a_custom_policy(app: Flask, client: FlaskClient, user_id: int) -> None:
    billing_of(app).access_policy(lambda subscription, now: "team")
    add_subscription(app, user_id, status="canceled")
    assert client.get("/team").status_code == 200
    assert _without_revision(client.get("/billing/status.json").json) == {
        "plan": "team",
        "plan_name": "Team",
        "status": "canceled",
        "active": True,
    }


def test_rows_projected_before_the_billable_was_known_count_once_it_is(
    app: Flask, client: FlaskClient, user_id: int
) -> None:
    add_subscription(app, user_id, billable_key=None, stripe_customer_id="cus_early")
    assert client.get("/pro", headers=JSON).status_code == 402
    with app.app_context():
        Projector.for_app().link_customer("cus_early", f"user:{user_id}")
        host(app).db.session.commit()
    assert client.get("/pro").status_code == 200


def test_live_subscription_asks_stripes_status_not_the_access_policy(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(LATTICE_PAST_DUE_GRACE=timedelta(days=3))
    user_id = make_user(app)
    key = f"user:{user_id}"
    long_past_due = add_subscription(
        app, user_id, status="past_due", current_period_start=utcnow() - timedelta(days=30)
    )
    add_subscription(app, user_id, plan_key="team", status="canceled")
    with app.app_context():
        live = live_subscription(key)
        assert live is not None and live.stripe_subscription_id == long_past_due
    trial = add_subscription(app, user_id, plan_key="team", status="trialing")
    with app.app_context():
        live = live_subscription(key)
        assert live is not None and live.stripe_subscription_id == trial
        assert live_subscription("user:nobody") is None


def test_the_gate_read_is_seen_by_sqlalchemy_and_flask_sqlalchemy(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(SQLALCHEMY_RECORD_QUERIES=True)
    install_gated_views(app)
    client = app.test_client()
    user_id = make_user(app)
    login(client, user_id)
    add_subscription(app, user_id, plan_key="pro")
    executed: list[str] = []
    with app.app_context():
        engine = host(app).db.engine
    listener = lambda conn, cursor, statement, *rest: executed.append(statement)  # noqa: E731
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        recorded: list[str] = []

        @app.after_request
        def keep_recorded(response: Any) -> Any:
            recorded.extend(query.statement for query in get_recorded_queries())
            return response

        assert client.get("/pro").text == "pro content"
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    assert any("FROM lattice_subscriptions" in statement for statement in executed)
    assert any("FROM lattice_subscriptions" in statement for statement in recorded)


def _without_revision(status: dict[str, Any]) -> dict[str, Any]:
    """``status.json`` less its opaque ``revision`` (tested in test_spine_success)."""
    return {key: value for key, value in status.items() if key != "revision"}
