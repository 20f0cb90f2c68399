"""Seats through the real routes: Checkout with seats, swaps that follow the target plan,
seat changes with a preview and a confirm, the ``seats_in_use`` hook, and the one parser.

Team is billed per seat (1 to 50), Pro is flat. The plans here have no trial and changes
are invoiced at once (``always_invoice``), so what the preview shows is charged today.
Stripe's rules for the amounts: https://docs.stripe.com/billing/subscriptions/prorations
and https://docs.stripe.com/billing/subscriptions/quantities
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_lattice.state import get_state
from tests.helpers.spine import session_id_of, signed_in
from tests.helpers.subscriptions import Subscriber, csrf_token, subscribe
from tests.helpers.support import TEST_PLANS

PRO, TEAM = 1200, 4900  # the test catalog's monthly prices, in cents
BAD_NUMBERS = ["5_0", "٣", "+2", "0", "-1", "1e3"]

_FIELD = re.compile(
    r'name="(?P<name>preview|plan|interval|subscription|quantity)" value="(?P<value>[^"]*)"'
)
_AMOUNT = re.compile(
    r'data-testid="(?P<id>(?:swap|seats)-[a-z-]+)" data-amount="(?P<amount>-?\d+)"'
)
_QUANTITY = re.compile(r'data-testid="swap-quantity" data-quantity="(\d+)"')
_LINE = re.compile(r'data-testid="(?:swap|seats)-line">.*?data-amount="(-?\d+)"', re.DOTALL)


@pytest.fixture
def app(app_factory: Callable[..., Flask], sandbox: Any) -> Flask:
    """The test host without trials, invoicing every change at once."""
    plans = [
        {key: value for key, value in plan.items() if key != "trial_days"} for plan in TEST_PLANS
    ]
    return app_factory(
        sandbox=sandbox, LATTICE_PLANS=plans, LATTICE_PRORATION_BEHAVIOR="always_invoice"
    )


@pytest.fixture
def in_use(app: Flask) -> list[int]:
    """The seats the host's ``seats_in_use`` hook reports (set ``in_use[0]``)."""
    used = [0]
    get_state(app).hooks.seats_in_use = lambda billable: used[0]
    return used


def page_of(subscriber: Subscriber, path: str) -> tuple[dict[str, str], dict[str, int], str]:
    """GET a preview page: its confirm form fields, its amounts by test id, and its text."""
    page = subscriber.client.get(f"/billing/subscription/{path}")
    assert page.status_code == 200, page.get_data(as_text=True)
    text = page.get_data(as_text=True)
    fields = {match["name"]: match["value"] for match in _FIELD.finditer(text)}
    amounts = {match["id"]: int(match["amount"]) for match in _AMOUNT.finditer(text)}
    return fields, amounts, text


def quantity_shown(text: str) -> int:
    """The quantity a swap preview says it will bill."""
    match = _QUANTITY.search(text)
    assert match is not None, "the preview does not show its quantity"
    return int(match[1])


def line_amounts(text: str) -> list[int]:
    """The proration lines a preview shows, in minor units."""
    return [int(amount) for amount in _LINE.findall(text)]


def checkout(client: FlaskClient, plan: str, **fields: str) -> TestResponse:
    """POST the Checkout form (CSRF from the extension's helper: no page, no Stripe call)."""
    data = {"plan": plan, "interval": "month", "csrf_token": csrf_token(client), **fields}
    return client.post("/billing/checkout", data=data)


def item_of(subscriber: Subscriber) -> tuple[str, int]:
    """The plan item's price lookup key and quantity, as the sandbox holds them."""
    item = subscriber.stripe()["items"]["data"][0]
    return item["price"]["lookup_key"], item["quantity"]


def latest_invoice(subscriber: Subscriber) -> Any:
    return subscriber.sandbox.client().v1.invoices.retrieve(subscriber.stripe()["latest_invoice"])


def upcoming_total(subscriber: Subscriber) -> int:
    invoice = subscriber.sandbox.client().v1.invoices.create_preview(
        {"subscription": subscriber.subscription_id}
    )
    return int(invoice.amount_due)


def writes_since(sandbox: Any, mark: int) -> list[str]:
    """The POST requests the sandbox received after the first ``mark`` requests."""
    return [f"{r.method} {r.path}" for r in sandbox.requests[mark:] if r.method != "GET"]


def json_post(subscriber: Subscriber, path: str, **fields: str) -> Any:
    return subscriber.client.post(
        f"/billing/subscription/{path}",
        data={"csrf_token": csrf_token(subscriber.client), **fields},
        headers={"Accept": "application/json"},
    )


# -- swaps follow the target plan -------------------------------------------------------------


