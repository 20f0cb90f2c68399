"""Helpers for the signup-spine tests: signed-in clients, CSRF tokens, sandbox objects."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from flask_login import FlaskLoginClient
from werkzeug.test import TestResponse

from flask_lattice.models import Customer, Subscription, utcnow
from tests.helpers.support import host, make_user

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_SESSION_ID = re.compile(r"/(cs_[A-Za-z0-9_]+)")


def signed_in(app: Flask, email: str = "ada@example.com") -> tuple[FlaskClient, int]:
    """A test client logged in as a new user; returns the client and the user id."""
    user_id = make_user(app, email=email)
    with app.app_context():
        user = host(app).db.session.get(host(app).User, user_id)
    client = FlaskLoginClient(app, app.response_class, user=user)
    return client, user_id


def csrf_token(client: FlaskClient) -> str:
    """The CSRF token that the pricing page puts in its forms for this client's session."""
    page = client.get("/billing/pricing")
    assert page.status_code == 200, page.get_data(as_text=True)
    match = _TOKEN.search(page.get_data(as_text=True))
    assert match is not None, "the pricing page has no CSRF field"
    return match.group(1)


def post_checkout(
    client: FlaskClient, plan: str = "pro", interval: str = "month", **extra: str
) -> TestResponse:
    """POST the checkout form the way the pricing page's button does."""
    data = {"plan": plan, "interval": interval, "csrf_token": csrf_token(client), **extra}
    return client.post("/billing/checkout", data=data)


def post_portal(client: FlaskClient, **fields: str) -> TestResponse:
    """POST the portal form with a valid CSRF token."""
    return client.post("/billing/portal", data={"csrf_token": csrf_token(client), **fields})


def session_id_of(location: str) -> str:
    """The Checkout Session id in a hosted Checkout URL."""
    match = _SESSION_ID.search(location)
    assert match is not None, location
    return match.group(1)


def objects(sandbox: Any, kind: str) -> list[dict[str, Any]]:
    """Every ``kind`` object the sandbox holds, newest first."""
    with sandbox.core.store.lock:
        return list(sandbox.core.store.all(kind))


def subscribe_in_stripe(client: FlaskClient, sandbox: Any, plan: str = "pro") -> str:
    """Go through Checkout and pay; no webhook is delivered. Returns the subscription id."""
    response = post_checkout(client, plan)
    assert response.status_code == 303, response.get_data(as_text=True)
    session_id = session_id_of(response.headers["Location"])
    sandbox.complete_checkout(session_id)
    session = sandbox.client().v1.checkout.sessions.retrieve(session_id)
    subscription: str = session.subscription
    return subscription


def project_subscription(app: Flask, user_id: int, subscription_id: str, **fields: Any) -> None:
    """Write the row the webhook projection would write for a subscription (test setup)."""
    now = utcnow()
    with app.app_context():
        session = host(app).db.session
        customer = session.query(Customer).filter_by(billable_key=f"user:{user_id}").one_or_none()
        values: dict[str, Any] = {
            "stripe_subscription_id": subscription_id,
            "stripe_customer_id": customer.stripe_customer_id if customer else "cus_unknown",
            "billable_key": f"user:{user_id}",
            "status": "active",
            "plan_key": "pro",
            "current_period_start": now,
            "current_period_end": now + timedelta(days=30),
        }
        values.update(fields)
        session.add(Subscription(**values))
        session.commit()
