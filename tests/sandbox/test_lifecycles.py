"""Full billing lifecycles: signup, renewal, dunning, cancellation, plan changes, trials."""

from __future__ import annotations

import pytest
import stripe

from flask_lattice.sandbox import CheckoutDeclined, StripeSandbox

from .conftest import FAST_RETRIES, Catalog, assert_valid, signup

DAY = 86_400


def types(sb: StripeSandbox, since: int = 0) -> list[str]:
    """Event types since ``since``, without the sandbox clock's own ``test_clock.ready``."""
    return [e["type"] for e in sb.events[since:] if not e["type"].startswith("test_helpers.")]


def test_signup_through_checkout_emits_stripes_sequence(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    mark = len(sb.events)
    session, sub = signup(stripe_client, sb, catalog.pro_monthly)
    assert types(sb, mark) == [
        "customer.created",
        "payment_method.attached",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice_payment.paid",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
        "checkout.session.completed",
    ]
    created = next(e for e in sb.events if e["type"] == "customer.subscription.created")
    assert created["data"]["object"]["status"] == "incomplete"
    updated = next(e for e in sb.events if e["type"] == "customer.subscription.updated")
    assert updated["data"]["previous_attributes"]["status"] == "incomplete"
    assert sub.status == "active" and session.customer == sub.customer
    customer = stripe_client.v1.customers.retrieve(str(sub.customer))
    assert customer.email == "ada@example.com"
    assert sub.default_payment_method


def test_declined_checkout_creates_nothing(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    session = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer_email": "bob@example.com",
            "line_items": [{"price": catalog.pro_monthly.id, "quantity": 1}],
            "success_url": "http://app.test/ok",
        }
    )
    # The messages are Stripe's decline texts (https://docs.stripe.com/declines/codes); the
    # exception carries the text alone, not the hosted page around it.
    for card, text in [
        ("4000000000009995", "Your card has insufficient funds."),
        ("4000000000000002", "Your card was declined."),
        ("4000000000000341", "Your card was declined."),
    ]:
        with pytest.raises(CheckoutDeclined) as declined:
            sb.complete_checkout(session.id, card=card)
        assert declined.value.message == text
        assert str(declined.value) == text
    assert stripe_client.v1.customers.list().data == []
    assert stripe_client.v1.subscriptions.list().data == []
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "open"
    sb.complete_checkout(session.id)
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "complete"


