"""Fixtures for the subscription-operation tests: a user subscribed through Checkout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.ctx import RequestContext
from flask.testing import EnvironBuilder, FlaskClient
from werkzeug.test import TestResponse

from flask_lattice.models import Subscription
from flask_lattice.web import csrf
from tests.helpers.spine import objects, session_id_of, signed_in
from tests.helpers.support import host


def csrf_token(client: FlaskClient) -> str:
    """A valid CSRF token for ``client``'s session, made by the extension's own helper."""
    app = client.application
    with client.session_transaction() as session:
        environ = EnvironBuilder(app, "/").get_environ()
        with RequestContext(app, environ, session=session):
            return csrf.csrf_token()


@dataclass
class Subscriber:
    """A signed-in user with a paid subscription in the sandbox."""

    app: Flask
    sandbox: Any
    client: FlaskClient
    user_id: int
    subscription_id: str

    def post(self, path: str, **fields: str) -> TestResponse:
        """POST a subscription form with a valid CSRF token."""
        data = {csrf.FIELD_NAME: csrf_token(self.client), **fields}
        return self.client.post(f"/billing/subscription/{path}", data=data)

    def stripe(self) -> dict[str, Any]:
        """The subscription as the sandbox holds it now."""
        return stripe_subscription(self.sandbox, self.subscription_id)

    def row(self) -> Subscription | None:
        """The local, webhook-projected row (detached snapshot)."""
        with self.app.app_context():
            session = host(self.app).db.session
            row = session.scalar(
                sa.select(Subscription).where(
                    Subscription.stripe_subscription_id == self.subscription_id
                )
            )
            if row is not None:
                session.expunge(row)
            return row

    def updates(self) -> list[dict[str, Any]]:
        """Every ``customer.subscription.updated`` event of this subscription."""
        return [
            event
            for event in objects(self.sandbox, "event")
            if event["type"] == "customer.subscription.updated"
            and event["data"]["object"]["id"] == self.subscription_id
        ]


def stripe_subscription(sandbox: Any, subscription_id: str) -> dict[str, Any]:
    """A subscription as the sandbox holds it now (a copy)."""
    found = next(sub for sub in objects(sandbox, "subscription") if sub["id"] == subscription_id)
    return dict(found)


def subscribe(
    app: Flask,
    sandbox: Any,
    email: str = "ada@example.com",
    plan: str = "pro",
    seats: int | None = None,
) -> Subscriber:
    """Sign a new user in and subscribe them through Checkout (webhooks not processed).

    ``seats`` is posted as the Checkout form's ``seats`` field (per-seat plans only).
    """
    client, user_id = signed_in(app, email)
    data = {"plan": plan, "interval": "month", csrf.FIELD_NAME: csrf_token(client)}
    if seats is not None:
        data["seats"] = str(seats)
    response = client.post("/billing/checkout", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)
    session_id = session_id_of(response.headers["Location"])
    sandbox.complete_checkout(session_id)
    subscription_id = sandbox.client().v1.checkout.sessions.retrieve(session_id).subscription
    return Subscriber(app, sandbox, client, user_id, subscription_id)
