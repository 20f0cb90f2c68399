"""Quillnote's safe defaults, through the real app: redirects after sign-in, cookies,
sessions that end at logout, the sign-in throttle, kept notes, and the developer page.

Runs on the test database (SQLite and PostgreSQL), the test Redis and the sandbox, with the
fixtures of ``tests/demo/conftest.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from werkzeug.test import TestResponse

from demo_app import settings
from demo_app.extensions import db
from demo_app.models import LoginSession, Note, User
from flask_lattice.models import Customer, WebhookEvent
from tests.helpers.demo import PASSWORD, sign_up, subscribe

# -- where sign-in sends you ------------------------------------------------------------


def _lands_on_site(location: str, path: str = "/dashboard") -> None:
    target = urlsplit(location)
    assert target.scheme in ("", "http")
    assert target.netloc in ("", "localhost"), location
    assert target.path == path, location


@pytest.mark.parametrize(
    "query",
    [
        "next=////127.0.0.1:9/phish",
        "next=////h",
        "next=/%5Ch",  # /\h
        "next=%2F%2Fh",  # //h once the query string is decoded
        "next=%252F%252Fh",  # the literal text %2F%2Fh, which a second decoding makes //h
        "next=https:h",
        "next=javascript:",
        "next=javascript:alert(document.cookie)",
        "next=/%0D%0ASet-Cookie:%20stolen=1",  # /\r\n…
        "next=/%09/h",
        "next=https://h/",
    ],
)
def test_sign_in_never_redirects_off_site(client: FlaskClient, query: str) -> None:
    sign_up(client)
    signed_in = client.get(f"/login?{query}")
    assert signed_in.status_code == 302
    _lands_on_site(signed_in.headers["Location"])
    client.post("/logout")
    accepted = client.post(
        f"/login?{query}", data={"email": "ada@example.com", "password": PASSWORD}
    )
    assert accepted.status_code == 302
    _lands_on_site(accepted.headers["Location"])
    assert "stolen" not in str(accepted.headers)


def test_sign_in_keeps_a_next_on_this_site(client: FlaskClient) -> None:
    sign_up(client)
    client.post("/logout")
    accepted = client.post(
        "/login?next=/account/billing%3Ftab%3Dinvoices",
        data={"email": "ada@example.com", "password": PASSWORD},
    )
    _lands_on_site(accepted.headers["Location"], "/account/billing")
    assert urlsplit(accepted.headers["Location"]).query == "tab=invoices"


# -- a note typed in a stale tab ---------------------------------------------------------


def test_a_note_over_the_free_limit_comes_back_with_the_reason(
    demo: Flask, client: FlaskClient
) -> None:
    sign_up(client)
    stale_tab = client.get("/dashboard")  # a tab opened while the account had no notes
    assert 'data-testid="save-note"' in stale_tab.text
    for number in range(settings.FREE_NOTE_LIMIT):  # saved from another tab
        assert client.post("/notes", data={"title": f"Note {number}"}).status_code == 302
    typed = {"title": "Ideas <for> Monday", "body": "Line one\nLine two & three"}
    kept = client.post("/notes", data=typed)
    assert kept.status_code == 402
    assert 'data-testid="note-not-saved"' in kept.text
    assert f"keeps {settings.FREE_NOTE_LIMIT} notes" in kept.text
    assert 'value="Ideas &lt;for&gt; Monday"' in kept.text
    assert ">Line one\nLine two &amp; three</textarea>" in kept.text
    assert 'href="/billing/pricing"' in kept.text
    assert 'action="/notes"' in kept.text  # the same form, to save again after upgrading
    with demo.app_context():
        titles = db.session.scalars(sa.select(Note.title)).all()
    assert len(titles) == settings.FREE_NOTE_LIMIT
    assert typed["title"] not in titles


# -- cookies and sessions ----------------------------------------------------------------


def _set_cookies(response: TestResponse) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


def test_cookies_are_same_site_lax_and_secure_outside_the_sandbox(
    demo_factory: Callable[..., Flask],
) -> None:
    sandboxed = demo_factory().test_client()
    sign_up(sandboxed)
    sandboxed.post("/logout")
    signed_in = sandboxed.post(
        "/login", data={"email": "ada@example.com", "password": PASSWORD, "remember": "1"}
    )
    cookies = _set_cookies(signed_in)
    assert set(cookies) == {"session", "remember_token"}
    for header in cookies.values():
        assert "SameSite=Lax" in header
        assert "HttpOnly" in header
        assert "Secure" not in header  # the sandbox demo runs on plain http://127.0.0.1
    real = demo_factory(
        {"STRIPE_SECRET_KEY": "sk_test_from_the_dashboard", "STRIPE_WEBHOOK_SECRET": "whsec_x"}
    ).test_client()
    signed_up = real.post(
        "/signup", data={"name": "Grace", "email": "grace@example.com", "password": PASSWORD}
    )
    header = _set_cookies(signed_up)["session"]
    assert "SameSite=Lax" in header
    assert "Secure" in header


def test_a_copied_session_cookie_stops_working_at_sign_out(
    demo: Flask, client: FlaskClient
) -> None:
    sign_up(client)
    stolen = client.get_cookie("session")
    assert stolen is not None
    thief = demo.test_client()
    thief.set_cookie("session", stolen.value)
    assert thief.get("/dashboard").status_code == 200  # the copy works while signed in
    client.post("/logout")
    assert thief.get("/dashboard").headers["Location"].startswith("/login")
    assert client.get("/dashboard").headers["Location"].startswith("/login")


def test_a_remember_cookie_stops_working_at_sign_out(demo: Flask, client: FlaskClient) -> None:
    sign_up(client)
    client.post("/logout")
    client.post("/login", data={"email": "ada@example.com", "password": PASSWORD, "remember": "1"})
    remembered = client.get_cookie("remember_token")
    assert remembered is not None
    before = demo.test_client()  # a browser restarted: the remember cookie only
    before.set_cookie("remember_token", remembered.value)
    assert before.get("/dashboard").status_code == 200
    client.post("/logout")
    after = demo.test_client()
    after.set_cookie("remember_token", remembered.value)
    assert after.get("/dashboard").headers["Location"].startswith("/login")


def test_signing_out_ends_only_that_sign_in(demo: Flask, client: FlaskClient) -> None:
    sign_up(client)
    laptop = demo.test_client()
    laptop.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
    client.post("/logout")
    assert laptop.get("/dashboard").status_code == 200
    with demo.app_context():
        assert db.session.scalar(sa.select(sa.func.count(LoginSession.token))) == 1


# -- the developer page ------------------------------------------------------------------


def _event_ids_about(app: Flask, email: str) -> set[str]:
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == email))
        assert user is not None
        customer_id = db.session.scalar(
            sa.select(Customer.stripe_customer_id).where(Customer.billable_key == f"user:{user.id}")
        )
        assert customer_id is not None
        return set(
            db.session.scalars(
                sa.select(WebhookEvent.id).where(WebhookEvent.payload.contains(customer_id))
            )
        )


def test_dev_page_lists_only_the_signed_in_users_webhooks(
    demo: Flask, client: FlaskClient, sandbox: Any
) -> None:
    sign_up(client)
    subscribe(demo, client, sandbox, "pro")
    grace = demo.test_client()
    sign_up(grace, "grace@example.com", "Grace")
    assert "No webhooks about your account yet" in grace.get("/dev").text
    subscribe(demo, grace, sandbox, "pro")
    adas, graces = (
        _event_ids_about(demo, "ada@example.com"),
        _event_ids_about(demo, "grace@example.com"),
    )
    assert adas and graces
    for viewer, own, other in ((client, adas, graces), (grace, graces, adas)):
        page = viewer.get("/dev")
        assert page.status_code == 200
        shown = set(re.findall(r"<code>(evt_[^<]+)</code>", page.text))
        assert shown
        assert shown <= own
        assert not shown & other


# -- the sign-in throttle ----------------------------------------------------------------


def _fail(client: FlaskClient, email: str, address: str = "127.0.0.1") -> int:
    response = client.post(
        "/login",
        data={"email": email, "password": "not the password"},
        environ_base={"REMOTE_ADDR": address},
    )
    return response.status_code


def test_sign_in_is_throttled_per_account(demo: Flask, client: FlaskClient) -> None:
    sign_up(client)
    client.post("/logout")
    for _ in range(5):
        assert _fail(client, "ada@example.com", "10.0.0.1") == 400
    # The sixth try is refused before the password is looked at, even the right one, and
    # from another address.
    refused = client.post(
        "/login",
        data={"email": "Ada@Example.com ", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.text
    assert 'value="Ada@Example.com "' in refused.text  # what was typed stays
    assert 0 < int(refused.headers["Retry-After"]) <= 61  # whole seconds, rounded up
    assert client.get("/dashboard").headers["Location"].startswith("/login")
    assert _fail(client, "grace@example.com", "10.0.0.1") == 400  # other accounts are fine
    with demo.app_context():
        keys = Redis.from_url(demo.config["LATTICE_REDIS_URL"]).keys("*quillnote*")
    assert keys  # counted in the shared Redis, so every web process sees the same counts


def test_sign_in_is_throttled_per_address(client: FlaskClient) -> None:
    for number in range(10):
        assert _fail(client, f"guess{number}@example.com", "10.0.0.3") == 400
    assert _fail(client, "guess-again@example.com", "10.0.0.3") == 429
    assert _fail(client, "guess-again@example.com", "10.0.0.4") == 400


def test_successful_sign_ins_are_not_counted(client: FlaskClient) -> None:
    sign_up(client)
    for _ in range(12):
        assert client.post("/logout").status_code == 302
        signed_in = client.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
        assert signed_in.status_code == 302
    assert client.get("/login").status_code == 302  # signed in; GETs are never counted
