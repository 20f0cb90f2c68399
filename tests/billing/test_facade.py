"""``billing.subscriptions``: reads, streaming, writes, guards and idempotency, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from flask_lattice import LatticeBilling
from flask_lattice.billing.facade import SubscriptionsFacade
from flask_lattice.errors import StripeAPIError, StripeGuardError, StripeNotFound
from flask_lattice.signals import stripe_request
from flask_lattice.testing import ensure_prices
from tests.helpers.subscriptions import Subscriber, stripe_subscription
from tests.helpers.support import TEST_PRICES


@pytest.fixture
def requests(app: Flask) -> Iterator[list[dict[str, Any]]]:
    """Every Stripe request the app sends (from the ``stripe_request`` signal)."""
    sent: list[dict[str, Any]] = []

    def record(sender: Any, **details: Any) -> None:
        sent.append(details)

    stripe_request.connect(record, app)
    yield sent
    stripe_request.disconnect(record, app)


def facade(app: Flask) -> SubscriptionsFacade:
    return SubscriptionsFacade.for_app(app)


def plan_item(subscriber: Subscriber) -> str:
    item_id: str = subscriber.stripe()["items"]["data"][0]["id"]
    return item_id


def incomplete_subscriptions(sandbox: Any, count: int, tag: str) -> list[str]:
    """``count`` subscriptions of one customer, created straight in the sandbox."""
    client = sandbox.client()
    price = ensure_prices(client, TEST_PRICES)["pro_monthly"]
    customer = client.v1.customers.create({"email": "list@example.com"})
    created = []
    for _ in range(count):
        sub = client.v1.subscriptions.create(
            {
                "customer": customer.id,
                "items": [{"price": price}],
                "payment_behavior": "default_incomplete",
                "metadata": {"tag": tag},
            }
        )
        created.append(sub.id)
    return created


# -- reads ------------------------------------------------------------------------------------


def test_billing_subscriptions_is_the_facade_of_the_current_app(subscriber: Subscriber) -> None:
    with subscriber.app.app_context():
        found = LatticeBilling().subscriptions.retrieve(subscriber.subscription_id)
    assert found["object"] == "subscription"
    assert found["id"] == subscriber.subscription_id
    assert found["status"] == "active"


def test_retrieve_unknown_subscription_is_a_clear_error(app: Flask) -> None:
    with app.app_context(), pytest.raises(StripeNotFound):
        facade(app).retrieve("sub_does_not_exist")


def test_list_search_and_stream(app: Flask, sandbox: Any) -> None:
    created = incomplete_subscriptions(sandbox, 3, "stream")
    customer = stripe_subscription(sandbox, created[0])["customer"]
    sandbox.wait_for_search()  # search is eventually consistent, as on Stripe
    with app.app_context():
        page = facade(app).list(customer=customer, status="all", limit=2)
        assert [sub["id"] for sub in page["data"]] == list(reversed(created))[:2]
        assert page["has_more"] is True
        hits = facade(app).search("metadata['tag']:'stream'", limit=10)
        assert sorted(sub["id"] for sub in hits["data"]) == sorted(created)
        streamed = [
            sub["id"] for sub in facade(app).stream(customer=customer, status="all", page_size=1)
        ]
        assert streamed == list(reversed(created))
        searched = [
            sub["id"] for sub in facade(app).stream(query="metadata['tag']:'stream'", page_size=1)
        ]
        assert sorted(searched) == sorted(created)


def test_stream_raises_when_a_later_page_fails(app: Flask, sandbox: Any) -> None:
    incomplete_subscriptions(sandbox, 3, "broken")
    with app.app_context():
        stream = facade(app).stream(status="all", page_size=1)
        first = next(stream)
        assert first["object"] == "subscription"
        sandbox.reset()  # the cursor object is gone: the next page request fails in Stripe
        with pytest.raises(StripeAPIError):
            next(stream)


# -- guards ---------------------------------------------------------------------------------------


def test_update_without_proration_behavior_is_refused_before_sending(
    subscriber: Subscriber, requests: list[dict[str, Any]]
) -> None:
    item = plan_item(subscriber)
    with subscriber.app.app_context():
        with pytest.raises(StripeGuardError, match="proration_behavior"):
            facade(subscriber.app).update(
                subscriber.subscription_id, {"items": [{"id": item, "quantity": 2}]}
            )
        assert requests == []
        assert subscriber.stripe()["items"]["data"][0]["quantity"] == 1
        updated = facade(subscriber.app).update(
            subscriber.subscription_id,
            {"items": [{"id": item, "quantity": 2}], "proration_behavior": "none"},
        )
    assert updated["items"]["data"][0]["quantity"] == 2
    assert [request["path"] for request in requests] == [
        f"/v1/subscriptions/{subscriber.subscription_id}"
    ]


def test_typed_writes_always_say_proration_behavior(
    subscriber: Subscriber, requests: list[dict[str, Any]]
) -> None:
    with subscriber.app.app_context():
        subs = facade(subscriber.app)
        subs.set_quantity(subscriber.subscription_id, item_id=plan_item(subscriber), quantity=2)
        subs.cancel(subscriber.subscription_id)
        subs.resume(subscriber.subscription_id)
        subs.pause_collection(subscriber.subscription_id, "keep_as_draft")
        subs.unpause(subscriber.subscription_id)
    assert [request["status"] for request in requests if request["method"] == "POST"] == [200] * 5


def test_the_guard_can_be_switched_off(app_factory: Callable[..., Flask], sandbox: Any) -> None:
    from tests.helpers.subscriptions import subscribe

    app = app_factory(sandbox=sandbox, LATTICE_REQUIRE_EXPLICIT_PRORATION=False)
    subscriber = subscribe(app, sandbox)
    with app.app_context():
        updated = facade(app).update(
            subscriber.subscription_id, {"items": [{"id": plan_item(subscriber), "quantity": 4}]}
        )
    assert updated["items"]["data"][0]["quantity"] == 4


def test_an_unknown_proration_behavior_is_refused(subscriber: Subscriber) -> None:
    with subscriber.app.app_context(), pytest.raises(StripeGuardError, match="proration_behavior"):
        facade(subscriber.app).set_quantity(
            subscriber.subscription_id,
            item_id=plan_item(subscriber),
            quantity=2,
            proration_behavior="sometimes",
        )


@pytest.mark.parametrize("behavior", ["pause", "", "KEEP_AS_DRAFT"])
def test_pause_guard_refuses_unknown_behaviors_before_sending(
    subscriber: Subscriber, requests: list[dict[str, Any]], behavior: str
) -> None:
    with subscriber.app.app_context(), pytest.raises(StripeGuardError, match="pause_collection"):
        facade(subscriber.app).pause_collection(subscriber.subscription_id, behavior)
    assert requests == []
    assert subscriber.stripe()["pause_collection"] is None


# -- writes -------------------------------------------------------------------------------------


def test_cancel_at_period_end_and_resume(subscriber: Subscriber) -> None:
    with subscriber.app.app_context():
        subs = facade(subscriber.app)
        canceled = subs.cancel(subscriber.subscription_id)
        assert canceled["cancel_at_period_end"] is True
        assert canceled["status"] == "active"
        resumed = subs.resume(subscriber.subscription_id)
    assert resumed["cancel_at_period_end"] is False
    assert resumed["cancel_at"] is None
    assert subscriber.stripe()["cancel_at_period_end"] is False


def test_resume_clears_a_cancel_at_date(subscriber: Subscriber) -> None:
    live = subscriber.stripe()
    end = live["items"]["data"][0]["current_period_end"]
    subscriber.sandbox.client().v1.subscriptions.update(
        subscriber.subscription_id, {"cancel_at": end - 86_400, "proration_behavior": "none"}
    )
    assert subscriber.stripe()["cancel_at"] == end - 86_400
    with subscriber.app.app_context():
        resumed = facade(subscriber.app).resume(subscriber.subscription_id)
    assert resumed["cancel_at"] is None
    assert resumed["cancel_at_period_end"] is False


def test_cancel_now(subscriber: Subscriber) -> None:
    with subscriber.app.app_context():
        canceled = facade(subscriber.app).cancel(subscriber.subscription_id, at_period_end=False)
    assert canceled["status"] == "canceled"


def test_pause_and_unpause_collection(subscriber: Subscriber) -> None:
    live = subscriber.stripe()
    resumes_at = live["items"]["data"][0]["current_period_end"] + 86_400
    with subscriber.app.app_context():
        subs = facade(subscriber.app)
        paused = subs.pause_collection(subscriber.subscription_id, "void", resumes_at)
        assert paused["pause_collection"]["behavior"] == "void"
        assert paused["pause_collection"]["resumes_at"] == resumes_at
        assert paused["status"] == "active"
        assert subs.unpause(subscriber.subscription_id)["pause_collection"] is None


def test_swap_with_a_preview_applies_the_previewed_prorations(subscriber: Subscriber) -> None:
    team = ensure_prices(subscriber.sandbox.client(), TEST_PRICES)["team_monthly"]
    item = subscriber.stripe()["items"]["data"][0]
    proration_date = item["current_period_start"] + 3600
    with subscriber.app.app_context():
        subs = facade(subscriber.app)
        preview = subs.preview_change(
            subscriber.subscription_id,
            [{"id": item["id"], "price": team}],
            proration_date=proration_date,
        )
        swapped = subs.swap(
            subscriber.subscription_id,
            item_id=item["id"],
            price_id=team,
            proration_date=proration_date,
        )
        upcoming = subscriber.app.extensions["lattice"].stripe.preview_invoice(
            {
                "subscription": subscriber.subscription_id,
                "subscription_details": {"proration_behavior": "create_prorations"},
            }
        )
    assert swapped["items"]["data"][0]["price"]["id"] == team
    prorations = [line["amount"] for line in preview["lines"]["data"]][:2]
    assert prorations[0] < 0 < prorations[1]
    assert upcoming["amount_due"] == preview["amount_due"]


# -- idempotency ------------------------------------------------------------------------------


def test_identical_calls_are_one_change_and_different_calls_are_not(
    subscriber: Subscriber, requests: list[dict[str, Any]]
) -> None:
    item = plan_item(subscriber)
    before = len(subscriber.updates())
    with subscriber.app.app_context():
        subs = facade(subscriber.app)
        subs.set_quantity(subscriber.subscription_id, item_id=item, quantity=3, scope="click-1")
        subs.set_quantity(subscriber.subscription_id, item_id=item, quantity=3, scope="click-1")
        assert len(subscriber.updates()) == before + 1
        subs.set_quantity(subscriber.subscription_id, item_id=item, quantity=5, scope="click-1")
        assert subscriber.stripe()["items"]["data"][0]["quantity"] == 5
        subs.set_quantity(subscriber.subscription_id, item_id=item, quantity=3, scope="click-2")
    assert subscriber.stripe()["items"]["data"][0]["quantity"] == 3
    keys = [request["idempotency_key"] for request in requests]
    assert keys[0] == keys[1]
    assert len(set(keys)) == 3
    assert all(key.startswith("lattice-subscription-quantity-") for key in keys)
