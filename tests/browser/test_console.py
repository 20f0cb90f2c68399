"""The operations console in Chromium: find a failed event, read its error, replay it,
and watch it turn processed; then the revenue chart.

The host app here is the suite's test host served over real HTTP (the demo cannot be
made to fail an event on purpose); its checkout handler is broken until the test fixes
it, the way a host's bug would be fixed and deployed before a replay.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask, redirect
from flask_login import login_user
from playwright.sync_api import expect

from flask_lattice.models import MrrSnapshot, utcnow
from tests.admin.conftest import OPERATOR_EMAIL, open_console
from tests.helpers.pipeline import deliver, event_statuses, signup
from tests.helpers.support import host, make_user, run_worker, serving

from .conftest import ARTIFACTS, VIEWPORTS, Shots

pytestmark = pytest.mark.browser

CHECKOUT = "checkout.session.completed"


@pytest.fixture
def console_app(app: Flask, sandbox: Any) -> Iterator[tuple[Flask, str, dict[str, bool]]]:
    """The test host with the console open, a sign-in route and a broken handler."""
    open_console(app)
    operator_id = make_user(app, OPERATOR_EMAIL, "Ops")
    broken = {"on": True}

    @host(app).billing.on_event(CHECKOUT)
    def flaky(event: dict[str, Any]) -> None:
        if broken["on"]:
            raise RuntimeError("the welcome e-mail service refused the message")

    def sign_in() -> Any:
        login_user(host(app).db.session.get(host(app).User, operator_id))
        return redirect("/billing/admin/")

    app.add_url_rule("/test-sign-in", "test_sign_in", sign_in)
    with serving(app, sandbox) as base_url:
        sandbox.set_forward_to(None)  # deliveries below go through the test client
        yield app, base_url, broken


def _seed_snapshots(app: Flask) -> None:
    """Ninety days of MRR growing with some churn, as the worker's tick would record."""
    today = utcnow().date()
    with app.app_context():
        session = host(app).db.session
        mrr = 120_000
        for back in range(89, -1, -1):
            new, churned = 2_400 + (back % 7) * 300, 900 + (back % 5) * 400
            mrr += new - churned
            session.add(
                MrrSnapshot(
                    day=today - timedelta(days=back),
                    currency="usd",
                    mrr=mrr,
                    new=new,
                    expansion=300,
                    contraction=100,
                    churned=churned,
                    subscriptions=mrr // 1200,
                )
            )
        session.commit()


def test_an_operator_replays_a_failed_event_from_the_console(
    browser: Any,
    console_app: tuple[Flask, str, dict[str, bool]],
    sandbox: Any,
    request: pytest.FixtureRequest,
) -> None:
    app, base_url, broken = console_app
    start = len(sandbox.events)
    signup(sandbox, "user:ada")
    deliver(app.test_client(), sandbox.events[start:], sandbox.webhook_secret)
    run_worker(app)
    (failed_id,) = [
        event_id for event_id, (status, _) in event_statuses(app).items() if status == "failed"
    ]
    _seed_snapshots(app)

    context = browser.new_context(viewport=VIEWPORTS["desktop"], base_url=base_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    shots = Shots(page, folder)
    try:
        page.goto("/test-sign-in")
        expect(page.get_by_role("heading", name="Billing console")).to_be_visible()
        page.get_by_role("link", name="Inbox").click()
        expect(page.locator("table.lattice-events")).to_contain_text(failed_id)
        shots("inbox", docs="admin-inbox")
        page.get_by_label("Status").select_option("failed")
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(r"status=failed"))
        row = page.locator("table.lattice-events tbody tr", has_text=failed_id)
        expect(row).to_contain_text("failed")
        expect(row).to_contain_text("welcome e-mail service refused")
        shots("inbox-failed")

        row.get_by_role("link", name=failed_id).click()
        expect(page.locator("#last-error")).to_contain_text(
            "RuntimeError: the welcome e-mail service refused the message"
        )
        expect(page.locator("#event-status")).to_have_text("failed")
        payload = page.locator("pre").last.inner_text()
        # A completed session's url is already null; an open one's would be redacted.
        assert re.search(r'"url": (null|"\[redacted\]")', payload), payload
        shots("event-failed")

        broken["on"] = False  # the host's fix is deployed
        page.get_by_role("button", name="Replay this event").click()
        expect(page.get_by_role("status")).to_contain_text("queued for processing")
        run_worker(app)
        deadline = time.monotonic() + 30
        while page.locator("#event-status").inner_text() != "processed":
            assert time.monotonic() < deadline, "the replayed event never turned processed"
            page.reload()
        expect(page.locator("#event-status")).to_have_text("processed")
        shots("event-processed")

        page.get_by_role("link", name="Revenue").click()
        expect(page.locator("svg.lattice-mrr-chart polyline")).to_be_visible()
        shots("revenue", docs="admin-revenue")
        page.get_by_role("link", name="Audit").click()
        expect(page.locator("table")).to_contain_text(failed_id)
    finally:
        context.close()
