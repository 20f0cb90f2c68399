"""The pricing page and ``POST /billing/checkout`` against the sandbox over real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_wtf.csrf import CSRFProtect

from flask_lattice.models import Customer, Price
from tests.helpers.spine import (
    csrf_token,
    objects,
    post_checkout,
    project_subscription,
    session_id_of,
    signed_in,
    subscribe_in_stripe,
)
from tests.helpers.support import host, locked_for_writes, login, make_user

# -- the pricing page -----------------------------------------------------------------------


def test_pricing_shows_stripe_amounts_for_each_interval(app: Flask, sandbox: Any) -> None:
    page = app.test_client().get("/billing/pricing").get_data(as_text=True)
    assert "$12.00" in page and "$120.00" in page  # pro_monthly / pro_yearly in the sandbox
    assert "$49.00" in page and "$490.00" in page
    assert "14-day free trial" in page
    with app.app_context():
        cached = host(app).db.session.scalars(sa.select(Price.lookup_key)).all()
    assert sorted(key for key in cached if key) == [
        "pro_monthly",
        "pro_yearly",
        "team_monthly",
        "team_yearly",
    ]


def test_pricing_amounts_come_from_the_cache_until_it_expires(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    cached_app = app_factory(sandbox=sandbox)
    uncached_app = app_factory(sandbox=sandbox, LATTICE_PRICE_CACHE_SECONDS=0)
    assert "$12.00" in cached_app.test_client().get("/billing/pricing").get_data(as_text=True)
    product = sandbox.client().v1.products.create(params={"name": "Pro"})
    sandbox.client().v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 1500,
            "currency": "usd",
            "recurring": {"interval": "month"},
            "lookup_key": "pro_monthly",
            "transfer_lookup_key": True,
        }
    )
    assert "$12.00" in cached_app.test_client().get("/billing/pricing").get_data(as_text=True)
    fresh = uncached_app.test_client().get("/billing/pricing").get_data(as_text=True)
    assert "$15.00" in fresh and "$12.00" not in fresh


# SQLite only: there, another process's write locks the whole database (on PostgreSQL a
# refresh only waits for the rows it updates).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_pricing_answers_with_stripe_prices_when_the_cache_cannot_be_written(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with locked_for_writes(app):
        response = app.test_client().get("/billing/pricing")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "$12.00" in page and "$49.00" in page
    assert "could not cache catalog prices" in caplog.text


def test_pricing_marks_the_current_plan(app: Flask, sandbox: Any) -> None:
    client, user_id = signed_in(app)
    project_subscription(app, user_id, "sub_local_pro")
    page = client.get("/billing/pricing").get_data(as_text=True)
    pro = page.split('data-plan="pro"', 1)[1].split("</section>", 1)[0]
    team = page.split('data-plan="team"', 1)[1].split("</section>", 1)[0]
    assert "Current plan" in pro and 'name="plan"' not in pro
    assert "Current plan" not in team and "Switch to Team" in team


def test_anonymous_visitors_see_prices_without_a_current_plan(app: Flask, sandbox: Any) -> None:
    page = app.test_client().get("/billing/pricing").get_data(as_text=True)
    assert "Current plan" not in page
    assert page.count('name="plan"') == 4


# -- starting Checkout ----------------------------------------------------------------------


def test_checkout_creates_a_session_for_the_catalog_price(app: Flask, sandbox: Any) -> None:
    client, user_id = signed_in(app)
    response = post_checkout(client, "pro", "year")
    assert response.status_code == 303
    assert response.headers["Cache-Control"] == "no-store"
    location = response.headers["Location"]
    assert location.startswith(sandbox.url)
    session = sandbox.client().v1.checkout.sessions.retrieve(
        session_id_of(location), params={"expand": ["line_items"]}
    )
    with app.app_context():
        customer = host(app).db.session.scalars(sa.select(Customer)).one()
    assert customer.billable_key == f"user:{user_id}"
    assert session.mode == "subscription"
    assert session.customer == customer.stripe_customer_id
    assert session.client_reference_id == f"user:{user_id}"
    assert session.metadata["lattice_billable"] == f"user:{user_id}"
    assert session.metadata["lattice_plan"] == "pro"
    assert session.line_items.data[0].price.lookup_key == "pro_yearly"
    assert (
        session.success_url == "http://localhost/billing/success?session_id={CHECKOUT_SESSION_ID}"
    )
    assert session.cancel_url == "http://localhost/billing/pricing"
    assert session.allow_promotion_codes is False
    stripe_customer = sandbox.client().v1.customers.retrieve(customer.stripe_customer_id)
    assert stripe_customer.email == "ada@example.com"
    assert stripe_customer.metadata["lattice_billable"] == f"user:{user_id}"


def test_completed_checkout_carries_metadata_and_the_catalog_trial(
    app: Flask, sandbox: Any
) -> None:
    client, user_id = signed_in(app)
    subscription_id = subscribe_in_stripe(client, sandbox, plan="team")
    subscription = sandbox.client().v1.subscriptions.retrieve(subscription_id)
    assert subscription.status == "trialing"
    assert subscription.trial_end - subscription.trial_start == 14 * 86400
    assert subscription.metadata["lattice_billable"] == f"user:{user_id}"
    assert subscription.metadata["lattice_plan"] == "team"


def test_promotion_codes_follow_the_setting(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    app = app_factory(sandbox=sandbox, LATTICE_ALLOW_PROMOTION_CODES=True)
    client, _ = signed_in(app)
    response = post_checkout(client)
    session = sandbox.client().v1.checkout.sessions.retrieve(
        session_id_of(response.headers["Location"])
    )
    assert session.allow_promotion_codes is True


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"plan": "pro", "interval": "month", "price": "price_cheap"}, "prices come from"),
        ({"plan": "pro", "interval": "month", "line_items[0][price]": "x"}, "prices come from"),
        ({"plan": "enterprise", "interval": "month"}, "There is no plan"),
        ({"plan": "free", "interval": "month"}, "is free"),
        ({"plan": "pro", "interval": "week"}, "billed per month or year"),
        ({"plan": "", "interval": ""}, "There is no plan"),
    ],
)
def test_tampered_plan_or_price_is_refused(
    app: Flask, sandbox: Any, fields: dict[str, str], message: str
) -> None:
    client, _ = signed_in(app)
    response = client.post("/billing/checkout", data={"csrf_token": csrf_token(client), **fields})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert objects(sandbox, "checkout.session") == []


def test_a_raw_price_id_of_the_catalog_is_refused_too(app: Flask, sandbox: Any) -> None:
    client, _ = signed_in(app)
    price_id = sandbox.client().v1.prices.list(params={"lookup_keys": ["pro_monthly"]}).data[0].id
    response = post_checkout(client, "pro", "month", price_id=price_id)
    assert response.status_code == 400
    assert objects(sandbox, "checkout.session") == []


def test_anonymous_checkout_is_unauthorized(app: Flask, sandbox: Any) -> None:
    client = app.test_client()
    response = client.post(
        "/billing/checkout",
        data={"plan": "pro", "interval": "month", "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 401
    assert objects(sandbox, "customer") == []


def test_anonymous_checkout_goes_to_the_login_view(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    app = app_factory(sandbox=sandbox)
    app.login_manager.login_view = "login"  # type: ignore[attr-defined]
    app.add_url_rule("/login", "login", lambda: "login")
    client = app.test_client()
    response = client.post(
        "/billing/checkout",
        data={"plan": "pro", "interval": "month", "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert objects(sandbox, "customer") == []


# -- CSRF -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "CSRF token is missing"),
        ("forged", "CSRF token is invalid"),
        ("other-session", "CSRF token is invalid"),
    ],
)
def test_checkout_needs_the_extensions_csrf_token(
    app: Flask, sandbox: Any, token: str | None, message: str
) -> None:
    client, _ = signed_in(app)
    csrf_token(client)  # the session has a token, but the form does not carry it
    data = {"plan": "pro", "interval": "month"}
    if token == "other-session":
        other, _ = signed_in(app, email="eve@example.com")
        data["csrf_token"] = csrf_token(other)
    elif token is not None:
        data["csrf_token"] = token
    response = client.post("/billing/checkout", data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert objects(sandbox, "customer") == []


def test_checkout_accepts_the_token_in_a_header(app: Flask, sandbox: Any) -> None:
    client, _ = signed_in(app)
    token = csrf_token(client)
    response = client.post(
        "/billing/checkout",
        data={"plan": "pro", "interval": "month"},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 303


def test_checkout_uses_flask_wtf_csrfprotect_when_the_host_does(app: Flask, sandbox: Any) -> None:
    CSRFProtect(app)
    client, _ = signed_in(app)
    csrf_token(client)  # the session holds a token; the forms below do not carry it
    missing = client.post("/billing/checkout", data={"plan": "pro", "interval": "month"})
    assert missing.status_code == 400
    assert "The CSRF token is missing." in missing.get_data(as_text=True)
    forged = client.post(
        "/billing/checkout", data={"plan": "pro", "interval": "month", "csrf_token": "x"}
    )
    assert forged.status_code == 400
    assert "The CSRF token is invalid." in forged.get_data(as_text=True)
    assert objects(sandbox, "customer") == []
    assert post_checkout(client).status_code == 303
    webhook = client.post("/billing/webhook", data=b"{}")
    assert "CSRF" not in webhook.get_data(as_text=True)


def test_flask_wtf_can_be_switched_off_by_the_host(app: Flask, sandbox: Any) -> None:
    CSRFProtect(app)
    app.config["WTF_CSRF_ENABLED"] = False
    client, _ = signed_in(app)
    response = client.post("/billing/checkout", data={"plan": "pro", "interval": "month"})
    assert response.status_code == 303


# -- subscribers, double submits and concurrency --------------------------------------------


def test_subscriber_is_sent_to_the_portal_before_the_webhook_lands(
    app: Flask, sandbox: Any
) -> None:
    client, _ = signed_in(app)
    subscription_id = subscribe_in_stripe(client, sandbox)
    response = post_checkout(client, "team", "month")
    assert response.status_code == 303
    assert response.headers["Cache-Control"] == "no-store"
    assert "/p/session/" in response.headers["Location"]
    (portal,) = objects(sandbox, "billing_portal.session")
    assert portal["flow"]["type"] == "subscription_update"
    assert portal["flow"]["subscription_update"]["subscription"] == subscription_id
    assert len(objects(sandbox, "checkout.session")) == 1


def test_subscriber_in_the_local_projection_is_sent_to_the_portal(app: Flask, sandbox: Any) -> None:
    client, user_id = signed_in(app)
    subscription_id = subscribe_in_stripe(client, sandbox)
    project_subscription(app, user_id, subscription_id, status="past_due")
    response = post_checkout(client, "pro", "year")
    assert "/p/session/" in response.headers["Location"]
    (portal,) = objects(sandbox, "billing_portal.session")
    assert portal["flow"]["subscription_update"]["subscription"] == subscription_id


def test_double_submit_makes_one_customer_and_one_session(app: Flask, sandbox: Any) -> None:
    client, _ = signed_in(app)
    first = post_checkout(client)
    second = post_checkout(client)
    assert first.headers["Location"] == second.headers["Location"]
    assert len(objects(sandbox, "customer")) == 1
    assert len(objects(sandbox, "checkout.session")) == 1


def test_after_a_canceled_subscription_a_new_checkout_gets_a_new_session(
    app: Flask, sandbox: Any
) -> None:
    client, _ = signed_in(app)
    subscription_id = subscribe_in_stripe(client, sandbox, plan="team")
    sandbox.client().v1.subscriptions.cancel(subscription_id)
    response = post_checkout(client, "team", "month")
    assert response.status_code == 303
    sessions = objects(sandbox, "checkout.session")
    assert len(sessions) == 2
    assert {session["status"] for session in sessions} == {"complete", "open"}
    assert len(objects(sandbox, "customer")) == 1
    again = sandbox.complete_checkout(session_id_of(response.headers["Location"]))
    assert again
    newest = next(sub for sub in objects(sandbox, "subscription") if sub["id"] != subscription_id)
    assert newest["status"] == "active"  # no second trial for a returning customer


def test_concurrent_checkouts_share_one_customer_row_and_session(
    app_factory: Any, sandbox: Any
) -> None:
    # Stripe answers 409 to a request whose idempotency key another request is still using
    # (https://docs.stripe.com/api/idempotent_requests); the SDK retries it, so this runs with
    # the production default of LATTICE_STRIPE_MAX_NETWORK_RETRIES.
    app = app_factory(sandbox=sandbox, LATTICE_STRIPE_MAX_NETWORK_RETRIES=2)
    user_id = make_user(app)
    clients = []
    for _ in range(8):
        client = app.test_client()
        login(client, user_id)
        clients.append((client, csrf_token(client)))
    barrier = threading.Barrier(len(clients))
    results: list[Any] = []
    errors: list[BaseException] = []

    def submit(client: Any, token: str) -> None:
        try:
            barrier.wait()
            results.append(
                client.post(
                    "/billing/checkout",
                    data={"plan": "pro", "interval": "month", "csrf_token": token},
                )
            )
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=submit, args=pair) for pair in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [response.status_code for response in results] == [303] * 8
    assert len({response.headers["Location"] for response in results}) == 1
    assert len(objects(sandbox, "customer")) == 1
    assert len(objects(sandbox, "checkout.session")) == 1
    with app.app_context():
        rows = host(app).db.session.scalars(sa.select(Customer)).all()
    assert [row.stripe_customer_id for row in rows] == [objects(sandbox, "customer")[0]["id"]]
