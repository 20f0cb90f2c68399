"""The console is closed by default, hidden from non-operators, and CSRF-protected."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_lattice.models import AdminAudit
from tests.admin.conftest import Console, open_console
from tests.admin.helpers import PREFIX, console_routes
from tests.helpers.spine import signed_in
from tests.helpers.support import host


def test_the_console_has_get_and_post_routes(app: Flask) -> None:
    routes = console_routes(app)
    assert {method for method, _ in routes} == {"GET", "POST"}
    assert len([1 for method, _ in routes if method == "POST"]) >= 5


def test_every_route_is_404_until_the_host_registers_the_hook(app: Flask) -> None:
    client, _ = signed_in(app, "ops@example.com")
    for method, url in console_routes(app):
        response = client.open(url, method=method)
        assert response.status_code == 404, (method, url)
    anonymous = app.test_client()
    for method, url in console_routes(app):
        assert anonymous.open(url, method=method).status_code == 404, (method, url)


def test_every_route_is_404_for_a_non_operator(console: Console) -> None:
    for method, url in console_routes(console.app):
        response = console.customer.open(url, method=method)
        assert response.status_code == 404, (method, url)
    anonymous = console.app.test_client()
    for method, url in console_routes(console.app):
        assert anonymous.open(url, method=method).status_code == 404, (method, url)


def test_every_post_without_a_csrf_token_is_refused(console: Console) -> None:
    posts = [url for method, url in console_routes(console.app) if method == "POST"]
    for url in posts:
        missing = console.operator.post(url, data={"type": "invoice.paid", "confirm": "yes"})
        assert missing.status_code == 400, url
        assert "CSRF" in missing.get_data(as_text=True)
        forged = console.operator.post(url, data={"csrf_token": "forged", "confirm": "yes"})
        assert forged.status_code == 400, url
    with console.app.app_context():
        assert host(console.app).db.session.query(AdminAudit).count() == 0


def test_the_prefix_is_configurable(app_factory: Any, sandbox: Any) -> None:
    app = app_factory(sandbox=sandbox, LATTICE_ADMIN_URL_PREFIX="/ops/billing")
    open_console(app)
    client, _ = signed_in(app, "ops@example.com")
    assert client.get("/ops/billing/events").status_code == 200
    assert client.get(f"{PREFIX}/events").status_code == 404


def test_pages_extend_the_hosts_base_template(
    app_factory: Any, sandbox: Any, tmp_path: Any
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "host.html").write_text(
        "<body class=host-layout>{% block content %}{% endblock %}</body>"
    )
    app = app_factory(sandbox=sandbox, LATTICE_BASE_TEMPLATE="host.html")
    open_console(app)
    client, _ = signed_in(app, "ops@example.com")
    for path in ("/", "/events", "/failed", "/subscriptions", "/revenue", "/audit"):
        page = client.get(f"{PREFIX}{path}")
        assert page.status_code == 200, path
        assert "host-layout" in page.get_data(as_text=True), path


def test_bad_filters_and_cursors_are_400_not_500(console: Console) -> None:
    for query in (
        "status=nope",
        "since=yesterday",
        "after=garbage",
        "after=2026-01-01T00:00:00|",
    ):
        assert console.operator.get(f"{PREFIX}/events?{query}").status_code == 400, query
    assert console.operator.get(f"{PREFIX}/subscriptions?after=x").status_code == 400
    assert console.operator.get(f"{PREFIX}/events/evt_missing").status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        "since=2026-W05-1",  # week date
        "until=20260131",  # basic form
        "since=2026-01-31T00:00:00",  # a time
        "until=2026-02-30",
        "since=%D9%A3%D9%A3%D9%A3%D9%A3-01-01",  # other scripts' digits
    ],
)
def test_a_date_filter_takes_yyyy_mm_dd_only(console: Console, query: str) -> None:
    response = console.operator.get(f"{PREFIX}/events?{query}")
    assert response.status_code == 400
    assert "YYYY-MM-DD" in response.get_data(as_text=True)


def test_the_last_day_there_is_filters_without_overflowing(console: Console) -> None:
    for query in ("until=9999-12-31", "since=9999-12-31", "since=0001-01-01&until=9999-12-31"):
        assert console.operator.get(f"{PREFIX}/events?{query}").status_code == 200, query


@pytest.mark.parametrize("path", ["/audit", "/subscriptions"])
@pytest.mark.parametrize(
    "cursor", ["9999999999999999999", "-9999999999999999999", "-1", "%D9%A3", "1_0", "%201"]
)
def test_an_id_cursor_out_of_range_or_not_in_digits_is_400(
    console: Console, path: str, cursor: str
) -> None:
    response = console.operator.get(f"{PREFIX}{path}?after={cursor}")
    assert response.status_code == 400
    assert "start again from the first page" in response.get_data(as_text=True)
