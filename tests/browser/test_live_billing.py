"""Pages that follow Stripe without a reload, and say honestly what they are waiting for.

The demo's webhook worker is paused (SIGSTOP) to hold a confirmation back: the webhooks are
received and stored, but not projected until the worker is resumed (SIGCONT).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import Shots
from .demo_process import DemoProcess
from .journey import (
    CARD_OK,
    WEBHOOK_TIMEOUT,
    assert_not_reloaded,
    choose_plan,
    mark_page,
    pay,
    reload_until,
    sign_up,
    subscribe,
    visible,
    worker_paused,
)

pytestmark = pytest.mark.browser

WAIT = WEBHOOK_TIMEOUT * 1000


def test_success_page_ends_its_wait_honestly_and_pricing_knows(
    page: Any, demo: DemoProcess, shots: Shots
) -> None:
    sign_up(page, "Margaret Hamilton")
    with worker_paused(demo):
        choose_plan(page, "pro")
        pay(page, CARD_OK)
        expect(page).to_have_url(re.compile(r"/billing/success\?session_id=cs_"))
        expect(page.get_by_test_id("success-pending")).to_be_visible()
        expect(page.get_by_test_id("success-pending")).to_contain_text("Confirming your Pro")
        # Two minutes pass (the page's own clock) without a confirmation.
        page.clock.install()
        page.reload()
        expect(page.get_by_test_id("success-pending")).to_be_visible()
        page.clock.fast_forward("02:01")
        timeout = page.get_by_test_id("success-timeout")
        expect(timeout).to_be_visible()
        expect(page.get_by_test_id("success-waiting")).to_be_hidden()
        expect(page.locator(".spinner")).to_be_hidden()
        expect(timeout).to_contain_text("being confirmed")
        expect(timeout).to_contain_text("You can leave this page")
        expect(timeout.get_by_role("link", name="Billing page")).to_be_visible()
        expect(page.get_by_text("This page updates by itself")).to_be_hidden()
        shots("success-timeout")

        # Pricing does not offer Checkout again as if nothing had happened.
        page.goto("/billing/pricing")
        reload_until(page, visible(page, "pricing-pending"), "the pending checkout notice")
        expect(page.get_by_test_id("pricing-pending")).to_contain_text("Stripe has your payment")
        expect(page.get_by_test_id("choose-pro")).to_have_count(0)
        expect(page.get_by_test_id("awaiting-pro")).to_have_text("Payment being confirmed")
        expect(page.get_by_test_id("trial-team")).to_have_count(0)
        shots("pricing-pending")

        # Billing waits for the same confirmation, and says so
        page.goto("/account/billing")
        mark_page(page)
        waiting = page.get_by_test_id("billing-waiting")
        expect(waiting).to_be_visible()
        expect(waiting).to_contain_text("Waiting for Stripe's confirmation of your Pro payment")
        expect(page.get_by_test_id("billing-plan")).to_have_text("Free")

    # The worker is back: Billing switches to Pro by itself, and Pricing says so.
    expect(page.get_by_test_id("billing-plan")).to_have_text("Pro", timeout=WAIT)
    expect(page.get_by_test_id("nav-plan")).to_have_text("Pro")
    assert_not_reloaded(page)
    page.goto("/billing/pricing")
    pro_is_current = page.get_by_test_id("plan-pro").get_by_test_id("current-plan")
    reload_until(page, lambda: pro_is_current.count() > 0, "the confirmed plan")
    expect(page.get_by_test_id("pricing-pending")).to_have_count(0)


def test_billing_follows_a_change_without_a_reload(
    page: Any, demo: DemoProcess, shots: Shots
) -> None:
    sign_up(page, "Radia Perlman")
    subscribe(page, "pro")
    page.goto("/account/billing")
    expect(page.get_by_test_id("renewal-date")).to_be_visible()

    with worker_paused(demo):
        with page.expect_navigation():
            page.get_by_test_id("cancel-at-period-end").click()
        mark_page(page)
        waiting = page.get_by_test_id("billing-waiting")
        expect(waiting).to_be_visible()
        expect(waiting).to_contain_text("Waiting for Stripe's confirmation")
        expect(page.get_by_test_id("subscription-status")).to_have_text("active")  # not yet
        shots("billing-waiting", docs="billing-waiting")

    # confirmed: the plan card, the banner and the operations change in place
    expect(page.get_by_test_id("cancel-date")).to_be_visible(timeout=WAIT)
    expect(page.get_by_test_id("subscription-status")).to_have_text("canceling")
    expect(page.get_by_test_id("renewal-date")).to_have_count(0)
    expect(page.get_by_test_id("banner-canceling")).to_contain_text("will end on")
    expect(page.get_by_test_id("banner-canceling")).not_to_contain_text("is canceled")
    expect(page.get_by_test_id("resume")).to_be_visible()
    expect(waiting).to_contain_text("Stripe confirmed the change")
    assert_not_reloaded(page)
    shots("billing-confirmed")

    # and back: keep the plan
    with page.expect_navigation():
        page.get_by_test_id("resume").click()
    mark_page(page)
    expect(page.get_by_test_id("renewal-date")).to_be_visible(timeout=WAIT)
    expect(page.get_by_test_id("banner-canceling")).to_have_count(0)
    expect(page.get_by_test_id("subscription-status")).to_have_text("active")
    assert_not_reloaded(page)


def test_pricing_for_a_pro_monthly_subscriber(page: Any, shots: Shots) -> None:
    sign_up(page, "Adele Goldberg")
    subscribe(page, "pro")
    expect(page.get_by_test_id("success-message")).to_contain_text("Thanks for supporting")

    page.goto("/billing/pricing?interval=month")
    expect(page.get_by_test_id("plan-pro").get_by_test_id("current-plan")).to_be_visible()
    page.get_by_role("navigation", name="Billing interval").get_by_role(
        "link", name=re.compile("Yearly")
    ).click()
    expect(page).to_have_url(re.compile(r"interval=year"))
    pro = page.get_by_test_id("plan-pro")
    expect(pro.get_by_test_id("current-plan")).to_have_count(0)  # Pro yearly is not the plan
    expect(pro.get_by_test_id("current-plan-other-interval")).to_have_text("You pay monthly")
    expect(page.get_by_test_id("switch-pro")).to_have_text("Switch to yearly")
    team = page.get_by_test_id("plan-team")
    expect(team.get_by_test_id("trial-team")).to_have_count(0)  # no trial for a paying customer
    expect(team.get_by_test_id("switch-cost-team")).to_contain_text("No free trial")
    expect(team.get_by_test_id("switch-cost-team")).to_contain_text("today")
    shots("pricing-pro-yearly-toggle")

    # the preview says where from and where to, and its button stays inside its card
    page.get_by_test_id("switch-pro").click()
    expect(page.get_by_test_id("swap-title")).to_have_text("Pro monthly → Pro yearly")
    card = page.get_by_test_id("swap-preview").bounding_box()
    confirm = page.get_by_test_id("swap-confirm").bounding_box()
    assert card is not None and confirm is not None
    assert (
        card["x"] <= confirm["x"] and confirm["x"] + confirm["width"] <= card["x"] + card["width"]
    )
    shots("swap-preview-interval")

    # the next invoice date of a same-interval switch is Billing's renewal date
    page.goto("/account/billing")
    renewal = page.get_by_test_id("renewal-date").text_content()
    page.get_by_test_id("preview-team-month").click()
    expect(page.get_by_test_id("swap-title")).to_have_text("Pro monthly → Team monthly")
    expect(page.get_by_test_id("swap-next-date")).to_have_text(renewal or "")
    shots("swap-preview-team")


def test_trial_then_first_charge(page: Any, shots: Shots) -> None:
    from .journey import advance_clock

    sign_up(page, "Shafi Goldwasser")
    subscribe(page, "team")
    message = page.get_by_test_id("success-message")
    expect(message).to_contain_text("free trial has started")
    expect(message).not_to_contain_text("Thanks for supporting")  # nothing was paid
    shots("success-trial")
    page.goto("/account/billing")
    expect(page.get_by_test_id("invoice-kind").first).to_have_text("Free trial started")

    advance_clock(page, "period-end")  # the trial ends; its first charge is made
    page.goto("/account/billing")
    reload_until(page, lambda: page.get_by_test_id("invoice-row").count() == 2, "the first charge")
    expect(page.get_by_test_id("invoice-kind").first).to_have_text("First charge after trial")
    shots("billing-after-trial")