def test_renewal_follows_stripes_timeline(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    # docs.stripe.com/billing/subscriptions/overview#subscription-lifecycle and
    # docs.stripe.com/billing/subscriptions/webhooks#events: invoice.upcoming some days before
    # (7 by default), a draft at the renewal, finalized and charged about an hour later.
    _, sub = signup(stripe_client, sb, catalog.basic_monthly)
    end = sub["items"].data[0].current_period_end
    mark = len(sb.events)
    sb.advance(to=end - 7 * DAY + 10)
    assert types(sb, mark) == ["invoice.upcoming"]
    upcoming = next(e for e in reversed(sb.events) if e["type"] == "invoice.upcoming")
    upcoming = upcoming["data"]["object"]
    assert upcoming["billing_reason"] == "upcoming" and upcoming["amount_due"] == 1000
    sb.advance(to=end + 10)
    renewed = stripe_client.v1.subscriptions.retrieve(sub.id)
    item = renewed["items"].data[0]
    assert item.current_period_start == end and item.current_period_end > end + 27 * DAY
    assert renewed.status == "active"
    invoice = stripe_client.v1.invoices.retrieve(str(renewed.latest_invoice))
    assert invoice.billing_reason == "subscription_cycle" and invoice.status == "draft"
    assert invoice.automatically_finalizes_at == end + 3600
    assert invoice.lines.data[0].period.start == end
    assert types(sb, mark) == [
        "invoice.upcoming",
        "invoice.created",
        "customer.subscription.updated",
    ]
    sb.advance(to=end + 3600 - 20)
    assert stripe_client.v1.invoices.retrieve(invoice.id).status == "draft"
    sb.advance(seconds=30)
    paid = stripe_client.v1.invoices.retrieve(invoice.id)
    assert paid.status == "paid" and paid.status_transitions.finalized_at == end + 3600
    assert types(sb, mark)[3:] == [
        "invoice.finalized",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice_payment.paid",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    intent_id = paid.payments.data[0].payment.payment_intent  # type: ignore[union-attr]
    intent = stripe_client.v1.payment_intents.retrieve(str(intent_id))
    assert intent.status == "succeeded" and intent.latest_charge


def test_failed_renewal_emits_the_failure_families(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    # docs.stripe.com/billing/subscriptions/webhooks#payment-failures: a failed renewal charge
    # sends charge.failed, payment_intent.payment_failed, invoice.updated and
    # invoice.payment_failed.
    _, sub = signup(stripe_client, sb, catalog.basic_monthly)
    failing = stripe_client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": str(sub.customer)}
    )
    stripe_client.v1.subscriptions.update(sub.id, params={"default_payment_method": failing.id})
    end = sub["items"].data[0].current_period_end
    sb.advance(to=end + 10)
    mark = len(sb.events)
    sb.advance(seconds=3600)
    assert types(sb, mark) == [
        "invoice.finalized",
        "payment_intent.created",
        "charge.failed",
        "payment_intent.payment_failed",
        "invoice.updated",
        "invoice.payment_failed",
        "customer.subscription.updated",
    ]
    updated = sb.events[mark + 4]["data"]
    assert updated["previous_attributes"]["attempt_count"] == 0
    assert updated["object"]["next_payment_attempt"] == end + 3600 + DAY


@pytest.mark.parametrize("final", ["canceled", "unpaid"])
def test_failed_renewal_dunning(final: str) -> None:
    with StripeSandbox(
        retry_schedule=FAST_RETRIES, dunning_final_status=final, dunning_retry_days=(3, 5, 7)
    ) as sb:
        stripe_client = sb.client()
        _, sub = signup(
            stripe_client, sb, catalog_price(stripe_client), card="4000000000000341", trial_days=5
        )
        assert sub.status == "trialing"
        sb.advance(days=5, seconds=3610)
        sub = stripe_client.v1.subscriptions.retrieve(sub.id)
        assert sub.status == "past_due"
        invoice = stripe_client.v1.invoices.retrieve(str(sub.latest_invoice))
        assert invoice.status == "open" and invoice.attempt_count == 1
        finalized = invoice.status_transitions.finalized_at
        assert finalized == invoice.created + 3600
        assert invoice.next_payment_attempt == finalized + 3 * DAY
        sb.advance(days=3)
        assert stripe_client.v1.invoices.retrieve(invoice.id).attempt_count == 2
        sb.advance(days=5)
        assert stripe_client.v1.invoices.retrieve(invoice.id).attempt_count == 3
        assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "past_due"
        sb.advance(days=7)
        sub = stripe_client.v1.subscriptions.retrieve(sub.id)
        assert sub.status == final
        failures = [e for e in sb.events if e["type"] == "invoice.payment_failed"]
        assert len(failures) == 4
        if final == "canceled":
            assert sub.ended_at and sub.cancellation_details.reason == "payment_failed"  # type: ignore[union-attr]
            assert "customer.subscription.deleted" in types(sb)
        else:
            sb.update_payment_method(str(sub.customer), "4242424242424242")
            assert stripe_client.v1.invoices.retrieve(invoice.id).next_payment_attempt is None
            stripe_client.v1.invoices.pay(invoice.id)
            assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "active"
            assert stripe_client.v1.invoices.retrieve(invoice.id).status == "paid"
        assert_valid([obj for objs in sb.core.store.objects.values() for obj in objs.values()])


def catalog_price(stripe_client: stripe.StripeClient) -> stripe.Price:
    product = stripe_client.v1.products.create(params={"name": "Solo"})
    return stripe_client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 900,
            "recurring": {"interval": "month"},
        }
    )


def test_payment_method_update_recovers_past_due(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(stripe_client, sb, catalog.pro_monthly)
    customer = str(sub.customer)
    failing = stripe_client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer}
    )
    stripe_client.v1.subscriptions.update(sub.id, params={"default_payment_method": failing.id})
    sb.advance(days=32)
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    assert "invoice.payment_failed" in types(sb)
    sb.update_payment_method(customer, "4242424242424242")
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    sb.advance(days=1)
    recovered = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert recovered.status == "active"
    assert stripe_client.v1.invoices.retrieve(str(recovered.latest_invoice)).status == "paid"


