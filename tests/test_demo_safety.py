"""Quillnote's safe defaults, through the real app: redirects after sign-in, cookies,
sessions that end at logout, the sign-in throttle, kept notes, and the developer page.

Runs on the test database (SQLite and PostgreSQL), the test Redis and the sandbox, with the
fixtures of :mod:`tests.test_demo_app`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from demo_app import settings
from demo_app.extensions import db
from demo_app.models import Note

from .test_demo_app import PASSWORD, client, demo, demo_factory, sign_up

__all__ = ["client", "demo", "demo_factory"]  # the fixtures this module uses

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
