"""Driving Quillnote, the demo, through Flask's test client."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient

from tests.helpers.support import run_worker, serving

PASSWORD = "correct horse battery"


def sign_up(client: FlaskClient, email: str = "ada@example.com", name: str = "Ada") -> None:
    response = client.post("/signup", data={"name": name, "email": email, "password": PASSWORD})
    assert response.status_code == 302, response.text
    assert response.headers["Location"] == "/dashboard"


def subscribe(
    app: Flask, client: FlaskClient, sandbox: Any, plan: str = "pro", **fields: str
) -> None:
    """Pay Checkout for ``plan`` on the sandbox, deliver its webhooks and process them."""
    with serving(app, sandbox):
        data = {"plan": plan, "interval": "month", **fields}
        response = client.post("/billing/checkout", data=data)
        assert response.status_code == 303, response.text
        session_id = urlsplit(response.headers["Location"]).path.rsplit("/", 1)[-1]
        sandbox.complete_checkout(session_id)
        assert sandbox.wait_for_deliveries()
    run_worker(app)
