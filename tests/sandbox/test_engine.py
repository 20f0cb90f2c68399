"""The billing engine against Stripe's documented behaviour, through the SDK over HTTP.

Each test cites the Stripe documentation page that defines what it checks.
"""

from __future__ import annotations

import calendar
from typing import Any

import pytest
import requests
import stripe

from flask_lattice.sandbox import StripeSandbox

from .conftest import Catalog, signup
from .test_hosted import portal, post

DAY = 86_400
HOUR = 3600


def types(sb: StripeSandbox, since: int = 0) -> list[str]:
    return [e["type"] for e in sb.events[since:]]


def half_way(sb: StripeSandbox, sub: Any, fraction: float) -> None:
    item = sub["items"].data[0]
    start, end = item.current_period_start, item.current_period_end
    sb.advance(to=start + int((end - start) * fraction))


def test_immediate_cancel_honours_prorate_and_invoice_now(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    # docs.stripe.com/billing/subscriptions/cancel#cancel-immediately and
    # docs.stripe.com/api/subscriptions/cancel (invoice_now, prorate): a final invoice bills the
    # pending prorations and credits unused time after customer.subscription.deleted.
    _, sub = signup(stripe_client, sb, catalog.basic_monthly)
    half_way(sb, sub, 0.3)
    item = sub["items"].data[0]
    stripe_client.v1.subscriptions.update(
        sub.id, params={"items": [{"id": item.id, "quantity": 2}]}
    )
    pending = stripe_client.v1.invoice_items.list(
        params={"customer": str(sub.customer), "pending": True}
    )
    assert len(pending.data) == 2
    mark = len(sb.events)
    canceled = stripe_client.v1.subscriptions.cancel(
        sub.id, params={"invoice_now": True, "prorate": True}
    )
    assert canceled.status == "canceled"
    after = types(sb, mark)
    assert after[:3] == ["customer.subscription.deleted", "invoiceitem.created", "invoice.created"]
    final = stripe_client.v1.invoices.list(params={"subscription": sub.id}).data[0]
    assert final.status == "paid" and final.amount_due == 0
    assert len(final.lines.data) == 3
    assert final.total == sum(line.amount for line in final.lines.data) < 0
    customer = stripe_client.v1.customers.retrieve(str(sub.customer))
    assert customer.balance == final.total == final.ending_balance
    assert "customer.updated" in after
    left = stripe_client.v1.invoice_items.list(
        params={"customer": str(sub.customer), "pending": True}
    )
    assert left.data == []


def test_cancel_defaults_keep_pending_prorations_pending(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    # docs.stripe.com/api/subscriptions/cancel: invoice_now and prorate default to false; pending
    # invoice items are not deleted by a cancel (they wait on the customer).
    _, plain = signup(stripe_client, sb, catalog.basic_monthly)
    _, prorated = signup(stripe_client, sb, catalog.basic_monthly, email="p@example.com")
    half_way(sb, plain, 0.5)
    item = plain["items"].data[0]
    stripe_client.v1.subscriptions.update(
        plain.id, params={"items": [{"id": item.id, "quantity": 3}]}
    )
    stripe_client.v1.subscriptions.cancel(plain.id)
    stripe_client.v1.subscriptions.cancel(prorated.id, params={"prorate": True})
    for sub, expected in ((plain, 2), (prorated, 1)):
        invoices = stripe_client.v1.invoices.list(params={"subscription": sub.id}).data
        assert [inv.billing_reason for inv in invoices] == ["subscription_create"]
        items = stripe_client.v1.invoice_items.list(params={"customer": str(sub.customer)}).data
        assert len(items) == expected and all(i.invoice is None for i in items)
    credit = stripe_client.v1.invoice_items.list(params={"customer": str(prorated.customer)}).data[
        0
    ]
    assert credit.amount < 0 and credit.proration


def test_negative_invoice_credits_the_balance_and_the_next_invoice_spends_it(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    # docs.stripe.com/billing/customer/balance: a negative invoice total becomes customer credit
    # (a negative balance, with a balance transaction), applied to the next invoice.
    _, sub = signup(stripe_client, sb, catalog.pro_monthly)
    half_way(sb, sub, 0.6)
    item = sub["items"].data[0]
    mark = len(sb.events)
    down = stripe_client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "price": catalog.basic_monthly.id}],
            "proration_behavior": "always_invoice",
        },
    )
    invoice = stripe_client.v1.invoices.retrieve(str(down.latest_invoice))
    assert invoice.total < 0 and invoice.amount_due == 0 and invoice.status == "paid"
    billed = stripe_client.v1.invoice_items.list(params={"invoice": invoice.id}).data
    assert sorted(i.amount for i in billed) == sorted(line.amount for line in invoice.lines.data)
    credit = invoice.total
    customer = stripe_client.v1.customers.retrieve(str(sub.customer))
    assert customer.balance == credit == invoice.ending_balance
    updated = [e for e in sb.events[mark:] if e["type"] == "customer.updated"]
    assert updated[-1]["data"]["previous_attributes"] == {"balance": 0}
    transactions = list(sb.core.store.objects["customer_balance_transaction"].values())
    assert [(t["amount"], t["type"]) for t in transactions] == [(credit, "applied_to_invoice")]
    end = item.current_period_end
    sb.advance(to=end + HOUR + 10)
    renewal = stripe_client.v1.invoices.list(params={"subscription": sub.id}).data[0]
    assert renewal.billing_reason == "subscription_cycle" and renewal.status == "paid"
    assert renewal.starting_balance == credit and renewal.total == 1000
    assert renewal.amount_paid == renewal.amount_due == 1000 + credit
    assert stripe_client.v1.customers.retrieve(str(sub.customer)).balance == 0


