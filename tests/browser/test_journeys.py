"""The demo, driven end to end in Chromium: sign up, pay, use, cancel, and fail to pay.

Every journey runs against the demo started by its own runner (web app, sandbox, worker,
Redis) and confirms each billing change only once its webhook has been processed.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import Shots
from .journey import (
    CARD_FAILS_ON_CHARGE,
    CARD_INSUFFICIENT_FUNDS,
    CARD_OK,
    WEBHOOK_TIMEOUT,
    advance_clock,
    assert_not_reloaded,
    card_reached_subscription,
    choose_plan,
    mark_page,
    pay,
    reload_until,
    sign_up,
    subscribe,
    visible,
    write_note,
)

pytestmark = pytest.mark.browser

PRICING = re.compile(r"/billing/pricing")
WAIT = WEBHOOK_TIMEOUT * 1000


def test_subscribe_use_cancel_and_lose_access(page: Any, shots: Shots) -> None:
    page.goto("/")
    shots("landing")

    # 1. sign up
    sign_up(page)
    write_note(page, "Launch checklist", "Ship the pricing page, then tell everyone.")
    write_note(page, "Reading list", "Designing Data-Intensive Applications.")
    expect(page.get_by_test_id("plan-name")).to_have_text("Free")
    shots("dashboard-free")

    # 2. the gated page is refused, with a way to upgrade
    page.goto("/export")
    expect(page).to_have_url(PRICING)
    expect(page.get_by_test_id("flash")).to_contain_text("export")
    shots("export-refused-pricing")

    # 3. Checkout on the sandbox's hosted page, paid with 4242…
    page.get_by_test_id("choose-pro").click()
    expect(page.get_by_test_id("pay")).to_be_visible()
    shots("checkout")
    pay(page, CARD_OK)

    # 4. the success page turns active once the webhook has been processed
    expect(page).to_have_url(re.compile(r"/billing/success\?session_id=cs_"))
    expect(page.get_by_test_id("success-active")).to_contain_text("Pro", timeout=30_000)
    shots("success-active")

    # 5. the gated page opens
    page.goto("/export")
    expect(page.get_by_test_id("export-title")).to_be_visible()
    expect(page.get_by_test_id("nav-plan")).to_have_text("Pro")
    shots("export-open")

    # 6. the billing page: plan, status, renewal date, the first invoice
    page.goto("/account/billing")
    expect(page.get_by_test_id("billing-plan")).to_have_text("Pro")
    expect(page.get_by_test_id("subscription-status")).to_have_text("active")
    expect(page.get_by_test_id("renewal-date")).to_have_text(re.compile(r"\w+ \d{1,2}, \d{4}"))
    reload_until(page, lambda: "paid" in page.get_by_test_id("invoices").text_content(), "invoice")
    expect(page.get_by_test_id("invoices")).to_contain_text("$9.00")
    shots("billing-active")

    # 7. the portal's cancel deep link: cancel at period end; "cancels on" appears
    page.get_by_test_id("portal-cancel").click()
    expect(page.get_by_test_id("confirm-cancel")).to_be_visible()
    shots("portal-cancel")
    page.get_by_test_id("confirm-cancel").click()
    page.wait_for_url(re.compile(r"/account/billing"))
    mark_page(page)
    # the portal's change shows without a reload: no "Active" or "Renews on" once projected
    expect(page.get_by_test_id("cancel-date")).to_be_visible(timeout=WAIT)
    expect(page.get_by_test_id("banner-canceling")).to_contain_text("will end on")
    expect(page.get_by_test_id("subscription-status")).to_have_text("canceling")
    expect(page.get_by_test_id("renewal-date")).to_have_count(0)
    assert_not_reloaded(page)
    shots("billing-canceling")
    page.goto("/export")
    expect(page.get_by_test_id("export-title")).to_be_visible()  # paid until the period ends

    # 8. past the period end (sandbox clock), the subscription ends and access closes
    advance_clock(page, "period-end")
    shots("dev-clock-advanced")
    page.goto("/account/billing")
    reload_until(page, visible(page, "ended-date"), "the subscription to end")
    expect(page.get_by_test_id("billing-plan")).to_have_text("Free")
    expect(page.get_by_test_id("banner-canceling")).to_have_count(0)
    shots("billing-ended")
    page.goto("/export")
    expect(page).to_have_url(PRICING)


def test_declined_card_grants_nothing(page: Any, shots: Shots) -> None:
    sign_up(page, "Grace Hopper")
    page.goto("/billing/pricing")
    expect(page.get_by_test_id("current-plan")).to_be_visible()
    shots("pricing", docs="pricing")
    choose_plan(page, "pro")
    pay(page, CARD_INSUFFICIENT_FUNDS)
    expect(page.get_by_test_id("error")).to_contain_text(re.compile("insufficient funds", re.I))
    shots("checkout-declined")

    page.goto("/dashboard")
    expect(page.get_by_test_id("plan-name")).to_have_text("Free")
    page.goto("/billing/status.json")
    assert '"active": false' in page.content() or '"active":false' in page.content()
    page.goto("/export")
    expect(page).to_have_url(PRICING)
    page.goto("/account/billing")
    expect(page.get_by_test_id("billing-plan")).to_have_text("Free")
    expect(page.get_by_test_id("see-plans")).to_be_visible()
    shots("billing-still-free")


def test_failed_renewal_shows_past_due_and_recovers(page: Any, shots: Shots) -> None:
    sign_up(page, "Alan Turing")
    subscribe(page, "pro")

    # the saved card becomes one that attaches but fails when charged
    page.goto("/account/billing")
    page.get_by_test_id("update-payment-method").click()
    page.get_by_test_id("card-number").fill(CARD_FAILS_ON_CHARGE)
    shots("portal-card-0341")
    page.get_by_test_id("save-payment-method").click()
    expect(page).to_have_url(re.compile(r"/account/billing"))
    # the portal saves the card on the customer only (as Stripe's does); the customer.updated
    # webhook then points the subscription at it, which Stripe confirms with an update
    page.goto("/dev")
    reload_until(page, card_reached_subscription(page), "the new card on the subscription")

    # the renewal is charged when the sandbox clock passes the period end, and fails
    advance_clock(page, "period-end")
    page.goto("/account/billing")
    reload_until(page, visible(page, "banner-past_due"), "the past-due banner")
    expect(page.get_by_test_id("subscription-status")).to_have_text("past due")
    expect(page.get_by_test_id("banner-past_due")).to_contain_text("payment failed")
    reload_until(
        page, lambda: "open" in page.get_by_test_id("invoices").text_content(), "the open renewal"
    )
    expect(page.get_by_test_id("banner-past_due")).to_have_attribute("role", "alert")
    expect(page.get_by_test_id("pay-now")).to_be_visible()
    expect(page.get_by_test_id("invoice-kind").first).to_have_text("Renewal")
    shots("billing-past-due")

    # the banner's deep link opens the portal's payment-method update; a good card pays
    page.get_by_test_id("banner-update-payment-method").click()
    page.get_by_test_id("card-number").fill(CARD_OK)
    page.get_by_test_id("save-payment-method").click()
    page.wait_for_url(re.compile(r"/account/billing"))
    mark_page(page)
    # no reload: the banner, "Failed — retrying" and "Pay now" go once Stripe confirms
    expect(page.get_by_test_id("banner-past_due")).to_have_count(0, timeout=WAIT)
    expect(page.get_by_test_id("subscription-status")).to_have_text("active", timeout=WAIT)
    expect(page.get_by_test_id("payment-failed")).to_have_count(0)
    expect(page.get_by_test_id("pay-now")).to_have_count(0, timeout=WAIT)
    expect(page.get_by_test_id("renewal-date")).to_be_visible()
    expect(page.get_by_test_id("invoice-row").first).to_have_attribute("data-status", "paid")
    expect(page.get_by_test_id("billing-plan")).to_have_text("Pro")
    assert_not_reloaded(page)
    shots("billing-recovered")


def test_upgrade_with_preview_seats_pause_and_cancel(page: Any, shots: Shots) -> None:
    sign_up(page, "Katherine Johnson")
    subscribe(page, "pro")
    page.goto("/team")
    expect(page).to_have_url(PRICING)  # Team is gated by plan

    # Pro → Team: the proration preview shows what is due today before anything changes
    page.goto("/account/billing")
    page.get_by_test_id("preview-team-month").click()
    preview = page.get_by_test_id("swap-preview")
    expect(preview).to_have_attribute("data-plan", "team")
    due_today = int(page.get_by_test_id("swap-due-today").get_attribute("data-amount"))
    assert 0 < due_today <= 1200  # a month of Team, less the unused part of Pro
    expect(page.get_by_test_id("swap-line").first).to_be_visible()
    expect(page.get_by_test_id("swap-recurring-amount")).to_have_text("$12.00")
    shots("swap-preview")
    page.get_by_test_id("swap-confirm").click()
    page.wait_for_url(re.compile(r"/account/billing"))
    mark_page(page)
    expect(page.get_by_test_id("flash")).to_contain_text("on its way")
    expect(page.get_by_test_id("billing-plan")).to_have_text("Team", timeout=WAIT)
    assert_not_reloaded(page)

    # seats: three, through a preview; the invoice charges exactly what the preview said
    page.get_by_test_id("seats-input").fill("3")
    page.get_by_test_id("seats-update").click()
    expect(page.get_by_test_id("seats-preview")).to_have_attribute("data-quantity", "3")
    due = page.get_by_test_id("seats-due-today")
    previewed = int(due.get_attribute("data-amount"))
    assert 0 < previewed <= 2 * 1200  # two more seats of Team, for what is left of the month
    previewed_text = due.text_content()
    expect(page.get_by_test_id("seats-recurring-amount")).to_contain_text("$36.00")
    shots("seats-preview")
    page.get_by_test_id("seats-confirm").click()
    page.wait_for_url(re.compile(r"/account/billing"))
    mark_page(page)
    expect(page.get_by_test_id("billing-seats")).to_have_text("3", timeout=WAIT)
    assert_not_reloaded(page)
    reload_until(  # the first payment, the upgrade and the seats, each invoiced
        page, lambda: page.get_by_test_id("invoice-row").count() == 3, "three invoices"
    )
    kinds = page.get_by_test_id("invoice-kind")
    expect(kinds).to_have_text(["Seat change", "Plan change", "First payment"])
    newest = page.get_by_test_id("invoice-row").first
    expect(newest.get_by_test_id("invoice-amount")).to_have_text(previewed_text)
    shots("billing-team", docs="billing")
    page.goto("/team")
    expect(page.get_by_test_id("seats-used")).to_have_text("1 of 3 seats")
    shots("team")

    # pause collection, keeping access; then resume
    page.goto("/account/billing")
    page.get_by_test_id("pause").click()
    reload_until(page, visible(page, "banner-paused"), "the paused banner")
    expect(page.get_by_test_id("subscription-status")).to_have_text("paused")
    shots("billing-paused")
    page.goto("/team")
    expect(page.get_by_test_id("team-title")).to_be_visible()
    page.goto("/account/billing")
    page.get_by_test_id("unpause").click()
    reload_until(
        page,
        lambda: page.get_by_test_id("subscription-status").text_content() == "active",
        "payments to resume",
    )
    expect(page.get_by_test_id("banner-paused")).to_have_count(0)

    # cancel at period end from the app, then change our mind
    page.get_by_test_id("cancel-at-period-end").click()
    reload_until(page, visible(page, "cancel-date"), "the scheduled cancel")
    page.get_by_test_id("resume").click()
    reload_until(page, visible(page, "renewal-date"), "the renewal to be back")
    expect(page.get_by_test_id("banner-canceling")).to_have_count(0)
    shots("billing-resumed")

    # fewer seats: a credit to the balance, not a payment, its minus sign kept with it
    page.get_by_test_id("seats-input").fill("2")
    page.get_by_test_id("seats-update").click()
    expect(page.get_by_test_id("seats-preview")).to_have_attribute("data-quantity", "2")
    page.get_by_test_id("seats-confirm").click()
    page.wait_for_url(re.compile(r"/account/billing"))
    expect(page.get_by_test_id("billing-seats")).to_have_text("2", timeout=WAIT)
    reload_until(page, lambda: page.get_by_test_id("invoice-row").count() == 4, "the credit")
    credit = page.get_by_test_id("invoice-row").first
    expect(credit.get_by_test_id("invoice-kind")).to_have_text("Credit · seat change")
    expect(credit.get_by_test_id("invoice-status")).to_have_text("credited")
    amount = credit.get_by_test_id("invoice-amount")
    expect(amount).to_have_text(re.compile(r"^\u2212\$\d+\.\d\d$"))
    assert amount.evaluate("(e) => e.getClientRects().length") == 1  # one line: "−" stays
    shots("billing-credit")