def test_team_with_two_seats_to_pro_bills_one_pro_as_previewed(app: Flask, sandbox: Any) -> None:
    team = subscribe(app, sandbox, plan="team", seats=2)
    assert item_of(team) == ("team_monthly", 2)

    fields, amounts, text = page_of(team, "swap?plan=pro&interval=month")
    assert quantity_shown(text) == 1
    assert "1 × Pro" in text
    assert amounts["swap-recurring-amount"] == PRO
    shown = line_amounts(text)
    assert len(shown) == 2 and sum(shown) < 0  # the credit for 2 seats of Team, 1 × Pro

    assert team.post("swap", **fields).status_code == 303
    assert item_of(team) == ("pro_monthly", 1)
    invoice = latest_invoice(team)
    assert invoice.billing_reason == "subscription_update"
    assert sorted(line.amount for line in invoice.lines.data) == sorted(shown)
    assert invoice.total == sum(shown)
    assert invoice.amount_due == amounts["swap-due-today"] == 0
    charged = [line for line in invoice.lines.data if line.amount > 0]
    assert [(line.quantity, line.description[:22]) for line in charged] == [
        (1, "Remaining time on 1 × ")
    ]
    # The next period bills one Pro, to the cent, as the preview said.
    sandbox.advance(days=32)
    renewal = latest_invoice(team)
    assert renewal.billing_reason == "subscription_cycle"
    assert [(line.quantity, line.amount) for line in renewal.lines.data] == [(1, PRO)]
    assert renewal.subtotal == amounts["swap-recurring-amount"]


def test_pro_to_team_starts_at_the_seats_in_use(
    app: Flask, sandbox: Any, in_use: list[int]
) -> None:
    pro = subscribe(app, sandbox)
    in_use[0] = 3
    fields, amounts, text = page_of(pro, "swap?plan=team&interval=month")
    assert quantity_shown(text) == 3
    assert amounts["swap-recurring-amount"] == 3 * TEAM
    assert pro.post("swap", **fields).status_code == 303
    assert item_of(pro) == ("team_monthly", 3)
    invoice = latest_invoice(pro)
    assert invoice.amount_due == amounts["swap-due-today"] > 0


def test_pro_to_team_without_members_starts_at_the_plans_minimum(app: Flask, sandbox: Any) -> None:
    pro = subscribe(app, sandbox)
    fields, amounts, _ = page_of(pro, "swap?plan=team&interval=month")
    assert amounts["swap-recurring-amount"] == TEAM
    assert pro.post("swap", **fields).status_code == 303
    assert item_of(pro) == ("team_monthly", 1)


def test_the_swap_confirm_applies_the_previewed_quantity(
    app: Flask, sandbox: Any, in_use: list[int]
) -> None:
    pro = subscribe(app, sandbox)
    in_use[0] = 2
    fields, _, _ = page_of(pro, "swap?plan=team&interval=month")
    in_use[0] = 3  # a member joined after the preview: the previewed 2 seats are too few
    response = json_post(pro, "swap", **fields)
    assert response.status_code == 409
    assert response.get_json()["error"] == "seats_refused"
    assert item_of(pro) == ("pro_monthly", 1)
    in_use[0] = 2
    assert pro.post("swap", **fields).status_code == 303
    assert item_of(pro) == ("team_monthly", 2)


# -- seats on a flat plan --------------------------------------------------------------------


def test_quantity_on_pro_is_400_and_nothing_is_sent_to_stripe(app: Flask, sandbox: Any) -> None:
    pro = subscribe(app, sandbox)
    mark = len(sandbox.requests)
    response = json_post(pro, "quantity", quantity="5")
    assert response.status_code == 400
    assert "flat price" in response.get_data(as_text=True)
    preview = pro.client.get("/billing/subscription/seats?quantity=5")
    assert preview.status_code == 400
    assert "flat price" in preview.get_data(as_text=True)
    assert writes_since(sandbox, mark) == []
    assert item_of(pro) == ("pro_monthly", 1)


@pytest.mark.parametrize("field", ["seats", "quantity"])
def test_checkout_for_a_flat_plan_refuses_seats(app: Flask, sandbox: Any, field: str) -> None:
    client, _ = signed_in(app)
    mark = len(sandbox.requests)
    response = checkout(client, "pro", **{field: "3"})
    assert response.status_code == 400
    assert "flat price" in response.get_data(as_text=True)
    assert sandbox.requests[mark:] == []


# -- Checkout with seats -----------------------------------------------------------------------


