"""The ``/billing/subscription/…`` routes: each operation, each guard, ownership, redirects."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import time_machine
from flask import Flask

from flask_lattice.billing.operations import PREVIEW_MAX_AGE
from flask_lattice.plans import Plan
from flask_lattice.state import get_state
from flask_lattice.web.subscription_views import PENDING_MESSAGE
from tests.helpers.spine import signed_in
from tests.helpers.subscriptions import Subscriber, csrf_token, subscribe

_FIELD = re.compile(r'name="(?P<name>preview|plan|interval|subscription)" value="(?P<value>[^"]*)"')
_AMOUNT = re.compile(r'data-testid="(?P<id>swap-[a-z-]+)" data-amount="(?P<amount>-?\d+)"')


def preview_page(
    subscriber: Subscriber, query: str = "plan=team&interval=month"
) -> tuple[dict[str, str], dict[str, int]]:
    """GET the swap preview: its confirm form fields and its amounts by ``data-testid``."""
    page = subscriber.client.get(f"/billing/subscription/swap?{query}")
    assert page.status_code == 200, page.get_data(as_text=True)
    text = page.get_data(as_text=True)
    assert 'data-testid="swap-confirm"' in text
    fields = {match["name"]: match["value"] for match in _FIELD.finditer(text)}
    amounts = {match["id"]: int(match["amount"]) for match in _AMOUNT.finditer(text)}
    return fields, amounts


def price_of(subscriber: Subscriber) -> str | None:
    lookup_key: str | None = subscriber.stripe()["items"]["data"][0]["price"]["lookup_key"]
    return lookup_key


def flashes(subscriber: Subscriber) -> list[tuple[str, str]]:
    with subscriber.client.session_transaction() as session:
        return list(session.get("_flashes", []))


def upcoming_total(subscriber: Subscriber) -> int:
    invoice = subscriber.sandbox.client().v1.invoices.create_preview(
        {"subscription": subscriber.subscription_id}
    )
    return int(invoice.amount_due)


# -- swap ------------------------------------------------------------------------------------


def test_swap_preview_shows_today_and_next_period_and_confirm_applies_it(
    subscriber: Subscriber,
) -> None:
    fields, amounts = preview_page(subscriber)
    assert fields["plan"] == "team" and fields["interval"] == "month"
    assert fields["subscription"] == subscriber.subscription_id
    # create_prorations: nothing today; the next invoice is Team plus the prorated difference.
    assert amounts["swap-due-today"] == 0
    assert amounts["swap-recurring-amount"] == 4900
    assert 4900 < amounts["swap-next-amount"] <= 4900 + 4900 - 1200
    assert price_of(subscriber) == "pro_monthly"

    response = subscriber.post("swap", **fields)
    assert response.status_code == 303
    assert response.headers["Location"] == "http://localhost/billing/pricing"
    assert ("info", PENDING_MESSAGE) in flashes(subscriber)
    assert price_of(subscriber) == "team_monthly"
    assert upcoming_total(subscriber) == amounts["swap-next-amount"]


def test_swap_with_always_invoice_charges_today_what_was_shown(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    app = app_factory(sandbox=sandbox, LATTICE_PRORATION_BEHAVIOR="always_invoice")
    subscriber = subscribe(app, sandbox)
    fields, amounts = preview_page(subscriber)
    assert 0 < amounts["swap-due-today"] <= 4900 - 1200
    assert amounts["swap-next-amount"] == 4900
    assert subscriber.post("swap", **fields).status_code == 303
    live = subscriber.stripe()
    latest = sandbox.client().v1.invoices.retrieve(live["latest_invoice"])
    assert latest.billing_reason == "subscription_update"
    assert latest.amount_due == amounts["swap-due-today"]


def test_double_submitted_swap_is_one_change(subscriber: Subscriber) -> None:
    fields, _ = preview_page(subscriber)
    before = len(subscriber.updates())
    assert subscriber.post("swap", **fields).status_code == 303
    assert subscriber.post("swap", **fields).status_code == 303
    assert len(subscriber.updates()) == before + 1


def test_swap_preview_refuses_plans_outside_the_catalog(subscriber: Subscriber) -> None:
    queries = [
        "plan=enterprise&interval=month",
        "plan=free&interval=month",
        "plan=team&interval=week",
        "plan=pro&interval=month",  # already on it: a conflict
        "interval=month",
    ]
    codes = [
        subscriber.client.get(
            f"/billing/subscription/swap?{query}", headers={"Accept": "application/json"}
        ).status_code
        for query in queries
    ]
    assert codes == [400, 400, 400, 409, 400]
    assert price_of(subscriber) == "pro_monthly"


def test_tampered_swap_confirm_is_400(subscriber: Subscriber) -> None:
    fields, _ = preview_page(subscriber)
    tampering = [
        {"price": "price_cheap"},
        {"plan": "pro"},
        {"interval": "year"},
        {"preview": "forged"},
        {"preview": ""},
    ]
    for tamper in tampering:
        response = subscriber.post("swap", **{**fields, **tamper})
        assert response.status_code == 400, (tamper, response.get_data(as_text=True))
    assert price_of(subscriber) == "pro_monthly"


def test_a_token_with_another_price_is_refused(subscriber: Subscriber) -> None:
    fields, _ = preview_page(subscriber)
    token = fields["preview"]
    altered = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    response = subscriber.post("swap", **{**fields, "preview": altered})
    assert response.status_code == 400
    assert price_of(subscriber) == "pro_monthly"


def test_an_old_preview_must_be_previewed_again(subscriber: Subscriber) -> None:
    fields, _ = preview_page(subscriber)
    with time_machine.travel(time.time() + PREVIEW_MAX_AGE + 60, tick=False):
        response = subscriber.post("swap", **fields)
        assert response.status_code == 303
        # (read while travelling: the session cookie is signed with the travelled time)
        assert any("expired" in message for _, message in flashes(subscriber))
    assert price_of(subscriber) == "pro_monthly"


# -- downgrade guard -----------------------------------------------------------------------------


def test_downgrade_guard_refuses_with_the_hosts_message(app: Flask, sandbox: Any) -> None:
    calls: list[tuple[Any, Plan, Plan]] = []

    def guard(billable: Any, current: Plan, target: Plan) -> str | None:
        calls.append((billable, current, target))
        return "Remove your team members before moving to Pro." if target.key == "pro" else None

    get_state(app).hooks.downgrade_guard = guard
    subscriber = subscribe(app, sandbox, plan="team")
    # Upgrades and interval changes never ask the guard.
    preview_page(subscriber, "plan=team&interval=year")
    assert calls == []

    browser = subscriber.client.get("/billing/subscription/swap?plan=pro&interval=month")
    assert browser.status_code == 303
    assert ("warning", "Remove your team members before moving to Pro.") in flashes(subscriber)
    api = subscriber.client.get(
        "/billing/subscription/swap?plan=pro&interval=month", headers={"Accept": "application/json"}
    )
    assert api.status_code == 409
    assert api.get_json() == {
        "error": "downgrade_refused",
        "message": "Remove your team members before moving to Pro.",
    }
    billable, current, target = calls[0]
    assert billable.key == f"user:{subscriber.user_id}"
    assert (current.key, target.key) == ("team", "pro")
    assert price_of(subscriber) == "team_monthly"


def test_downgrade_guard_is_checked_again_on_confirm(app: Flask, sandbox: Any) -> None:
    refusal: list[str] = []
    get_state(app).hooks.downgrade_guard = lambda billable, current, target: (
        refusal[0] if refusal else None
    )
    subscriber = subscribe(app, sandbox, plan="team")
    fields, _ = preview_page(subscriber, "plan=pro&interval=month")
    refusal.append("You use 3 seats; Pro has one.")
    response = subscriber.client.post(
        "/billing/subscription/swap",
        data={"csrf_token": csrf_token(subscriber.client), **fields},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 409
    assert response.get_json()["message"] == "You use 3 seats; Pro has one."
    assert price_of(subscriber) == "team_monthly"
    refusal.clear()
    assert subscriber.post("swap", **fields).status_code == 303
    assert price_of(subscriber) == "pro_monthly"


# -- cancel, resume, pause ---------------------------------------------------------------


def test_cancel_at_period_end_then_resume(subscriber: Subscriber) -> None:
    assert subscriber.post("cancel").status_code == 303
    live = subscriber.stripe()
    assert live["cancel_at_period_end"] is True and live["status"] == "active"
    assert subscriber.post("resume").status_code == 303
    live = subscriber.stripe()
    assert live["cancel_at_period_end"] is False and live["cancel_at"] is None


def test_pause_and_unpause_collection(subscriber: Subscriber) -> None:
    assert (
        subscriber.post("pause", behavior="mark_uncollectible", resumes_at="2099-01-01").status_code
        == 303
    )
    pause = subscriber.stripe()["pause_collection"]
    assert pause["behavior"] == "mark_uncollectible"
    assert pause["resumes_at"] == 4070908800
    assert subscriber.post("unpause").status_code == 303
    assert subscriber.stripe()["pause_collection"] is None


def test_pause_guard_refuses_other_behaviors(subscriber: Subscriber) -> None:
    for fields in [{"behavior": "forever"}, {"behavior": "VOID"}, {"behavior": ""}, {}]:
        response = subscriber.post("pause", **fields)
        assert response.status_code == 400, fields
        assert "keep_as_draft" in response.get_data(as_text=True)
    assert subscriber.stripe()["pause_collection"] is None


def test_pause_resumes_at_must_be_a_future_date(subscriber: Subscriber) -> None:
    for resumes_at in ["2001-01-01", "soon", "1"]:
        response = subscriber.post("pause", behavior="void", resumes_at=resumes_at)
        assert response.status_code == 400, resumes_at
    assert subscriber.stripe()["pause_collection"] is None


def test_pause_resumes_at_takes_a_date_or_a_unix_time_and_nothing_else(
    subscriber: Subscriber,
) -> None:
    # A time with an offset once lost its offset: +14:00 paused 14 hours too long.
    for resumes_at in ["2030-01-01T00:00:00+14:00", "2030-01-01T12:00", "2030-W01-1", "2030-001"]:
        response = subscriber.post("pause", behavior="void", resumes_at=resumes_at)
        assert response.status_code == 400, resumes_at
        assert "YYYY-MM-DD" in response.get_data(as_text=True), resumes_at
    assert subscriber.stripe()["pause_collection"] is None
    assert subscriber.post("pause", behavior="void", resumes_at="2030-01-01").status_code == 303
    assert subscriber.stripe()["pause_collection"]["resumes_at"] == 1893456000  # midnight UTC


def test_json_clients_get_202(subscriber: Subscriber) -> None:
    response = subscriber.client.post(
        "/billing/subscription/cancel",
        data={"csrf_token": csrf_token(subscriber.client)},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 202
    assert response.get_json() == {
        "status": "pending",
        "operation": "cancel",
        "subscription": subscriber.subscription_id,
    }


def test_redirects_to_the_configured_billing_page(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    app = app_factory(sandbox=sandbox, LATTICE_RETURN_ENDPOINT="account")
    app.add_url_rule("/account", "account", lambda: "account")
    subscriber = subscribe(app, sandbox)
    response = subscriber.post("cancel")
    assert response.status_code == 303
    assert response.headers["Location"] == "http://localhost/account"


# -- idempotency -----------------------------------------------------------------------------------


def test_double_click_is_one_change_and_later_clicks_are_new_ones(subscriber: Subscriber) -> None:
    before = len(subscriber.updates())
    subscriber.post("cancel", operation_token="render-1")
    subscriber.post("cancel", operation_token="render-1")
    assert len(subscriber.updates()) == before + 1
    subscriber.post("resume", operation_token="render-2")
    subscriber.post("cancel", operation_token="render-3")
    assert len(subscriber.updates()) == before + 3
    assert subscriber.stripe()["cancel_at_period_end"] is True


def test_operation_token_helper_renders_fresh_tokens(app: Flask) -> None:
    with app.test_request_context():
        render = app.jinja_env.from_string("{{ lattice_operation_token() }}").render
        first, second = render(), render()
    assert first != second and len(first) >= 16


# -- login, CSRF and ownership ---------------------------------------------------------------------


_POSTS = ["swap", "quantity", "cancel", "resume", "pause", "unpause"]


def test_posts_need_a_csrf_token(subscriber: Subscriber) -> None:
    for path in _POSTS:
        fields = {"quantity": "2", "behavior": "void"}
        response = subscriber.client.post(f"/billing/subscription/{path}", data=fields)
        assert response.status_code == 400, path
    live = subscriber.stripe()
    assert live["cancel_at_period_end"] is False and live["pause_collection"] is None
    assert live["items"]["data"][0]["quantity"] == 1


def test_anonymous_requests_are_unauthorized(app: Flask) -> None:
    client, _ = signed_in(app, "anonymous@example.com")
    token = csrf_token(client)
    with client.session_transaction() as session:
        session.pop("_user_id")
    for path in _POSTS:
        response = client.post(f"/billing/subscription/{path}", data={"csrf_token": token})
        assert response.status_code == 401, path
    assert client.get("/billing/subscription/swap?plan=team").status_code == 401


def test_no_subscription_is_404(app: Flask) -> None:
    client, _ = signed_in(app, "nobody@example.com")
    response = client.post("/billing/subscription/cancel", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 404


def test_someone_elses_subscription_is_404(app: Flask, sandbox: Any) -> None:
    owner = subscribe(app, sandbox, "owner@example.com")
    intruder = subscribe(app, sandbox, "intruder@example.com")
    before = owner.stripe()
    operations = [
        ("cancel", {}),
        ("quantity", {"quantity": "9"}),
        ("pause", {"behavior": "void"}),
        ("resume", {}),
        ("unpause", {}),
    ]
    for path, fields in operations:
        response = intruder.post(path, subscription=owner.subscription_id, **fields)
        assert response.status_code == 404, path
        missing = intruder.post(path, subscription="sub_does_not_exist", **fields)
        assert missing.status_code == 404, path
    assert owner.stripe() == before
    assert intruder.stripe()["cancel_at_period_end"] is False


def test_someone_elses_subscription_cannot_be_previewed_or_swapped(
    app: Flask, sandbox: Any
) -> None:
    owner = subscribe(app, sandbox, "owner@example.com")
    intruder = subscribe(app, sandbox, "intruder@example.com")
    query = f"plan=team&interval=month&subscription={owner.subscription_id}"
    assert intruder.client.get(f"/billing/subscription/swap?{query}").status_code == 404
    # The owner's own signed preview does not work in another session either.
    fields, _ = preview_page(owner)
    assert intruder.post("swap", **fields).status_code == 404
    assert price_of(owner) == "pro_monthly"


def test_trials_for_new_subscriptions_come_from_the_catalog(app: Flask, sandbox: Any) -> None:
    team = subscribe(app, sandbox, "team@example.com", plan="team")
    live = team.stripe()
    assert live["status"] == "trialing"
    assert live["trial_end"] - live["trial_start"] == 14 * 86_400
    pro = subscribe(app, sandbox, "pro@example.com", plan="pro")
    assert pro.stripe()["status"] == "active" and pro.stripe()["trial_end"] is None
