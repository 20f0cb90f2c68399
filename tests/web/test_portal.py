"""``POST /billing/portal`` deep links, ownership, redirects, and what reaches the logs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from tests.helpers.spine import (
    csrf_token,
    objects,
    post_checkout,
    post_portal,
    project_subscription,
    signed_in,
    subscribe_in_stripe,
)


def _portal_session(sandbox: Any) -> dict[str, Any]:
    (session,) = objects(sandbox, "billing_portal.session")
    return session


def test_portal_without_a_flow(app: Flask, sandbox: Any) -> None:
    client, _ = signed_in(app)
    subscribe_in_stripe(client, sandbox)
    response = post_portal(client)
    assert response.status_code == 303
    assert response.headers["Cache-Control"] == "no-store"
    session = _portal_session(sandbox)
    assert response.headers["Location"] == session["url"]
    assert session["flow"] is None
    assert session["return_url"] == "http://localhost/billing/pricing"


@pytest.mark.parametrize(
    "flow", ["payment_method_update", "subscription_cancel", "subscription_update"]
)
def test_portal_deep_links(app: Flask, sandbox: Any, flow: str) -> None:
    client, _ = signed_in(app)
    subscription_id = subscribe_in_stripe(client, sandbox)
    response = post_portal(client, flow=flow)
    assert response.status_code == 303
    recorded = _portal_session(sandbox)["flow"]
    assert recorded["type"] == flow
    assert (
        recorded["after_completion"]["redirect"]["return_url"] == "http://localhost/billing/pricing"
    )
    if flow == "payment_method_update":
        assert recorded["subscription_cancel"] is None and recorded["subscription_update"] is None
    else:
        assert recorded[flow]["subscription"] == subscription_id


def test_portal_flow_for_a_named_own_subscription(app: Flask, sandbox: Any) -> None:
    client, user_id = signed_in(app)
    subscription_id = subscribe_in_stripe(client, sandbox)
    project_subscription(app, user_id, subscription_id)
    response = post_portal(client, flow="subscription_cancel", subscription=subscription_id)
    assert response.status_code == 303
    assert (
        _portal_session(sandbox)["flow"]["subscription_cancel"]["subscription"] == subscription_id
    )


def test_another_billables_subscription_is_not_found(app: Flask, sandbox: Any) -> None:
    owner, owner_id = signed_in(app)
    theirs = subscribe_in_stripe(owner, sandbox)
    intruder, _ = signed_in(app, email="eve@example.com")
    subscribe_in_stripe(intruder, sandbox, plan="team")

    def refused() -> bool:
        return all(
            post_portal(intruder, flow=flow, subscription=theirs).status_code == 404
            for flow in ("subscription_cancel", "subscription_update")
        )

    assert refused()  # known to Stripe only: its webhook has not landed
    project_subscription(app, owner_id, theirs)
    assert refused()  # known to the local projection
    assert (
        post_portal(intruder, flow="subscription_cancel", subscription="sub_nope").status_code
        == 404
    )
    assert (
        post_portal(intruder, flow="subscription_cancel", subscription="x' OR 1=1").status_code
        == 404
    )
    assert objects(sandbox, "billing_portal.session") == []


def test_unknown_flow_is_refused(app: Flask, sandbox: Any) -> None:
    client, _ = signed_in(app)
    subscribe_in_stripe(client, sandbox)
    response = post_portal(client, flow="subscription_update_confirm")
    assert response.status_code == 400
    assert "Unknown portal flow" in response.get_data(as_text=True)
    assert objects(sandbox, "billing_portal.session") == []


def test_without_a_customer_or_subscription(app: Flask, sandbox: Any) -> None:
    client, _ = signed_in(app)
    response = post_portal(client)
    assert response.status_code == 400
    assert "no billing account" in response.get_data(as_text=True)
    post_checkout(client)  # now a customer exists, but no subscription
    response = post_portal(client, flow="subscription_cancel")
    assert response.status_code == 400
    assert "no active subscription" in response.get_data(as_text=True)
    assert post_portal(client, flow="payment_method_update").status_code == 303


def test_anonymous_and_csrf(app: Flask, sandbox: Any) -> None:
    anonymous = app.test_client()
    assert post_portal(anonymous).status_code == 401
    client, _ = signed_in(app)
    subscribe_in_stripe(client, sandbox)
    response = client.post("/billing/portal", data={"flow": "subscription_cancel"})
    assert response.status_code == 400
    assert "CSRF token is missing" in response.get_data(as_text=True)
    assert objects(sandbox, "billing_portal.session") == []


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/account", "http://localhost/account"),
        ("http://localhost/settings?tab=billing", "http://localhost/settings?tab=billing"),
        ("https://evil.example/", "http://localhost/billing/pricing"),
        ("//evil.example/x", "http://localhost/billing/pricing"),
        ("https:/evil.example", "http://localhost/billing/pricing"),
        ("/\\evil.example", "http://localhost/billing/pricing"),
        ("javascript:alert(1)", "http://localhost/billing/pricing"),
    ],
)
def test_return_url_stays_on_this_host(
    app: Flask, sandbox: Any, next_url: str, expected: str
) -> None:
    client, _ = signed_in(app)
    post_checkout(client)
    assert post_portal(client, next=next_url).status_code == 303
    assert _portal_session(sandbox)["return_url"] == expected


def test_return_endpoint_setting(app_factory: Callable[..., Flask], sandbox: Any) -> None:
    app = app_factory(sandbox=sandbox, LATTICE_RETURN_ENDPOINT="account")
    app.add_url_rule("/account/billing", "account", lambda: "account")
    client, _ = signed_in(app)
    post_checkout(client)
    post_portal(client)
    assert _portal_session(sandbox)["return_url"] == "http://localhost/account/billing"


def test_no_checkout_or_portal_url_or_secret_key_reaches_the_logs(
    app: Flask, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = signed_in(app)
    csrf_token(client)
    caplog.set_level(logging.DEBUG)
    for name in ("stripe", "urllib3", "flask_lattice", "werkzeug"):
        caplog.set_level(logging.DEBUG, logger=name)
    checkout_url = post_checkout(client, "team").headers["Location"]
    again = post_checkout(client, "team").headers["Location"]
    portal_urls = [
        post_portal(client, flow="payment_method_update").headers["Location"],
        post_portal(client, next="https://evil.example/").headers["Location"],
    ]
    text = caplog.text
    assert "Request to Stripe api" in text and "/v1/billing_portal/sessions" in text
    assert "/v1/checkout/sessions" in text
    for secret in (checkout_url, again, *portal_urls, sandbox.api_key):
        assert secret not in text
    assert "/c/pay/" not in text and "/p/session/" not in text