def test_cancel_at_period_end_and_cancel_at(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(stripe_client, sb, catalog.pro_monthly)
    end = sub["items"].data[0].current_period_end
    scheduled = stripe_client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert scheduled.cancel_at == end and scheduled.canceled_at and scheduled.status == "active"
    undone = stripe_client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": False})
    assert undone.cancel_at is None and undone.canceled_at is None
    stripe_client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    sb.advance(to=end + 1)
    ended = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert ended.status == "canceled" and ended.ended_at == end and ended.canceled_at
    deleted = [e for e in sb.events if e["type"] == "customer.subscription.deleted"]
    assert deleted[0]["data"]["object"]["status"] == "canceled"
    assert stripe_client.v1.invoices.list(params={"subscription": sub.id}).data[
        0
    ].billing_reason == ("subscription_create")
    _, other = signup(stripe_client, sb, catalog.basic_monthly, email="b@example.com")
    at = sb.now() + 10 * DAY
    stripe_client.v1.subscriptions.update(other.id, params={"cancel_at": at})
    sb.advance(days=11)
    assert stripe_client.v1.subscriptions.retrieve(other.id).ended_at == at
    _, third = signup(stripe_client, sb, catalog.basic_monthly, email="c@example.com")
    canceled = stripe_client.v1.subscriptions.cancel(third.id)
    assert canceled.status == "canceled"
    assert stripe_client.v1.subscriptions.list().data == []
    assert len(stripe_client.v1.subscriptions.list(params={"status": "canceled"}).data) == 3


def test_upgrade_with_prorations_and_preview(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(stripe_client, sb, catalog.basic_monthly)
    item = sub["items"].data[0]
    start, end = item.current_period_start, item.current_period_end
    sb.advance(seconds=(end - start) // 2)
    when = sb.now()
    swap = [{"id": item.id, "price": catalog.pro_monthly.id}]
    preview = stripe_client.v1.invoices.create_preview(
        params={
            "customer": str(sub.customer),
            "subscription": sub.id,
            "subscription_details": {
                "items": swap,
                "proration_date": when,
                "proration_behavior": "always_invoice",
            },
        }
    )
    prorations = [
        line for line in preview.lines.data if line.parent.subscription_item_details.proration
    ]  # type: ignore[union-attr]
    assert len(prorations) == 2
    fraction = (end - when) / (end - start)
    assert sorted(line.amount for line in prorations) == [
        round(-1000 * fraction),
        round(3000 * fraction),
    ]
    assert preview.amount_due == sum(line.amount for line in prorations)
    assert preview.parent.subscription_details.subscription_proration_date == when  # type: ignore[union-attr]
    assert stripe_client.v1.invoices.list(params={"subscription": sub.id}).data[
        0
    ].billing_reason == ("subscription_create")
    upcoming = stripe_client.v1.invoices.create_preview(
        params={
            "subscription": sub.id,
            "subscription_details": {"items": swap, "proration_date": when},
        }
    )
    assert upcoming.amount_due == preview.amount_due + 3000
    updated = stripe_client.v1.subscriptions.update(
        sub.id,
        params={
            "items": swap,
            "proration_behavior": "always_invoice",
            "proration_date": when,
        },
    )
    assert updated["items"].data[0].price.id == catalog.pro_monthly.id
    assert updated["items"].data[0].current_period_end == end
    invoice = stripe_client.v1.invoices.retrieve(str(updated.latest_invoice))
    assert invoice.billing_reason == "subscription_update" and invoice.status == "paid"
    assert invoice.amount_paid == preview.amount_due


def test_proration_behaviors_create_and_none(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(stripe_client, sb, catalog.basic_monthly)
    item = sub["items"].data[0]
    end = item.current_period_end
    sb.advance(days=10)
    stripe_client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "price": catalog.pro_monthly.id}],
        },
    )
    assert len(stripe_client.v1.invoices.list(params={"subscription": sub.id}).data) == 1
    stripe_client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "quantity": 2}],
            "proration_behavior": "none",
        },
    )
    sb.advance(to=end + 5)
    renewal = stripe_client.v1.invoices.list(params={"subscription": sub.id}).data[0]
    assert renewal.billing_reason == "subscription_cycle"
    flags = [line.parent.subscription_item_details.proration for line in renewal.lines.data]  # type: ignore[union-attr]
    assert flags == [True, True, False]
    assert renewal.lines.data[-1].amount == 6000


