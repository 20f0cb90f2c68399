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
    client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    mark = len(sb.events)
    session, sub = signup(client, sb, catalog.pro_monthly)
    assert types(sb, mark) == [
        "customer.created",
        "payment_method.attached",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
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
    customer = client.v1.customers.retrieve(str(sub.customer))
    assert customer.email == "ada@example.com"
    assert sub.default_payment_method


def test_declined_checkout_creates_nothing(
    client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer_email": "bob@example.com",
            "line_items": [{"price": catalog.pro_monthly.id, "quantity": 1}],
            "success_url": "http://app.test/ok",
        }
    )
    for card, text in [
        ("4000000000009995", "insufficient funds"),
        ("4000000000000002", "declined"),
        ("4000000000000341", "declined"),
    ]:
        with pytest.raises(CheckoutDeclined) as declined:
            sb.complete_checkout(session.id, card=card)
        assert text in declined.value.message
    assert client.v1.customers.list().data == []
    assert client.v1.subscriptions.list().data == []
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    sb.complete_checkout(session.id)
    assert client.v1.checkout.sessions.retrieve(session.id).status == "complete"


def test_renewal(client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog) -> None:
    _, sub = signup(client, sb, catalog.basic_monthly)
    end = sub["items"].data[0].current_period_end
    mark = len(sb.events)
    sb.advance(to=end + 10)
    renewed = client.v1.subscriptions.retrieve(sub.id)
    item = renewed["items"].data[0]
    assert item.current_period_start == end and item.current_period_end > end + 27 * DAY
    assert renewed.status == "active"
    invoice = client.v1.invoices.retrieve(str(renewed.latest_invoice))
    assert invoice.billing_reason == "subscription_cycle" and invoice.status == "paid"
    assert invoice.lines.data[0].period.start == end
    assert types(sb, mark) == [
        "invoice.created",
        "customer.subscription.updated",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]


@pytest.mark.parametrize("final", ["canceled", "unpaid"])
def test_failed_renewal_dunning(final: str) -> None:
    with StripeSandbox(retry_schedule=FAST_RETRIES, dunning_final_status=final) as sb:
        client = sb.client()
        _, sub = signup(client, sb, catalog_price(client), card="4000000000000341", trial_days=5)
        assert sub.status == "trialing"
        sb.advance(days=5, seconds=10)
        sub = client.v1.subscriptions.retrieve(sub.id)
        assert sub.status == "past_due"
        invoice = client.v1.invoices.retrieve(str(sub.latest_invoice))
        assert invoice.status == "open" and invoice.attempt_count == 1
        assert invoice.next_payment_attempt == invoice.created + 3 * DAY
        sb.advance(days=3)
        assert client.v1.invoices.retrieve(invoice.id).attempt_count == 2
        sb.advance(days=5)
        assert client.v1.invoices.retrieve(invoice.id).attempt_count == 3
        assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
        sb.advance(days=7)
        sub = client.v1.subscriptions.retrieve(sub.id)
        assert sub.status == final
        failures = [e for e in sb.events if e["type"] == "invoice.payment_failed"]
        assert len(failures) == 4
        if final == "canceled":
            assert sub.ended_at and sub.cancellation_details.reason == "payment_failed"  # type: ignore[union-attr]
            assert "customer.subscription.deleted" in types(sb)
        else:
            sb.update_payment_method(str(sub.customer), "4242424242424242")
            assert client.v1.subscriptions.retrieve(sub.id).status == "active"
            assert client.v1.invoices.retrieve(invoice.id).status == "paid"
        assert_valid([obj for objs in sb.core.store.objects.values() for obj in objs.values()])


def catalog_price(client: stripe.StripeClient) -> stripe.Price:
    product = client.v1.products.create(params={"name": "Solo"})
    return client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 900,
            "recurring": {"interval": "month"},
        }
    )


def test_payment_method_update_recovers_past_due(
    client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(client, sb, catalog.pro_monthly)
    customer = str(sub.customer)
    failing = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer}
    )
    client.v1.subscriptions.update(sub.id, params={"default_payment_method": failing.id})
    sb.advance(days=32)
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    assert "invoice.payment_failed" in types(sb)
    sb.update_payment_method(customer, "4242424242424242")
    recovered = client.v1.subscriptions.retrieve(sub.id)
    assert recovered.status == "active"
    assert client.v1.invoices.retrieve(str(recovered.latest_invoice)).status == "paid"


