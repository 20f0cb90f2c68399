"""Helpers of the console tests: URLs of every route, CSRF tokens, posts."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

PREFIX = "/billing/admin"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
#: A value for each URL variable of the console's routes.
_SAMPLE_ARGS = {"event_id": "evt_sample", "object_id": "sub_sample", "key": "user:1"}


def console_routes(app: Flask) -> list[tuple[str, str]]:
    """``(method, url)`` of every console route (GET and POST), with sample arguments."""
    found = []
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("lattice_admin."):
            continue
        url = adapter.build(rule.endpoint, {name: _SAMPLE_ARGS[name] for name in rule.arguments})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, url))
    return found


def token(client: FlaskClient) -> str:
    """The CSRF token the console puts in its forms for this client's session."""
    page = client.get(f"{PREFIX}/failed")
    assert page.status_code == 200, page.get_data(as_text=True)
    match = _TOKEN.search(page.get_data(as_text=True))
    assert match is not None, "the console page has no CSRF field"
    return match.group(1)


def post(client: FlaskClient, path: str, **fields: Any) -> TestResponse:
    """POST a console form with a valid CSRF token."""
    return client.post(f"{PREFIX}{path}", data={"csrf_token": token(client), **fields})