def test_checkout_for_team_with_three_seats_creates_a_three_seat_subscription(
    app: Flask, sandbox: Any
) -> None:
    client, _ = signed_in(app)
    response = checkout(client, "team", seats="3")
    assert response.status_code == 303, response.get_data(as_text=True)
    session_id = session_id_of(response.headers["Location"])
    stripe = sandbox.client()
    items = stripe.v1.checkout.sessions.line_items.list(session_id).data
    assert [(item.quantity, item.amount_total) for item in items] == [(3, 3 * TEAM)]
    sandbox.complete_checkout(session_id)
    subscription = stripe.v1.subscriptions.retrieve(
        stripe.v1.checkout.sessions.retrieve(session_id).subscription
    )
    assert subscription["items"]["data"][0]["quantity"] == 3
    invoice = stripe.v1.invoices.retrieve(subscription["latest_invoice"])
    assert invoice.amount_paid == 3 * TEAM


def test_checkout_for_team_defaults_to_the_seats_in_use(
    app: Flask, sandbox: Any, in_use: list[int]
) -> None:
    in_use[0] = 4
    team = subscribe(app, sandbox, plan="team")
    assert item_of(team) == ("team_monthly", 4)


def test_checkout_seats_outside_the_plan_or_below_use_are_refused(
    app: Flask, sandbox: Any, in_use: list[int]
) -> None:
    client, _ = signed_in(app)
    mark = len(sandbox.requests)
    too_many = checkout(client, "team", seats="51")
    assert too_many.status_code == 400
    assert "seats must be a whole number from 1 to 50" in too_many.get_data(as_text=True)
    assert checkout(client, "team", quantity="3").status_code == 400
    in_use[0] = 3
    below = checkout(client, "team", seats="2")
    assert below.status_code == 409
    assert "You use 3 seats" in below.get_data(as_text=True)
    assert sandbox.requests[mark:] == []


# -- seat changes: preview, then confirm ---------------------------------------------------------


def test_seat_change_is_previewed_and_charged_exactly_as_shown(app: Flask, sandbox: Any) -> None:
    team = subscribe(app, sandbox, plan="team")
    mark = len(sandbox.requests)
    fields, amounts, text = page_of(team, "seats?quantity=3")
    assert writes_since(sandbox, mark) == ["POST /v1/invoices/create_preview"]
    assert fields["quantity"] == "3" and fields["subscription"] == team.subscription_id
    assert 0 < amounts["seats-due-today"] <= 2 * TEAM
    assert amounts["seats-recurring-amount"] == 3 * TEAM
    assert 'data-testid="seats-line"' in text
    assert item_of(team) == ("team_monthly", 1)

    before = len(team.updates())
    assert team.post("quantity", **fields).status_code == 303
    assert team.post("quantity", **fields).status_code == 303  # a double submit: one change
    assert len(team.updates()) == before + 1
    assert item_of(team) == ("team_monthly", 3)
    invoice = latest_invoice(team)
    assert invoice.billing_reason == "subscription_update"
    assert invoice.amount_due == amounts["seats-due-today"]
    assert upcoming_total(team) == amounts["seats-next-amount"] == 3 * TEAM


def test_posting_a_quantity_without_a_preview_leads_to_the_preview(
    app: Flask, sandbox: Any
) -> None:
    team = subscribe(app, sandbox, plan="team")
    response = team.post("quantity", quantity="3")
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/billing/subscription/seats?quantity=3")
    assert item_of(team) == ("team_monthly", 1)
    assert team.client.get(location).status_code == 200


def test_an_altered_seat_confirm_is_refused(app: Flask, sandbox: Any) -> None:
    team = subscribe(app, sandbox, plan="team")
    fields, _, _ = page_of(team, "seats?quantity=3")
    swap_fields, _, _ = page_of(team, "swap?plan=pro&interval=month")
    tampering = [
        {"quantity": "30"},
        {"preview": "forged"},
        {"preview": swap_fields["preview"]},  # a swap's token is not a seat change's
        {"price": "price_cheap"},
    ]
    for tamper in tampering:
        response = team.post("quantity", **{**fields, **tamper})
        assert response.status_code == 400, tamper
    assert item_of(team) == ("team_monthly", 1)