def test_pending_prorations_are_pending_invoice_items(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    # docs.stripe.com/billing/subscriptions/prorations: with create_prorations the prorations are
    # pending invoice items (invoiceitem.created; GET /v1/invoiceitems) until the next invoice.
    _, sub = signup(stripe_client, sb, catalog.basic_monthly)
    half_way(sb, sub, 0.5)
    item = sub["items"].data[0]
    mark = len(sb.events)
    stripe_client.v1.subscriptions.update(
        sub.id, params={"items": [{"id": item.id, "price": catalog.pro_monthly.id}]}
    )
    assert types(sb, mark).count("invoiceitem.created") == 2
    customer = str(sub.customer)
    pending = stripe_client.v1.invoice_items.list(
        params={"customer": customer, "pending": True}
    ).data
    assert sorted(i.amount for i in pending) == [-500, 1500]
    assert all(i.proration for i in pending)
    parents = [i.parent.subscription_details for i in pending if i.parent]
    assert [p.subscription if p else None for p in parents] == [sub.id, sub.id]
    assert stripe_client.v1.invoice_items.retrieve(pending[0].id).id == pending[0].id
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoice_items.retrieve("ii_missing")
    sb.advance(to=item.current_period_end + HOUR + 10)
    renewal = stripe_client.v1.invoices.list(params={"subscription": sub.id}).data[0]
    billed = [
        i.id for i in stripe_client.v1.invoice_items.list(params={"invoice": renewal.id}).data
    ]
    assert sorted(billed) == sorted(i.id for i in pending)
    from_items = {
        line.parent.subscription_item_details.invoice_item  # type: ignore[union-attr]
        for line in renewal.lines.data
        if line.parent.subscription_item_details.proration  # type: ignore[union-attr]
    }
    assert from_items == set(billed)
    assert (
        stripe_client.v1.invoice_items.list(params={"customer": customer, "pending": True}).data
        == []
    )


def wait_ready(stripe_client: stripe.StripeClient, clock_id: str) -> Any:
    clock = stripe_client.v1.test_helpers.test_clocks.retrieve(clock_id)
    assert clock.status == "ready"
    return clock


def test_month_end_anchor_keeps_its_day(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    # docs.stripe.com/billing/subscriptions/billing-cycle: a monthly subscription anchored on
    # Jan 31 bills on the last day of shorter months and returns to the 31st: Feb 28, Mar 31,
    # Apr 30.
    start = calendar.timegm((2027, 1, 31, 12, 0, 0))
    clock = stripe_client.v1.test_helpers.test_clocks.create(params={"frozen_time": start})
    customer = stripe_client.v1.customers.create(
        params={
            "test_clock": clock.id,
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )
    sub = stripe_client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": catalog.basic_monthly.id}]}
    )
    ends = [sub["items"].data[0].current_period_end]
    for month in (3, 4, 5):
        stripe_client.v1.test_helpers.test_clocks.advance(
            clock.id, params={"frozen_time": calendar.timegm((2027, month, 1, 12, 0, 0))}
        )
        wait_ready(stripe_client, clock.id)
        renewed = stripe_client.v1.subscriptions.retrieve(sub.id)
        ends.append(renewed["items"].data[0].current_period_end)
        assert renewed.billing_cycle_anchor == start
    assert ends == [
        calendar.timegm((2027, 2, 28, 12, 0, 0)),
        calendar.timegm((2027, 3, 31, 12, 0, 0)),
        calendar.timegm((2027, 4, 30, 12, 0, 0)),
        calendar.timegm((2027, 5, 31, 12, 0, 0)),
    ]
    invoices = stripe_client.v1.invoices.list(params={"subscription": sub.id}).data
    assert [inv.status for inv in invoices] == ["paid"] * 4


def test_default_dunning_is_eight_attempts_within_two_weeks(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    # docs.stripe.com/billing/revenue-recovery/smart-retries: the recommended default policy
    # retries a failed subscription payment up to 8 times within 2 weeks, then (by default)
    # cancels the subscription.
    _, sub = signup(stripe_client, sb, catalog.basic_monthly, card="4000000000000341", trial_days=1)
    sb.advance(days=1, seconds=HOUR + 10)
    invoice = stripe_client.v1.invoices.retrieve(
        str(stripe_client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    )
    first = int(invoice.status_transitions.finalized_at or 0)
    assert invoice.attempt_count == 1
    gaps: list[int] = []
    while invoice.next_payment_attempt is not None:
        gaps.append((invoice.next_payment_attempt - (first + sum(gaps) * DAY)) // DAY)
        sb.advance(to=invoice.next_payment_attempt + 10)
        invoice = stripe_client.v1.invoices.retrieve(invoice.id)
    assert gaps == [1, 1, 2, 2, 2, 3, 3] and sum(gaps) <= 14
    assert invoice.attempt_count == 8 and invoice.status == "uncollectible"
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "canceled"


def test_old_fixed_schedule_is_a_setting() -> None:
    # docs.stripe.com/billing/revenue-recovery/smart-retries#custom-retry-schedule: a custom
    # schedule retries a set number of days after the previous attempt.
    with StripeSandbox(dunning_retry_days=(3, 5, 7)) as sb:
        stripe_client = sb.client()
        product = stripe_client.v1.products.create(params={"name": "Solo"})
        price = stripe_client.v1.prices.create(
            params={
                "product": product.id,
                "currency": "usd",
                "unit_amount": 500,
                "recurring": {"interval": "month"},
            }
        )
        _, sub = signup(stripe_client, sb, price, card="4000000000000341", trial_days=1)
        sb.advance(days=1, seconds=HOUR + 10)
        latest = str(stripe_client.v1.subscriptions.retrieve(sub.id).latest_invoice)
        invoice = stripe_client.v1.invoices.retrieve(latest)
        finalized = int(invoice.status_transitions.finalized_at or 0)
        assert invoice.next_payment_attempt == finalized + 3 * DAY
    with pytest.raises(ValueError):
        StripeSandbox(dunning_retry_days=(0,))


def test_portal_card_update_sets_the_customer_default_and_pays_one_invoice(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    # docs.stripe.com/customer-management/portal-deep-links (payment_method_update) and
    # docs.stripe.com/api/subscriptions/object#subscription_object-default_payment_method: the
    # portal saves the card as the customer's invoice_settings.default_payment_method; a
    # subscription's own default_payment_method still takes precedence, and other open
    # invoices are retried on their schedule.
    customer = stripe_client.v1.customers.create(params={"email": "two@example.com"})
    failing = stripe_client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer.id}
    )
    subs = [
        stripe_client.v1.subscriptions.create(
            params={
                "customer": customer.id,
                "items": [{"price": price.id}],
                "trial_period_days": days,
                "default_payment_method": failing.id,
            }
        )
        for price, days in ((catalog.basic_monthly, 3), (catalog.pro_monthly, 4))
    ]
    sb.advance(days=4, seconds=HOUR + 10)
    older, newer = (
        stripe_client.v1.invoices.retrieve(
            str(stripe_client.v1.subscriptions.retrieve(s.id).latest_invoice)
        )
        for s in subs
    )
    assert older.status == newer.status == "open"
    url = portal(stripe_client, customer.id, flow_data={"type": "payment_method_update"})
    assert requests.get(url, timeout=5).status_code == 200
    assert post(url, "payment_method", card_number="4242424242424242").status_code == 303
    saved = stripe_client.v1.customers.retrieve(customer.id)
    new_pm = saved.invoice_settings.default_payment_method  # type: ignore[union-attr]
    assert new_pm and new_pm != failing.id
    assert stripe_client.v1.invoices.retrieve(newer.id).status == "paid"
    still = stripe_client.v1.invoices.retrieve(older.id)
    assert still.status == "open" and still.next_payment_attempt == older.next_payment_attempt
    for sub in subs:
        assert stripe_client.v1.subscriptions.retrieve(sub.id).default_payment_method == failing.id
    assert stripe_client.v1.subscriptions.retrieve(subs[0].id).status == "past_due"


def test_test_clock_advances_asynchronously_within_stripes_limits(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    # docs.stripe.com/billing/testing/test-clocks (limitations) and
    # docs.stripe.com/api/test_clocks/advance: advance answers `advancing`, the clock is `ready`
    # when done (test_helpers.test_clock.advancing / .ready events); a clock holds at most three
    # customers; a jump is at most two intervals of the shortest subscription (two years
    # without subscriptions).
    now = sb.now()
    clock = stripe_client.v1.test_helpers.test_clocks.create(params={"frozen_time": now})
    with pytest.raises(stripe.InvalidRequestError) as too_far:
        stripe_client.v1.test_helpers.test_clocks.advance(
            clock.id, params={"frozen_time": now + 2 * 366 * DAY}
        )
    assert too_far.value.param == "frozen_time"
    customers = [
        stripe_client.v1.customers.create(
            params={
                "test_clock": clock.id,
                "payment_method": "pm_card_visa",
                "invoice_settings": {"default_payment_method": "pm_card_visa"},
            }
        )
        for _ in range(3)
    ]
    with pytest.raises(stripe.InvalidRequestError) as full:
        stripe_client.v1.customers.create(params={"test_clock": clock.id})
    assert full.value.param == "test_clock"
    stripe_client.v1.subscriptions.create(
        params={"customer": customers[0].id, "items": [{"price": catalog.basic_monthly.id}]}
    )
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.test_helpers.test_clocks.advance(
            clock.id, params={"frozen_time": now + 63 * DAY}
        )
    mark = len(sb.events)
    started = stripe_client.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": now + 40 * DAY}
    )
    assert started.status == "advancing" and started.frozen_time == now
    ready = wait_ready(stripe_client, clock.id)
    assert ready.frozen_time == now + 40 * DAY and ready.status_details.advancing is None
    seen = types(sb, mark)
    assert seen[0] == "test_helpers.test_clock.advancing"
    assert seen[-1] == "test_helpers.test_clock.ready"
    assert "invoice.paid" in seen
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": now})


def test_ending_a_trial_now_sends_trial_will_end(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    # docs.stripe.com/billing/subscriptions/trials#use-webhooks: trial_will_end is also sent
    # when a trial is ended immediately (trial_end=now).
    _, sub = signup(stripe_client, sb, catalog.basic_monthly, trial_days=30)
    mark = len(sb.events)
    ended = stripe_client.v1.subscriptions.update(sub.id, params={"trial_end": "now"})
    assert ended.status == "active"
    seen = types(sb, mark)
    assert seen[0] == "customer.subscription.trial_will_end"
    assert seen.count("customer.subscription.trial_will_end") == 1
    assert stripe_client.v1.invoices.retrieve(str(ended.latest_invoice)).status == "paid"


def test_resume_honours_billing_cycle_anchor(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    # docs.stripe.com/billing/subscriptions/pause-subscription#resuming-paused-subscriptions and
    # docs.stripe.com/api/subscriptions/resume: billing_cycle_anchor=now (default) restarts the
    # cycle and invoices now; unchanged keeps the anchor and prorates the rest of the period.
    _, kept = signup(stripe_client, sb, catalog.basic_monthly)
    _, reset = signup(stripe_client, sb, catalog.basic_monthly, email="r@example.com")
    anchor, end = kept.billing_cycle_anchor, kept["items"].data[0].current_period_end
    for sub in (kept, reset):
        stripe_client.v1.subscriptions.pause(sub.id)
    half_way(sb, kept, 0.5)
    resumed = stripe_client.v1.subscriptions.resume(
        kept.id,
        params={
            "billing_cycle_anchor": {"type": "unchanged"},
            "proration_behavior": "always_invoice",
        },
    )
    assert resumed.status == "active" and resumed.billing_cycle_anchor == anchor
    assert resumed["items"].data[0].current_period_end == end
    prorated = stripe_client.v1.invoices.retrieve(str(resumed.latest_invoice))
    assert prorated.billing_reason == "subscription_update" and prorated.status == "paid"
    assert 0 < prorated.amount_paid < 1000
    before = sb.now()
    restarted = stripe_client.v1.subscriptions.resume(reset.id)
    assert before <= restarted.billing_cycle_anchor <= sb.now()
    assert restarted["items"].data[0].current_period_start == restarted.billing_cycle_anchor
    assert restarted.billing_cycle_anchor > end - 20 * DAY
    full = stripe_client.v1.invoices.retrieve(str(restarted.latest_invoice))
    assert full.amount_paid == 1000 and full.status == "paid"
