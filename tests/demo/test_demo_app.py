"""Quillnote, the demo SaaS, through Flask's test client: accounts, notes, gating, billing.

The app is the real ``demo_app.create_app()`` on the test database (SQLite and PostgreSQL),
the test Redis and the sandbox. Paid states are reached the real way: Checkout paid on the
sandbox's hosted page, the webhooks delivered to the app served over HTTP, and a worker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from demo_app import settings
from demo_app.extensions import db
from demo_app.models import Note, User
from demo_app.presentation import money
from flask_lattice.models import Subscription
from tests.helpers.demo import PASSWORD, sign_up, subscribe
from tests.helpers.support import locked_for_writes, run_worker, serving

# -- accounts ------------------------------------------------------------------------------


def test_sign_up_stores_a_password_hash_and_signs_in(demo: Flask, client: FlaskClient) -> None:
    sign_up(client)
    with demo.app_context():
        user = db.session.scalar(sa.select(User))
        assert user is not None
        assert user.email == "ada@example.com"
        assert PASSWORD not in user.password_hash
        assert user.check_password(PASSWORD)
        assert not user.check_password("wrong password")
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert "Your notes" in page.text


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "", "email": "a@example.com", "password": PASSWORD}, "what to call you"),
        ({"name": "A", "email": "not-an-email", "password": PASSWORD}, "valid email"),
        ({"name": "A", "email": "a@example.com", "password": "short"}, "at least 8"),
    ],
)
def test_sign_up_refuses_bad_input(client: FlaskClient, form: dict[str, str], message: str) -> None:
    response = client.post("/signup", data=form)
    assert response.status_code == 400
    assert message in response.text


def test_sign_up_refuses_a_taken_email(client: FlaskClient) -> None:
    sign_up(client)
    client.post("/logout")
    response = client.post(
        "/signup", data={"name": "Eve", "email": "ADA@example.com", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert "already exists" in response.text


def test_log_in_and_out(client: FlaskClient) -> None:
    sign_up(client)
    assert client.post("/logout").status_code == 302
    assert client.get("/dashboard").status_code == 302
    refused = client.post("/login", data={"email": "ada@example.com", "password": "nope-nope"})
    assert refused.status_code == 400
    assert "do not match" in refused.text
    accepted = client.post(
        "/login?next=/export", data={"email": "ada@example.com", "password": PASSWORD}
    )
    assert urlsplit(accepted.headers["Location"]).path == "/export"
    elsewhere = client.post(
        "/login?next=https://evil.example/", data={"email": "a@b.c", "password": "x"}
    )
    assert "evil.example" not in elsewhere.headers.get("Location", "")


def test_forms_need_a_csrf_token(demo_factory: Callable[..., Flask]) -> None:
    app = demo_factory(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    refused = client.post(
        "/signup", data={"name": "A", "email": "a@example.com", "password": PASSWORD}
    )
    assert refused.status_code == 400
    assert "CSRF" in refused.text
    page = client.get("/signup")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    accepted = client.post(
        "/signup",
        data={"name": "A", "email": "a@example.com", "password": PASSWORD, "csrf_token": token[1]},
    )
    assert accepted.status_code == 302
    assert (
        client.post("/billing/checkout", data={"plan": "pro", "interval": "month"}).status_code
        == 400
    )


# -- notes and gating ---------------------------------------------------------------------


def test_free_plan_keeps_three_notes(demo: Flask, client: FlaskClient) -> None:
    sign_up(client)
    for number in range(settings.FREE_NOTE_LIMIT):
        response = client.post("/notes", data={"title": f"Note {number}", "body": "text"})
        assert response.headers["Location"] == "/dashboard"
    refused = client.post("/notes", data={"title": "One too many"})
    assert refused.status_code == 402
    assert 'value="One too many"' in refused.text
    with demo.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Note.id))) == settings.FREE_NOTE_LIMIT
    assert "Upgrade to Pro" in client.get("/dashboard").text


def test_notes_belong_to_their_owner(demo: Flask, client: FlaskClient) -> None:
    sign_up(client)
    client.post("/notes", data={"title": "Private", "body": "mine"})
    with demo.app_context():
        note_id = db.session.scalar(sa.select(Note.id))
    client.post("/logout")
    sign_up(client, "eve@example.com", "Eve")
    assert client.get(f"/notes/{note_id}").status_code == 404
    assert client.post(f"/notes/{note_id}/delete").status_code == 404


@pytest.mark.parametrize("path", ["/export", "/export/quillnote-notes.md", "/team"])
def test_paid_pages_send_free_users_to_pricing(client: FlaskClient, path: str) -> None:
    assert client.get(path).headers["Location"].startswith("/login")
    sign_up(client)
    refused = client.get(path)
    assert refused.status_code == 302
    target = urlsplit(refused.headers["Location"])
    assert target.path == "/billing/pricing"
    assert parse_qs(target.query)["next"] == [path]
    assert "needs" in client.get(refused.headers["Location"]).text


def test_pro_opens_export_but_not_team(demo: Flask, client: FlaskClient, sandbox: Any) -> None:
    sign_up(client)
    client.post("/notes", data={"title": "Groceries", "body": "eggs, flour"})
    subscribe(demo, client, sandbox, "pro")

    export = client.get("/export/quillnote-notes.md")
    assert export.status_code == 200
    assert export.mimetype == "text/markdown"
    promised = re.search(r'data-testid="export-filename">([^<]+)<', client.get("/export").text)
    assert promised is not None  # the page names the file the download gives
    assert export.headers["Content-Disposition"] == f'attachment; filename="{promised[1]}"'
    assert "## Groceries" in export.text
    assert client.get("/team").headers["Location"].startswith("/billing/pricing")
    for number in range(settings.FREE_NOTE_LIMIT + 1):
        client.post("/notes", data={"title": f"More {number}"})
    with demo.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Note.id))) == settings.FREE_NOTE_LIMIT + 2


# -- billing page ---------------------------------------------------------------------------


def test_billing_page_for_a_free_account(client: FlaskClient) -> None:
    sign_up(client)
    page = client.get("/account/billing")
    assert page.status_code == 200
    assert 'data-testid="billing-plan">Free' in page.text
    assert "No invoices yet" in page.text
    assert 'data-testid="see-plans"' in page.text


def test_billing_page_shows_plan_renewal_invoice_and_operations(
    demo: Flask, client: FlaskClient, sandbox: Any
) -> None:
    sign_up(client)
    subscribe(demo, client, sandbox, "team")
    page = client.get("/account/billing").text
    with demo.app_context():
        row = db.session.scalar(sa.select(Subscription))
        assert row is not None
        assert row.status == "trialing"
    assert 'data-testid="billing-plan">Team' in page
    assert 'data-testid="trial-end"' in page
    assert 'data-testid="banner-trialing"' in page
    assert 'data-testid="invoice-row"' in page  # the $0 trial invoice
    for test_id in ("preview-pro-month", "seats-input", "pause", "cancel-at-period-end"):
        assert f'data-testid="{test_id}"' in page
    assert 'name="flow" value="payment_method_update"' in page
    assert 'name="flow" value="subscription_cancel"' in page
    assert client.get("/team").status_code == 200
    full = client.post("/team", data={"email": "grace@example.com"}, follow_redirects=True)
    assert "Every seat is taken" in full.text  # one seat, and the owner holds it


def test_team_seats_follow_the_members_and_a_move_to_pro_bills_one_seat(
    demo: Flask, client: FlaskClient, sandbox: Any
) -> None:
    sign_up(client)
    pricing = client.get("/billing/pricing").text
    assert "$12.00<small> per seat / month" in pricing
    assert "$9.00<small> / month" in pricing
    subscribe(demo, client, sandbox, "team", seats="2")
    with demo.app_context():
        row = db.session.scalar(sa.select(Subscription))
        assert row is not None and row.quantity == 2
        subscription_id = row.stripe_subscription_id
    assert client.post("/team", data={"email": "grace@example.com"}).status_code == 302
    assert 'data-testid="seats-used">2 of 2 seats' in client.get("/team").text

    # The billing page's seat form leads to a preview; below the members is refused.
    page = client.get("/account/billing").text
    assert 'action="/billing/subscription/seats"' in page
    preview = client.get(f"/billing/subscription/seats?quantity=3&subscription={subscription_id}")
    assert 'data-testid="seats-confirm"' in preview.text
    assert "3 × $12.00 = $36.00" in preview.text
    refused = client.get("/billing/subscription/seats?quantity=1", follow_redirects=True)
    assert "You use 2 seats, so you cannot go down to 1" in refused.text

    # Team with 2 seats → Pro: one Pro at $9.00, as the pricing page sells it.
    swap = client.get("/billing/subscription/swap?plan=pro&interval=month").text
    assert 'data-testid="swap-quantity" data-quantity="1">1 × Pro' in swap
    assert (
        'data-testid="swap-recurring-amount" data-amount="900"><span class="amount">$9.00<' in swap
    )
    token = re.search(r'name="preview" value="([^"]+)"', swap)
    assert token is not None
    confirmed = client.post(
        "/billing/subscription/swap",
        data={"preview": token[1], "plan": "pro", "interval": "month"},
    )
    assert confirmed.status_code == 303
    item = sandbox.client().v1.subscriptions.retrieve(subscription_id)["items"]["data"][0]
    assert (item["price"]["lookup_key"], item["quantity"]) == ("quillnote_pro_monthly", 1)


def test_past_due_banner_links_to_the_payment_method_update(
    demo: Flask, client: FlaskClient, sandbox: Any
) -> None:
    sign_up(client)
    subscribe(demo, client, sandbox, "pro")
    with demo.app_context():
        customer_id = db.session.scalar(sa.select(Subscription.stripe_customer_id))
    sandbox.update_payment_method(customer_id, "4000000000000341")
    with serving(demo, sandbox):
        sandbox.advance(days=32)
        assert sandbox.wait_for_deliveries()
    run_worker(demo)
    page = client.get("/dashboard").text
    assert 'data-testid="banner-past_due"' in page
    assert 'data-testid="banner-update-payment-method"' in page
    opened = client.post("/billing/portal", data={"flow": "payment_method_update"})
    assert opened.status_code == 303
    assert opened.headers["Location"].startswith(sandbox.url)
    assert client.get("/export").status_code == 200  # Stripe is still retrying


def test_a_second_checkout_while_stripe_confirms_the_first_goes_to_billing_saying_why(
    demo: Flask, client: FlaskClient, sandbox: Any
) -> None:
    sign_up(client)
    with serving(demo, sandbox):
        response = client.post("/billing/checkout", data={"plan": "pro", "interval": "month"})
        session_id = urlsplit(response.headers["Location"]).path.rsplit("/", 1)[-1]
        sandbox.complete_checkout(session_id)
        assert sandbox.wait_for_deliveries()
    # stored in the inbox, not projected yet (no worker has run)
    pricing = client.get("/billing/pricing").text
    assert 'data-testid="pricing-pending"' in pricing
    assert 'data-testid="choose-pro"' not in pricing
    assert "day free trial" not in pricing  # the customer has a subscription now
    again = client.post("/billing/checkout", data={"plan": "pro", "interval": "month"})
    assert again.status_code == 303
    assert again.headers["Location"] == "/account/billing"
    billing_page = client.get("/account/billing").text
    assert "Stripe already has your payment for Pro" in billing_page
    assert 'data-pending="checkout"' in billing_page
    run_worker(demo)
    pricing = client.get("/billing/pricing").text
    assert 'data-testid="pricing-pending"' not in pricing
    assert 'data-testid="current-plan"' in pricing
    assert "data-pending" not in client.get("/account/billing").text


def test_money_keeps_a_real_minus_sign() -> None:
    assert money(-2400) == "\u2212$24.00"
    assert money(900, "eur") == "€9.00"
    assert money(5, "sek") == "0.05 SEK"
    assert money(None) == "—"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_upgrading_while_the_database_is_locked_shows_a_page_that_says_try_again(
    demo: Flask, client: FlaskClient
) -> None:
    sign_up(client)
    with locked_for_writes(demo):
        response = client.post("/billing/checkout", data={"plan": "pro", "interval": "month"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "Please try again in a moment." in response.text
    assert "Quillnote" in response.text


def test_error_pages_keep_the_errors_headers(client: FlaskClient) -> None:
    response = client.get("/logout")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}
    assert response.mimetype == "text/html" and "Quillnote" in response.text


# -- the developer page and the two modes ---------------------------------------------------------


def test_dev_page_moves_the_sandbox_clock(client: FlaskClient, sandbox: Any) -> None:
    sign_up(client)
    before = sandbox.now()
    assert client.get("/dev").status_code == 200
    moved = client.post("/dev/clock", data={"step": "week"}, follow_redirects=True)
    assert "Sandbox time is now" in moved.text
    assert sandbox.now() - before >= 7 * 86_400
    assert client.post("/dev/clock", data={"step": "fortnight"}).status_code == 400


def test_real_stripe_mode_hides_the_sandbox(demo_factory: Callable[..., Flask]) -> None:
    environ = {
        "STRIPE_SECRET_KEY": "sk_test_from_the_dashboard",
        "STRIPE_WEBHOOK_SECRET": "whsec_from_stripe_listen",
        "REDIS_URL": "redis://127.0.0.1:6379/5",
    }
    app = demo_factory(environ)
    assert app.config["QUILLNOTE_SANDBOX"] is False
    assert app.config["LATTICE_STRIPE_SECRET_KEY"] == "sk_test_from_the_dashboard"
    assert app.config["LATTICE_STRIPE_API_BASE"] is None
    assert app.config["LATTICE_WEBHOOK_SECRETS"] == "whsec_from_stripe_listen"
    client = app.test_client()
    sign_up(client)
    assert client.get("/dev").status_code == 404
    assert "Sandbox mode" not in client.get("/dashboard").text


def test_settings_default_to_the_sandbox_and_the_instance_folder(tmp_path: Any) -> None:
    config = settings.from_environment({}, str(tmp_path))
    assert config["QUILLNOTE_SANDBOX"] is True
    assert config["LATTICE_STRIPE_API_BASE"] == settings.SANDBOX_URL
    assert config["LATTICE_REDIS_URL"] is None
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'quillnote.db'}"
    chosen = settings.from_environment(
        {"REDIS_URL": "redis://cache:6379/2", "DATABASE_URL": "postgresql+psycopg://db/app"},
        str(tmp_path),
    )
    assert chosen["LATTICE_REDIS_URL"] == "redis://cache:6379/2"
    assert chosen["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://db/app"
    again = settings.from_environment({}, str(tmp_path))
    assert config["SECRET_KEY"] == again["SECRET_KEY"]  # kept in the instance folder
