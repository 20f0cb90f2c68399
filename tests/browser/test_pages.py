"""Every page of the demo as a person sees it, at desktop and phone size: a menu that works,
nothing wider than the screen, no serious accessibility violation (axe-core), forms that say
what is wrong and where, and copy that matches what happens.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .audit import audit
from .conftest import Shots
from .demo_process import DemoProcess
from .journey import sign_up, subscribe, write_note

pytestmark = pytest.mark.browser


def open_menu(page: Any, viewport: str) -> None:
    """Make the navigation links reachable: on a phone, through the Menu button."""
    toggle = page.get_by_test_id("nav-toggle")
    if viewport == "mobile":
        expect(toggle).to_be_visible()
        expect(
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Pricing")
        ).to_be_hidden()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
    else:
        expect(toggle).to_be_hidden()


def test_signed_out_pages(page: Any, shots: Shots, viewport: str) -> None:
    page.goto("/")
    shots("landing")
    open_menu(page, viewport)
    nav = page.get_by_role("navigation", name="Main")
    for name in ("Features", "Pricing", "Log in", "Start free"):
        expect(nav.get_by_role("link", name=name)).to_be_visible()
    shots("landing-menu")
    nav.get_by_role("link", name="Pricing").click()
    expect(page).to_have_url(re.compile(r"/billing/pricing"))
    toggle = page.get_by_role("navigation", name="Billing interval")
    expect(toggle.get_by_role("link", name="Monthly")).to_have_attribute("aria-current", "true")
    expect(page.get_by_test_id("trial-team")).to_be_visible()  # a new customer gets the trial
    shots("pricing-signed-out")
    page.goto("/login")
    shots("login")
    page.goto("/no-such-page")
    shots("not-found")


def test_skip_link_is_the_first_stop(page: Any, viewport: str) -> None:
    page.goto("/")
    page.keyboard.press("Tab")
    skip = page.get_by_test_id("skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def test_signup_errors_are_tied_to_their_fields(page: Any, shots: Shots) -> None:
    page.goto("/signup")
    shots("signup")
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_label("Password").fill("short")
    page.get_by_test_id("signup-submit").click()
    expect(page.get_by_test_id("signup-errors")).to_be_visible()
    name = page.get_by_label("Your name")
    expect(name).to_be_focused()  # the first field with an error
    for field, error in (
        ("name", "name-error"),
        ("email", "email-error"),
        ("password", "password-error"),
    ):
        field_input = page.locator(f"#{field}")
        expect(field_input).to_have_attribute("aria-invalid", "true")
        expect(field_input).to_have_attribute("aria-describedby", re.compile(rf"\b{field}-error\b"))
        expect(page.get_by_test_id(error)).to_be_visible()
    expect(page.get_by_label("Email")).to_have_accessible_description(re.compile("valid email"))
    shots("signup-errors")

    # an email that already has an account: the way to log in is a link
    email = sign_up(page, "Edsger Dijkstra")
    page.context.clear_cookies()  # signed out
    page.goto("/signup")
    page.get_by_label("Your name").fill("Edsger")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_test_id("signup-submit").click()
    expect(page.get_by_label("Email")).to_be_focused()
    link = page.get_by_test_id("email-error").get_by_role("link", name="Log in instead?")
    expect(link).to_be_visible()
    shots("signup-email-taken")
    link.click()
    expect(page).to_have_url(re.compile(r"/login"))


def test_signed_in_free_pages(page: Any, shots: Shots, viewport: str) -> None:
    sign_up(page, "Barbara Liskov")
    write_note(page, "A note with a rather long title that must wrap on a phone screen", "Body.")
    shots("dashboard")
    open_menu(page, viewport)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Notes")).to_have_attribute("aria-current", "page")
    for name in ("Export", "Team", "Pricing", "Billing", "Dev"):
        expect(nav.get_by_role("link", name=re.compile(name))).to_be_visible()
    expect(nav.get_by_role("button", name="Log out")).to_be_visible()
    shots("dashboard-menu")
    nav.get_by_role("link", name="Billing").click()
    expect(page).to_have_url(re.compile(r"/account/billing"))
    shots("billing-free")
    page.goto("/dashboard")
    page.get_by_test_id("notes").get_by_role("link").first.click()
    shots("note-edit")
    page.goto("/export")  # refused: Pro only
    expect(page).to_have_url(re.compile(r"/billing/pricing"))
    shots("pricing-refused-export")
    page.goto("/dev")
    shots("dev")


def test_text_without_spaces_wraps_and_nothing_waits_unasked(
    page: Any, shots: Shots, viewport: str
) -> None:
    sign_up(page, "Ada " + "N" * 116)  # the longest name the form takes, in one word
    write_note(page, "https://example.com/" + "a" * 180, "A pasted link as the title.")
    shots("long-text-dashboard")  # the audit refuses a page that scrolls sideways
    page.goto("/account/billing")
    expect(page.get_by_test_id("billing-waiting")).to_be_hidden()  # nothing is pending
    shots("long-text-billing")


def test_export_download_name_matches_the_page(page: Any, shots: Shots) -> None:
    sign_up(page, "Frances Allen")
    write_note(page, "Groceries", "eggs, flour")
    subscribe(page, "pro")
    expect(page.get_by_test_id("success-message")).to_contain_text("Thanks for supporting")
    page.goto("/export")
    promised = page.get_by_test_id("export-filename").text_content()
    shots("export")
    with page.expect_download() as download:
        page.get_by_test_id("download-export").click()
    assert download.value.suggested_filename == promised
    audit(page, "after the download")


def test_the_audit_catches_what_it_is_for(page: Any) -> None:
    page.set_content(
        '<html lang="en"><head><title>Bad</title></head><body><main>'
        '<a href="/somewhere"></a><div style="width:2000px">too wide</div></main></body></html>'
    )
    with pytest.raises(AssertionError) as failed:
        audit(page, "a page made to fail")
    assert "link-name" in str(failed.value)  # axe: a link without a name (serious)
    assert "horizontal scroll" in str(failed.value)


def test_nothing_scrolls_sideways_at_320_px(browser: Any, demo: DemoProcess) -> None:
    """The narrowest common phone: every page, free and paying, fits and passes the audit."""
    context = browser.new_context(
        viewport={"width": 320, "height": 640}, base_url=demo.url, is_mobile=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        for path in ("/", "/billing/pricing", "/signup", "/login"):
            page.goto(path)
            audit(page, "320 px, signed out")
        sign_up(page, "Jean Sammet")
        write_note(page, "Groceries", "eggs, flour, and a very long line without breaks " * 3)
        for path in ("/dashboard", "/account/billing", "/dev", "/billing/pricing?interval=year"):
            page.goto(path)
            audit(page, "320 px, free")
        subscribe(page, "pro")
        for path, shown in (
            ("/account/billing", "subscription-card"),
            ("/billing/subscription/swap?plan=team&interval=year", "swap-preview"),
            ("/export", "export-title"),
            ("/billing/pricing?interval=year", "switch-pro"),
        ):
            page.goto(path)
            expect(page.get_by_test_id(shown)).to_be_visible()
            audit(page, "320 px, Pro")
    finally:
        context.close()
