"""Access end to end: Checkout in the sandbox, webhooks over HTTP, the worker, the gate.

Only public parts are used: the pricing and checkout routes, the sandbox's hosted pages
and clock, webhook delivery to the app served over real HTTP, and a burst RQ worker.
The app's own clock is real time; where a check depends on the app's time, it travels
to the sandbox's time with time-machine.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import time_machine
from flask import Flask
from flask.testing import FlaskClient

from tests.helpers.gates import JSON, install_gated_views
from tests.helpers.spine import post_checkout, session_id_of, signed_in
from tests.helpers.support import login, run_worker, serving

FAILS_ON_CHARGE = "4000000000000341"
GRACE = timedelta(days=3)


def _gated_app(app_factory: Callable[..., Flask], sandbox: Any, **config: Any) -> Flask:
    app = app_factory(sandbox=sandbox, **config)
    install_gated_views(app)
    return app


def _settle(app: Flask, sandbox: Any) -> None:
    """Wait for every webhook to reach the app, then process them all."""
    assert sandbox.wait_for_deliveries(30), "webhooks were not delivered"
    assert {delivery.status for delivery in sandbox.deliveries} == {200}
    run_worker(app)


def _subscribe(app: Flask, client: FlaskClient, sandbox: Any) -> str:
    """Go through Checkout for Pro; returns the Stripe subscription id."""
    response = post_checkout(client, "pro")
    assert response.status_code == 303, response.get_data(as_text=True)
    session_id = session_id_of(response.headers["Location"])
    sandbox.complete_checkout(session_id)
    _settle(app, sandbox)
    session = sandbox.client().v1.checkout.sessions.retrieve(session_id)
    subscription_id: str = session.subscription
    return subscription_id


def _pro_status(client: FlaskClient) -> tuple[int, Any]:
    response = client.get("/pro", headers=JSON)
    return response.status_code, response.json


def _at(moment: int) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


def test_access_opens_after_checkout_survives_a_scheduled_cancel_and_ends_with_the_period(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    app = _gated_app(app_factory, sandbox)
    client, user_id = signed_in(app)
    with serving(app, sandbox):
        assert _pro_status(client) == (
            402,
            {"error": "plan_required", "required": "pro", "current": "free"},
        )

        subscription_id = _subscribe(app, client, sandbox)
        assert _pro_status(client)[0] == 200
        assert client.get("/export").text == "export content"

        stripe = sandbox.client()
        updated = stripe.v1.subscriptions.update(
            subscription_id, params={"cancel_at_period_end": True}
        )
        period_end = int(updated["items"].data[0].current_period_end)
        _settle(app, sandbox)
        assert _pro_status(client)[0] == 200, "a scheduled cancel keeps access"

        # Before Stripe says so, the app's own clock passing the period end closes access.
        with time_machine.travel(_at(period_end - 60), tick=False):
            login(client, user_id)
            assert _pro_status(client)[0] == 200
        with time_machine.travel(_at(period_end), tick=False):
            login(client, user_id)
            assert _pro_status(client)[0] == 402

        # The sandbox's clock passes the period end: Stripe cancels and says so.
        sandbox.advance(to=period_end + 3600)
        _settle(app, sandbox)
        status = stripe.v1.subscriptions.retrieve(subscription_id).status
        assert status == "canceled"
        login(client, user_id)
        assert _pro_status(client) == (
            402,
            {"error": "plan_required", "required": "pro", "current": "free"},
        )


def test_past_due_keeps_access_within_the_grace_period_and_loses_it_after(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    app = _gated_app(app_factory, sandbox, LATTICE_PAST_DUE_GRACE=GRACE)
    client, user_id = signed_in(app)
    with serving(app, sandbox):
        subscription_id = _subscribe(app, client, sandbox)
        assert _pro_status(client)[0] == 200

        stripe = sandbox.client()
        subscription = stripe.v1.subscriptions.retrieve(subscription_id)
        sandbox.update_payment_method(subscription.customer, card=FAILS_ON_CHARGE)
        renewal = int(subscription["items"].data[0].current_period_end)
        sandbox.advance(to=renewal + 7200)  # the renewal is invoiced and its payment fails
        _settle(app, sandbox)
        assert stripe.v1.subscriptions.retrieve(subscription_id).status == "past_due"

        # The grace period runs on the subscription's clock (here the sandbox's), not on
        # the app's wall clock, which stays where it was.
        # (The sandbox's clock runs on in real time, so the check before the end keeps a
        # minute's margin.)
        for moment, expected in (
            (renewal + 7200, 200),
            (renewal + int(GRACE.total_seconds()) - 60, 200),
            (renewal + int(GRACE.total_seconds()), 402),
        ):
            sandbox.advance(to=max(moment, sandbox.now()))
            _settle(app, sandbox)
            login(client, user_id)
            assert _pro_status(client)[0] == expected, _at(moment)


def test_past_due_without_a_grace_setting_keeps_access_while_stripe_retries(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    app = _gated_app(app_factory, sandbox)
    client, user_id = signed_in(app)
    with serving(app, sandbox):
        subscription_id = _subscribe(app, client, sandbox)
        stripe = sandbox.client()
        subscription = stripe.v1.subscriptions.retrieve(subscription_id)
        sandbox.update_payment_method(subscription.customer, card=FAILS_ON_CHARGE)
        renewal = int(subscription["items"].data[0].current_period_end)
        sandbox.advance(to=renewal + 4 * 86400)  # the renewal and a first retry both fail
        _settle(app, sandbox)
        assert stripe.v1.subscriptions.retrieve(subscription_id).status == "past_due"
    login(client, user_id)
    assert _pro_status(client)[0] == 200
