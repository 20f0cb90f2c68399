"""Steps shared by the browser journeys: signing up, paying at Checkout, the portal, the clock."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import expect

from .demo_process import DemoProcess

#: How long a webhook may take to travel sandbox → app → queue → worker → page.
WEBHOOK_TIMEOUT = 30.0

CARD_OK = "4242 4242 4242 4242"
CARD_FAILS_ON_CHARGE = "4000 0000 0000 0341"
CARD_INSUFFICIENT_FUNDS = "4000 0000 0000 9995"


def sign_up(page: Any, name: str = "Ada Lovelace") -> str:
    """Create an account through the sign-up form; returns its email."""
    email = f"{name.split(maxsplit=1)[0].lower()}-{uuid.uuid4().hex[:8]}@example.com"
    page.goto("/signup")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_test_id("signup-submit").click()
    expect(page).to_have_url(_path("/dashboard"))
    return email


def write_note(page: Any, title: str, body: str) -> None:
    """Save a note from the dashboard."""
    page.goto("/dashboard")
    page.get_by_placeholder("Title").fill(title)
    page.get_by_placeholder("Write something…").fill(body)
    page.get_by_test_id("save-note").click()
    expect(page.get_by_test_id("notes")).to_contain_text(title)


def choose_plan(page: Any, plan: str, interval: str = "month") -> None:
    """From the pricing page, start Checkout for ``plan``; lands on the sandbox's Checkout."""
    page.goto(f"/billing/pricing?interval={interval}")
    page.get_by_test_id(f"choose-{plan}").click()
    expect(page.get_by_test_id("pay")).to_be_visible()


def pay(page: Any, card: str) -> None:
    """Fill the sandbox's hosted Checkout page and submit it."""
    email = page.get_by_test_id("email")
    if not email.input_value():
        email.fill("ada@example.com")
    page.get_by_test_id("card-number").fill(card)
    page.get_by_test_id("card-expiry").fill("12 / 34")
    page.get_by_test_id("card-cvc").fill("123")
    page.get_by_test_id("pay").click()


def subscribe(page: Any, plan: str, card: str = CARD_OK) -> None:
    """Checkout for ``plan`` and wait on the success page until the webhook made it active."""
    choose_plan(page, plan)
    pay(page, card)
    expect(page).to_have_url(_path("/billing/success"))
    expect(page.get_by_test_id("success-active")).to_be_visible(timeout=WEBHOOK_TIMEOUT * 1000)


def reload_until(page: Any, ready: Callable[[], bool], what: str) -> None:
    """Reload the page until ``ready()`` (a webhook's effect shows), or fail saying ``what``."""
    deadline = time.monotonic() + WEBHOOK_TIMEOUT
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} on {page.url}")
        time.sleep(0.5)
        page.reload()


def visible(page: Any, test_id: str) -> Callable[[], bool]:
    """A check for :func:`reload_until`: the element with ``test_id`` is on the page."""
    return lambda: page.get_by_test_id(test_id).count() > 0


def card_reached_subscription(page: Any) -> Callable[[], bool]:
    """A check for :func:`reload_until` on the developer page: after the latest
    ``customer.updated`` webhook (a new default card) came a ``customer.subscription.updated``."""

    def ready() -> bool:
        cells = page.get_by_test_id("webhook-events").locator("tr td:nth-child(3)")
        kinds = [text.strip() for text in cells.all_text_contents()]
        if "customer.updated" not in kinds:
            return False
        return "customer.subscription.updated" in kinds[: kinds.index("customer.updated")]

    return ready


def advance_clock(page: Any, step: str) -> None:
    """Press one of the developer page's clock buttons (``day``, ``week``, ``period-end``)."""
    page.goto("/dev")
    page.get_by_test_id(f"advance-{step}").click()
    expect(page.get_by_test_id("flash")).to_contain_text("Sandbox time is now")


@contextmanager
def worker_paused(demo: DemoProcess) -> Iterator[None]:
    """Hold the demo's webhook worker still; it resumes when the block ends, whatever happens.

    Never while it holds the database's write lock (in its drain or MRR snapshot): stopped
    there, it would lock every page that writes.
    """
    pid = demo.worker_pid
    deadline = time.monotonic() + WEBHOOK_TIMEOUT
    os.kill(pid, signal.SIGSTOP)
    while demo.database_write_locked():
        os.kill(pid, signal.SIGCONT)
        if time.monotonic() > deadline:
            raise AssertionError("the demo's database stayed locked")
        time.sleep(0.05)
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def mark_page(page: Any) -> None:
    """Leave a mark in the page's window that a reload would erase."""
    page.evaluate("() => { window.__notReloaded = true; }")


def assert_not_reloaded(page: Any) -> None:
    assert page.evaluate("() => window.__notReloaded === true"), "the page was reloaded"


def _path(path: str) -> re.Pattern[str]:
    return re.compile(rf"^https?://[^/]+{re.escape(path)}(\?.*)?(#.*)?$")
