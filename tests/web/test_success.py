"""``GET /billing/success`` and ``GET /billing/status.json`` against the sandbox."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_lattice.models import Subscription
from tests.helpers.spine import (
    post_checkout,
    project_subscription,
    session_id_of,
    signed_in,
)
from tests.helpers.support import host


def _paid_session(app: Flask, sandbox: Any, plan: str = "pro") -> tuple[Any, int, str, str]:
    client, user_id = signed_in(app)
    session_id = session_id_of(post_checkout(client, plan).headers["Location"])
    success_url = sandbox.complete_checkout(session_id)
    return client, user_id, session_id, success_url


def test_success_page_waits_for_the_webhook_and_changes_nothing(app: Flask, sandbox: Any) -> None:
    client, _, session_id, success_url = _paid_session(app, sandbox)
    assert success_url == f"http://localhost/billing/success?session_id={session_id}"
    response = client.get(success_url)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Payment received" in page and "confirming your Pro plan" in page
    assert "fetch(" in page and '"/billing/status.json?waiting_since=' in page  # polls locally
    assert '<meta http-equiv="refresh" content="5">' in page  # without JavaScript
    assert f'href="{success_url}"' in page  # and a link to check again
    assert "<script src" not in page and "stylesheet" not in page  # no external assets
    with app.app_context():
        assert host(app).db.session.scalars(sa.select(Subscription)).all() == []
    status = client.get("/billing/status.json").json
    assert re.fullmatch(r"[0-9a-f]{16}", status.pop("revision"))
    assert status == {
        "plan": "free",
        "plan_name": "Free",
        "status": None,
        "active": False,
    }


def test_success_page_and_status_turn_active_once_the_projection_has_it(
    app: Flask, sandbox: Any
) -> None:
    client, user_id, session_id, success_url = _paid_session(app, sandbox)
    subscription_id = sandbox.client().v1.checkout.sessions.retrieve(session_id).subscription
    before = client.get("/billing/status.json").json["revision"]
    project_subscription(app, user_id, subscription_id)
    page = client.get(success_url).get_data(as_text=True)
    assert "Your Pro plan is active" in page
    assert "fetch(" not in page and "refresh" not in page
    status = client.get("/billing/status.json")
    assert status.headers["Cache-Control"] == "no-store"
    body = status.json
    after = body.pop("revision")
    assert after != before  # pages polling it learn that the projection moved
    assert client.get("/billing/status.json").json["revision"] == after  # and only then
    assert body == {"plan": "pro", "plan_name": "Pro", "status": "active", "active": True}


def test_trial_checkout_says_the_trial_started(app: Flask, sandbox: Any) -> None:
    client, _, _, success_url = _paid_session(app, sandbox, plan="team")
    page = client.get(success_url).get_data(as_text=True)
    assert "Your trial has started" in page and "Team" in page


def test_an_unfinished_checkout_says_so(app: Flask, sandbox: Any) -> None:
    client, _ = signed_in(app)
    session_id = session_id_of(post_checkout(client).headers["Location"])
    page = client.get(f"/billing/success?session_id={session_id}").get_data(as_text=True)
    assert "Checkout was not completed" in page


def test_another_users_session_is_not_found(app: Flask, sandbox: Any) -> None:
    _, _, _, success_url = _paid_session(app, sandbox)
    intruder, _ = signed_in(app, email="eve@example.com")
    post_checkout(intruder)  # the intruder has a customer of its own
    response = intruder.get(success_url)
    assert response.status_code == 404
    assert "Payment received" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 400),
        ("?session_id=", 400),
        ("?session_id=cs_test_doesnotexist", 404),
        ("?session_id=../../v1/customers", 404),
        ("?session_id=sub_123", 404),
        ("?session_id=cs_" + "a" * 300, 404),
    ],
)
def test_missing_unknown_or_malformed_session_ids(
    app: Flask, sandbox: Any, query: str, status: int
) -> None:
    client, _ = signed_in(app)
    response = client.get(f"/billing/success{query}")
    assert response.status_code == status
    assert "session" in response.get_data(as_text=True).lower()


def test_anonymous_success_and_status_are_unauthorized(app: Flask, sandbox: Any) -> None:
    _, _, _, success_url = _paid_session(app, sandbox)
    anonymous = app.test_client()
    assert anonymous.get(success_url).status_code == 401
    status = anonymous.get("/billing/status.json")
    assert status.status_code == 401
    assert status.json["error"] == "unauthorized"