def test_interval_change_resets_the_cycle(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(stripe_client, sb, catalog.pro_monthly)
    sb.advance(days=3)
    item = sub["items"].data[0]
    yearly = stripe_client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "price": catalog.pro_yearly.id}],
        },
    )
    new_item = yearly["items"].data[0]
    assert new_item.current_period_start == sb.now()
    assert new_item.current_period_end - new_item.current_period_start >= 365 * DAY
    invoice = stripe_client.v1.invoices.retrieve(str(yearly.latest_invoice))
    assert invoice.billing_reason == "subscription_update" and invoice.status == "paid"


def test_trial_end_charges_and_trial_will_end(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    session, sub = signup(stripe_client, sb, catalog.pro_monthly, trial_days=14)
    assert sub.status == "trialing" and session.payment_status == "no_payment_required"
    assert sub.trial_end == sub["items"].data[0].current_period_end
    first = stripe_client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert first.amount_due == 0 and first.status == "paid"
    sb.advance(days=11, seconds=60)
    assert types(sb)[-1] == "customer.subscription.trial_will_end"
    sb.advance(days=3, seconds=3600)
    active = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert active.status == "active"
    invoice = stripe_client.v1.invoices.retrieve(str(active.latest_invoice))
    assert invoice.billing_reason == "subscription_cycle" and invoice.amount_paid == 3000
    _, ended_now = signup(
        stripe_client, sb, catalog.basic_monthly, trial_days=30, email="z@example.com"
    )
    now_active = stripe_client.v1.subscriptions.update(ended_now.id, params={"trial_end": "now"})
    assert now_active.status == "active"


def test_pause_collection_and_pause_resume(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(stripe_client, sb, catalog.basic_monthly)
    behaviors = {"keep_as_draft": "draft", "mark_uncollectible": "uncollectible", "void": "void"}
    for behavior, status in behaviors.items():
        stripe_client.v1.subscriptions.update(
            sub.id, params={"pause_collection": {"behavior": behavior}}
        )
        end = stripe_client.v1.subscriptions.retrieve(sub.id)["items"].data[0].current_period_end
        sb.advance(to=end + 3601)
        latest = stripe_client.v1.subscriptions.retrieve(sub.id).latest_invoice
        assert stripe_client.v1.invoices.retrieve(str(latest)).status == status, behavior
    cleared = stripe_client.v1.subscriptions.update(sub.id, params={"pause_collection": ""})
    assert cleared.pause_collection is None
    paused = stripe_client.v1.subscriptions.pause(sub.id)
    assert paused.status == "paused"
    sb.advance(days=60)
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "paused"
    before = sb.now()
    resumed = stripe_client.v1.subscriptions.resume(sub.id)
    assert resumed.status == "active"
    # The period restarts at the moment of the resume (sandbox time keeps ticking).
    assert before <= resumed["items"].data[0].current_period_start <= sb.now()
    assert {"customer.subscription.paused", "customer.subscription.resumed"} <= set(types(sb))


def test_test_clock_moves_only_its_customers(
    stripe_client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, outside = signup(stripe_client, sb, catalog.basic_monthly)
    clock = stripe_client.v1.test_helpers.test_clocks.create(params={"frozen_time": sb.now()})
    customer = stripe_client.v1.customers.create(params={"test_clock": clock.id})
    stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    inside = stripe_client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": catalog.pro_monthly.id}],
            "default_payment_method": stripe_client.v1.customers.payment_methods.list(customer.id)
            .data[0]
            .id,
        }
    )
    for days in (50, 95):
        stripe_client.v1.test_helpers.test_clocks.advance(
            clock.id, params={"frozen_time": sb.now() + days * DAY}
        )
        assert stripe_client.v1.test_helpers.test_clocks.retrieve(clock.id).status == "ready"
    assert len(stripe_client.v1.invoices.list(params={"subscription": inside.id}).data) == 4
    assert len(stripe_client.v1.invoices.list(params={"subscription": outside.id}).data) == 1
    sb.advance(days=35)
    assert len(stripe_client.v1.invoices.list(params={"subscription": inside.id}).data) == 4
    assert len(stripe_client.v1.invoices.list(params={"subscription": outside.id}).data) == 2
