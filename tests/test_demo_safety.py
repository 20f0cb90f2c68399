"""Quillnote's safe defaults, through the real app: redirects after sign-in, cookies,
sessions that end at logout, the sign-in throttle, kept notes, and the developer page.

Runs on the test database (SQLite and PostgreSQL), the test Redis and the sandbox, with the
fixtures of :mod:`tests.test_demo_app`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

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