def test_seats_below_the_members_are_refused(app: Flask, sandbox: Any, in_use: list[int]) -> None:
    in_use[0] = 3
    team = subscribe(app, sandbox, plan="team", seats=3)
    mark = len(sandbox.requests)
    response = team.client.get(
        "/billing/subscription/seats?quantity=2", headers={"Accept": "application/json"}
    )
    assert response.status_code == 409
    assert response.get_json() == {
        "error": "seats_refused",
        "message": "You use 3 seats, so you cannot go down to 2. Remove 1 member first.",
    }
    browser = team.client.get("/billing/subscription/seats?quantity=1")
    assert browser.status_code == 303
    with team.client.session_transaction() as session:
        assert (
            "warning",
            "You use 3 seats, so you cannot go down to 1. Remove 2 members first.",
        ) in session["_flashes"]
    assert json_post(team, "quantity", quantity="2").status_code == 409
    assert writes_since(sandbox, mark) == []

    in_use[0] = 2
    fields, _, _ = page_of(team, "seats?quantity=2")
    in_use[0] = 3  # a member joined after the preview: the confirm checks again
    assert json_post(team, "quantity", **fields).status_code == 409
    assert item_of(team) == ("team_monthly", 3)


def test_seats_above_the_plans_maximum_are_refused(app: Flask, sandbox: Any) -> None:
    team = subscribe(app, sandbox, plan="team")
    response = team.client.get("/billing/subscription/seats?quantity=51")
    assert response.status_code == 400
    assert "quantity must be a whole number from 1 to 50" in response.get_data(as_text=True)


# -- one parser for every number ------------------------------------------------------------------


@pytest.mark.parametrize("raw", BAD_NUMBERS)
def test_bad_numbers_are_refused_everywhere(app: Flask, sandbox: Any, raw: str) -> None:
    team = subscribe(app, sandbox, plan="team")
    newcomer, _ = signed_in(app, "newcomer@example.com")
    mark = len(sandbox.requests)
    answers = {
        "seat preview": team.client.get(
            "/billing/subscription/seats", query_string={"quantity": raw}
        ),
        "seat change": team.post("quantity", quantity=raw),
        "checkout": checkout(newcomer, "team", seats=raw),
    }
    for where, response in answers.items():
        assert response.status_code == 400, (where, raw)
        field = "seats" if where == "checkout" else "quantity"
        assert f"{field} must be a whole number" in response.get_data(as_text=True), where
    assert sandbox.requests[mark:] == []
    assert item_of(team) == ("team_monthly", 1)


# -- the pricing page and the Jinja helper say "per seat" -----------------------------------------


def test_pricing_says_per_seat_for_per_seat_plans_only(app: Flask, sandbox: Any) -> None:
    client, _ = signed_in(app)
    text = client.get("/billing/pricing").get_data(as_text=True)
    team = text.split('data-plan="team"', 1)[1]
    pro = text.split('data-plan="pro"', 1)[1].split('data-plan="team"', 1)[0]
    assert '$49.00</strong> <span class="lattice-muted">per seat / month' in team
    assert 'name="seats" min="1"' in team and 'max="50"' in team
    assert "per seat" not in pro and 'name="seats"' not in pro
    with app.test_request_context():
        render = app.jinja_env.from_string(
            "{{ lattice_price_label('team', 'month') }}|{{ lattice_price_label('pro', 'year') }}"
            "|{{ lattice_price_label(lattice_plans.get('free'), 'month') }}"
        ).render
        assert render() == "$49.00 per seat / month|$120.00 / year|None"


# -- a failed payment ---------------------------------------------------------------------------


def _fail_the_renewal(subscriber: Subscriber) -> None:
    """Put a card that declines on the subscription and let it renew: it goes past_due."""
    client = subscriber.sandbox.client()
    customer = subscriber.stripe()["customer"]
    failing = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer}
    )
    client.v1.subscriptions.update(
        subscriber.subscription_id, params={"default_payment_method": failing.id}
    )
    subscriber.sandbox.advance(days=32)
    assert subscriber.stripe()["status"] == "past_due"


def test_no_seat_or_plan_change_while_the_last_payment_failed(app: Flask, sandbox: Any) -> None:
    # Stripe applies a change even when its charge fails: on a card that just failed, the
    # seats would be granted unpaid. Cancelling stays possible.
    team = subscribe(app, sandbox, plan="team")
    fields, _, _ = page_of(team, "seats?quantity=3")  # previewed while paid up
    _fail_the_renewal(team)
    mark = len(sandbox.requests)
    for response in (
        json_post(team, "quantity", **fields),
        json_post(team, "quantity", quantity="3"),
        team.client.get(
            "/billing/subscription/seats?quantity=3", headers={"Accept": "application/json"}
        ),
        team.client.get(
            "/billing/subscription/swap?plan=pro&interval=month",
            headers={"Accept": "application/json"},
        ),
    ):
        assert response.status_code == 409
        assert "Your last payment failed" in response.get_json()["message"]
    assert writes_since(sandbox, mark) == []
    assert item_of(team) == ("team_monthly", 1)
    assert team.post("cancel").status_code == 303
    assert team.stripe()["cancel_at_period_end"] is True
