"""The demo's first user is the billing console's operator in sandbox mode."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from tests.helpers.demo import sign_up


def test_the_first_user_operates_the_console_and_dev_links_it(demo: Flask) -> None:
    first, second = demo.test_client(), demo.test_client()
    sign_up(first, "ops@example.com", "Ops")
    sign_up(second, "bob@example.com", "Bob")
    assert first.get("/billing/admin/events").status_code == 200
    page = first.get("/billing/admin/").get_data(as_text=True)
    assert 'class="' in page and "Billing console" in page
    assert 'href="/billing/admin/"' in first.get("/dev").get_data(as_text=True)
    assert second.get("/billing/admin/events").status_code == 404
    assert "/billing/admin/" not in second.get("/dev").get_data(as_text=True)


def test_nobody_operates_the_console_with_real_stripe(
    demo_factory: Callable[..., Flask],
) -> None:
    app = demo_factory(QUILLNOTE_SANDBOX=False)
    client = app.test_client()
    sign_up(client, "ops@example.com", "Ops")
    assert client.get("/billing/admin/events").status_code == 404