def test_cancel_at_period_end_and_cancel_at(
    client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(client, sb, catalog.pro_monthly)
    end = sub["items"].data[0].current_period_end
    scheduled = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert scheduled.cancel_at == end and scheduled.canceled_at and scheduled.status == "active"
    undone = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": False})
    assert undone.cancel_at is None and undone.canceled_at is None
    client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    sb.advance(to=end + 1)
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert ended.status == "canceled" and ended.ended_at == end and ended.canceled_at
    deleted = [e for e in sb.events if e["type"] == "customer.subscription.deleted"]
    assert deleted[0]["data"]["object"]["status"] == "canceled"
    assert client.v1.invoices.list(params={"subscription": sub.id}).data[0].billing_reason == (
        "subscription_create"
    )
    _, other = signup(client, sb, catalog.basic_monthly, email="b@example.com")
    at = sb.now() + 10 * DAY
    client.v1.subscriptions.update(other.id, params={"cancel_at": at})
    sb.advance(days=11)
    assert client.v1.subscriptions.retrieve(other.id).ended_at == at
    _, third = signup(client, sb, catalog.basic_monthly, email="c@example.com")
    canceled = client.v1.subscriptions.cancel(third.id)
    assert canceled.status == "canceled"
    assert client.v1.subscriptions.list().data == []
    assert len(client.v1.subscriptions.list(params={"status": "canceled"}).data) == 3


def test_upgrade_with_prorations_and_preview(
    client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(client, sb, catalog.basic_monthly)
    item = sub["items"].data[0]
    start, end = item.current_period_start, item.current_period_end
    sb.advance(seconds=(end - start) // 2)
    when = sb.now()
    swap = [{"id": item.id, "price": catalog.pro_monthly.id}]
    preview = client.v1.invoices.create_preview(
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
    assert client.v1.invoices.list(params={"subscription": sub.id}).data[0].billing_reason == (
        "subscription_create"
    )
    upcoming = client.v1.invoices.create_preview(
        params={
            "subscription": sub.id,
            "subscription_details": {"items": swap, "proration_date": when},
        }
    )
    assert upcoming.amount_due == preview.amount_due + 3000
    updated = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": swap,
            "proration_behavior": "always_invoice",
            "proration_date": when,
        },
    )
    assert updated["items"].data[0].price.id == catalog.pro_monthly.id
    assert updated["items"].data[0].current_period_end == end
    invoice = client.v1.invoices.retrieve(str(updated.latest_invoice))
    assert invoice.billing_reason == "subscription_update" and invoice.status == "paid"
    assert invoice.amount_paid == preview.amount_due


def test_proration_behaviors_create_and_none(
    client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(client, sb, catalog.basic_monthly)
    item = sub["items"].data[0]
    end = item.current_period_end
    sb.advance(days=10)
    client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "price": catalog.pro_monthly.id}],
        },
    )
    assert len(client.v1.invoices.list(params={"subscription": sub.id}).data) == 1
    client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "quantity": 2}],
            "proration_behavior": "none",
        },
    )
    sb.advance(to=end + 5)
    renewal = client.v1.invoices.list(params={"subscription": sub.id}).data[0]
    assert renewal.billing_reason == "subscription_cycle"
    flags = [line.parent.subscription_item_details.proration for line in renewal.lines.data]  # type: ignore[union-attr]
    assert flags == [True, True, False]
    assert renewal.lines.data[-1].amount == 6000


def test_interval_change_resets_the_cycle(
    client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(client, sb, catalog.pro_monthly)
    sb.advance(days=3)
    item = sub["items"].data[0]
    yearly = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "price": catalog.pro_yearly.id}],
        },
    )
    new_item = yearly["items"].data[0]
    assert new_item.current_period_start == sb.now()
    assert new_item.current_period_end - new_item.current_period_start >= 365 * DAY
    invoice = client.v1.invoices.retrieve(str(yearly.latest_invoice))
    assert invoice.billing_reason == "subscription_update" and invoice.status == "paid"


def test_trial_end_charges_and_trial_will_end(
    client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    session, sub = signup(client, sb, catalog.pro_monthly, trial_days=14)
    assert sub.status == "trialing" and session.payment_status == "no_payment_required"
    assert sub.trial_end == sub["items"].data[0].current_period_end
    first = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert first.amount_due == 0 and first.status == "paid"
    sb.advance(days=11, seconds=60)
    assert types(sb)[-1] == "customer.subscription.trial_will_end"
    sb.advance(days=3)
    active = client.v1.subscriptions.retrieve(sub.id)
    assert active.status == "active"
    invoice = client.v1.invoices.retrieve(str(active.latest_invoice))
    assert invoice.billing_reason == "subscription_cycle" and invoice.amount_paid == 3000
    _, ended_now = signup(client, sb, catalog.basic_monthly, trial_days=30, email="z@example.com")
    now_active = client.v1.subscriptions.update(ended_now.id, params={"trial_end": "now"})
    assert now_active.status == "active"


def test_pause_collection_and_pause_resume(
    client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, sub = signup(client, sb, catalog.basic_monthly)
    behaviors = {"keep_as_draft": "draft", "mark_uncollectible": "uncollectible", "void": "void"}
    for behavior, status in behaviors.items():
        client.v1.subscriptions.update(sub.id, params={"pause_collection": {"behavior": behavior}})
        end = client.v1.subscriptions.retrieve(sub.id)["items"].data[0].current_period_end
        sb.advance(to=end + 1)
        latest = client.v1.subscriptions.retrieve(sub.id).latest_invoice
        assert client.v1.invoices.retrieve(str(latest)).status == status, behavior
    cleared = client.v1.subscriptions.update(sub.id, params={"pause_collection": ""})
    assert cleared.pause_collection is None
    paused = client.v1.subscriptions.pause(sub.id)
    assert paused.status == "paused"
    sb.advance(days=60)
    assert client.v1.subscriptions.retrieve(sub.id).status == "paused"
    resumed = client.v1.subscriptions.resume(sub.id)
    assert resumed.status == "active"
    assert resumed["items"].data[0].current_period_start == sb.now()
    assert {"customer.subscription.paused", "customer.subscription.resumed"} <= set(types(sb))


def test_test_clock_moves_only_its_customers(
    client: stripe.StripeClient, sb: StripeSandbox, catalog: Catalog
) -> None:
    _, outside = signup(client, sb, catalog.basic_monthly)
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": sb.now()})
    customer = client.v1.customers.create(params={"test_clock": clock.id})
    client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    inside = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": catalog.pro_monthly.id}],
            "default_payment_method": client.v1.customers.payment_methods.list(customer.id)
            .data[0]
            .id,
        }
    )
    client.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": sb.now() + 95 * DAY}
    )
    assert len(client.v1.invoices.list(params={"subscription": inside.id}).data) == 4
    assert len(client.v1.invoices.list(params={"subscription": outside.id}).data) == 1
    sb.advance(days=35)
    assert len(client.v1.invoices.list(params={"subscription": inside.id}).data) == 4
    assert len(client.v1.invoices.list(params={"subscription": outside.id}).data) == 2
