"""Checkout Sessions the app created: recorded, reused while open, never replayed after.

A session expires 24 hours after it is created, or when ``checkout.sessions.expire`` is
called (https://docs.stripe.com/api/checkout/sessions/expire); either way it can no
longer be paid, so a new checkout must get a new open session.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_lattice.sandbox import CheckoutDeclined
from tests.helpers.lifecycle import EventFeed, recorded_sessions, status_of
from tests.helpers.spine import objects, post_checkout, session_id_of, signed_in


def _expire(sandbox: Any, session_id: str, how: str) -> None:
    if how == "clock":
        sandbox.advance(seconds=25 * 3600)
    else:
        sandbox.client().v1.checkout.sessions.expire(session_id)


@pytest.mark.parametrize("how", ["clock", "api"])
def test_a_checkout_after_the_session_expired_gets_a_new_open_session(
    app: Flask, sandbox: Any, how: str
) -> None:
    client, _ = signed_in(app)
    feed = EventFeed(app, sandbox)
    first = post_checkout(client, "pro")
    assert first.status_code == 303
    first_id = session_id_of(first.headers["Location"])
    assert recorded_sessions(app) == {first_id: "open"}

    _expire(sandbox, first_id, how)
    delivered = feed.settle()
    assert "checkout.session.expired" in [event["type"] for event in delivered]
    assert recorded_sessions(app) == {first_id: "expired"}

    second = post_checkout(client, "pro")
    assert second.status_code == 303
    second_id = session_id_of(second.headers["Location"])
    assert second_id != first_id
    stripe_session = sandbox.client().v1.checkout.sessions.retrieve(second_id)
    assert stripe_session.status == "open"
    assert recorded_sessions(app) == {first_id: "expired", second_id: "open"}

    sandbox.complete_checkout(second_id)
    feed.settle()
    assert status_of(client)["plan"] == "pro"
    assert recorded_sessions(app)[second_id] == "complete"


def test_an_expired_session_is_not_replayed_before_its_webhook_lands(
    app: Flask, sandbox: Any
) -> None:
    client, _ = signed_in(app)
    first_id = session_id_of(post_checkout(client, "pro").headers["Location"])
    sandbox.client().v1.checkout.sessions.expire(first_id)  # no webhook delivered
    second_id = session_id_of(post_checkout(client, "pro").headers["Location"])
    assert second_id != first_id
    assert sandbox.client().v1.checkout.sessions.retrieve(second_id).status == "open"
    assert recorded_sessions(app) == {first_id: "expired", second_id: "open"}


def test_a_double_submit_reuses_the_open_session(app: Flask, sandbox: Any) -> None:
    client, _ = signed_in(app)
    first = post_checkout(client, "team", "year").headers["Location"]
    again = post_checkout(client, "team", "year").headers["Location"]
    assert again == first
    assert len(objects(sandbox, "checkout.session")) == 1


def test_two_tabs_for_different_plans_give_one_subscription(app: Flask, sandbox: Any) -> None:
    client, _ = signed_in(app)
    feed = EventFeed(app, sandbox)
    pro_tab = session_id_of(post_checkout(client, "pro").headers["Location"])
    team_tab = session_id_of(post_checkout(client, "team").headers["Location"])
    assert team_tab != pro_tab
    # Opening the second tab expired the first: the billable has one open session.
    statuses = {s["id"]: s["status"] for s in objects(sandbox, "checkout.session")}
    assert statuses == {pro_tab: "expired", team_tab: "open"}

    with pytest.raises(CheckoutDeclined, match="expired"):
        sandbox.complete_checkout(pro_tab)
    sandbox.complete_checkout(team_tab)
    feed.settle()
    assert len(objects(sandbox, "subscription")) == 1
    assert status_of(client)["plan"] == "team"
    assert recorded_sessions(app) == {pro_tab: "expired", team_tab: "complete"}


def test_a_tab_paid_first_sends_the_other_tab_to_the_portal(app: Flask, sandbox: Any) -> None:
    client, _ = signed_in(app)
    pro_tab = session_id_of(post_checkout(client, "pro").headers["Location"])
    sandbox.complete_checkout(pro_tab)  # its webhook has not landed yet
    other = post_checkout(client, "team")
    assert "/p/session/" in other.headers["Location"]
    assert len(objects(sandbox, "subscription")) == 1
