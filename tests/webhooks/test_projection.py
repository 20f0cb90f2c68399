"""Projection rules: signals, failures and retries, unknown types, trusted payloads."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from flask_lattice import signals
from flask_lattice.models import Customer, WebhookEvent
from flask_lattice.state import get_state
from flask_lattice.stripe_gateway import API_VERSION
from flask_lattice.webhooks import queue
from tests.helpers.pipeline import JSON, bare_event, deliver, event_statuses, post_event, signup
from tests.helpers.support import (
    TEST_WEBHOOK_SECRET,
    driver_statements,
    host,
    run_worker,
    subscription_row,
)


@pytest.fixture
def received() -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Every lattice signal sent during the test, by name, with its keyword arguments."""
    seen: dict[str, list[dict[str, Any]]] = {}
    receivers = []
    for signal in (
        signals.subscription_changed,
        signals.payment_failed,
        signals.trial_will_end,
        signals.event_processed,
    ):

        def receiver(sender: Any, _name: str = signal.name, **kwargs: Any) -> None:
            seen.setdefault(_name, []).append(kwargs)

        signal.connect(receiver)
        receivers.append((signal, receiver))
    yield seen
    for signal, receiver in receivers:
        signal.disconnect(receiver)


def test_signup_projects_links_and_signals(
    app: Flask, sandbox: Any, received: dict[str, list[dict[str, Any]]]
) -> None:
    start = len(sandbox.events)
    ids = signup(sandbox, "user:7")
    events = sandbox.events[start:]
    deliver(app.test_client(), events, sandbox.webhook_secret)
    run_worker(app)
    row = subscription_row(app, ids["subscription"])
    assert (row.status, row.plan_key, row.billable_key) == ("active", "pro", "user:7")
    assert row.current_period_end is not None and row.current_period_start is not None
    assert row.price_ids == [row.items[0].price_id] if row.items else True
    with app.app_context():
        customer = host(app).db.session.scalar(sa.select(Customer))
        assert customer is not None
        assert (customer.stripe_customer_id, customer.billable_key) == (ids["customer"], "user:7")
    # Under when-safe the created event's own snapshot (incomplete) may be projected
    # first; the signals then walk through each state, ending at the fetched one.
    changes = received["lattice.subscription-changed"]
    assert changes[0]["old_status"] is None and changes[0]["old_plan"] is None
    assert changes[-1] | {"old_status": None, "old_plan": None} == {
        "billable_key": "user:7",
        "subscription_id": ids["subscription"],
        "old_status": None,
        "new_status": "active",
        "old_plan": None,
        "new_plan": "pro",
    }
    assert all(a["new_status"] == b["old_status"] for a, b in itertools.pairwise(changes))
    processed = received["lattice.event-processed"]
    assert sorted(item["event_id"] for item in processed) == sorted(e["id"] for e in events)
    assert {item["status"] for item in processed} == {"processed", "ignored"}


def test_dunning_sends_payment_failed_and_ends_canceled(
    app: Flask, sandbox: Any, received: dict[str, list[dict[str, Any]]]
) -> None:
    ids = signup(sandbox, "user:late")
    sandbox.update_payment_method(ids["customer"], card="4000000000000341")
    sandbox.advance(days=32)
    deliver(app.test_client(), sandbox.events, sandbox.webhook_secret)
    run_worker(app)
    assert subscription_row(app, ids["subscription"]).status == "past_due"
    failed = received["lattice.payment-failed"]
    assert failed and failed[0]["billable_key"] == "user:late"
    assert failed[0]["subscription_id"] == ids["subscription"]
    assert failed[0]["hosted_invoice_url"]
    seen = {event["id"] for event in sandbox.events}
    sandbox.advance(days=16)
    later = [event for event in sandbox.events if event["id"] not in seen]
    deliver(app.test_client(), later, sandbox.webhook_secret)
    run_worker(app)
    row = subscription_row(app, ids["subscription"])
    assert (row.status, row.ended_at is not None) == ("canceled", True)
    # Under when-safe the events' own snapshots walk through signup's states first; the
    # renewal ends past_due and dunning ends canceled, each signalled once.
    statuses = [change["new_status"] for change in received["lattice.subscription-changed"]]
    assert statuses[-2:] == ["past_due", "canceled"]
    assert statuses.count("past_due") == statuses.count("canceled") == 1


def test_trial_will_end_is_signalled_while_trialing(
    app: Flask, sandbox: Any, received: dict[str, list[dict[str, Any]]]
) -> None:
    client = sandbox.client()
    customer = client.v1.customers.create(params={"metadata": {"lattice_billable": "user:t"}})
    price = client.v1.prices.list(params={"lookup_keys": ["team_monthly"]}).data[0]
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price.id, "quantity": 1}],
            "subscription_data": {"trial_period_days": 14},
            "success_url": "http://127.0.0.1/done",
        }
    )
    sandbox.complete_checkout(session.id)
    sandbox.advance(days=12)
    deliver(app.test_client(), sandbox.events, sandbox.webhook_secret)
    run_worker(app)
    (notice,) = received["lattice.trial-will-end"]
    assert notice["billable_key"] == "user:t"
    assert notice["trial_end"] is not None
    assert received["lattice.subscription-changed"][0]["new_status"] == "trialing"


def test_unknown_event_types_are_stored_and_ignored(
    app: Flask, sandbox: Any, received: dict[str, list[dict[str, Any]]]
) -> None:
    event = bare_event("evt_unknown_type", "radar.early_fraud_warning.created", sandbox.now())
    assert post_event(app.test_client(), event, sandbox.webhook_secret).status_code == 200
    # Stored as ignored at once, with no job for a worker: no attempt is ever counted.
    assert event_statuses(app) == {"evt_unknown_type": ("ignored", 0)}
    queue.flush_enqueued(app)
    with app.app_context():
        assert queue.queue(app).count == 0
        row = get_state().db.session.get(WebhookEvent, "evt_unknown_type")
        assert row is not None
        assert (row.outcome, row.processed_at) == ("ignored", row.received_at)
    assert received["lattice.event-processed"] == [
        {
            "event_id": "evt_unknown_type",
            "event_type": "radar.early_fraud_warning.created",
            "status": "ignored",
        }
    ]
    # A second delivery is a duplicate: no second signal.
    assert post_event(app.test_client(), event, sandbox.webhook_secret).status_code == 200
    run_worker(app)
    assert event_statuses(app) == {"evt_unknown_type": ("ignored", 0)}
    assert len(received["lattice.event-processed"]) == 1


def test_a_failing_receiver_never_costs_an_ignored_event_its_200(
    app: Flask, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("the host's receiver broke")

    signals.event_processed.connect(broken)
    try:
        event = bare_event("evt_receiver", "charge.refunded", sandbox.now())
        answer = post_event(app.test_client(), event, sandbox.webhook_secret)
    finally:
        signals.event_processed.disconnect(broken)
    assert (answer.status_code, answer.data) == (200, b"stored\n")
    assert event_statuses(app) == {"evt_receiver": ("ignored", 0)}
    assert "an event_processed receiver failed for stored event evt_receiver" in caplog.text
    assert "the host's receiver broke" in caplog.text


def test_a_type_with_an_on_event_handler_gets_a_job(app: Flask, sandbox: Any) -> None:
    seen: list[str] = []
    host(app).billing.on_event("charge.dispute.created")(lambda event: seen.append(event["id"]))
    for event_id, event_type in (("evt_dispute", "charge.dispute.created"),
                                 ("evt_refund", "charge.refunded")):  # fmt: skip
        event = bare_event(event_id, event_type, sandbox.now())
        assert post_event(app.test_client(), event, sandbox.webhook_secret).status_code == 200
    assert event_statuses(app) == {"evt_dispute": ("received", 0), "evt_refund": ("ignored", 0)}
    run_worker(app)
    assert event_statuses(app) == {"evt_dispute": ("processed", 1), "evt_refund": ("ignored", 0)}
    assert seen == ["evt_dispute"]


def test_a_failing_handler_marks_the_event_failed_and_replay_recovers_it(
    app_factory: Callable[..., Flask], sandbox: Any, received: dict[str, list[dict[str, Any]]]
) -> None:
    app = app_factory(sandbox=sandbox)
    billing = app.extensions["lattice"]
    broken = {"on": True}

    def handler(event: JSON) -> None:
        if broken["on"]:
            raise RuntimeError("the host's handler broke")

    billing.hooks.event_handlers["customer.subscription.updated"] = [handler]
    start = len(sandbox.events)
    ids = signup(sandbox, "user:retry")
    deliver(app.test_client(), sandbox.events[start:], sandbox.webhook_secret)
    run_worker(app)
    failed = {key: value for key, value in event_statuses(app).items() if value[0] == "failed"}
    assert len(failed) == 1
    (event_id,) = failed
    attempts = 1 + len(app.config["LATTICE_JOB_RETRY_INTERVALS"])
    assert failed[event_id] == ("failed", attempts)
    with app.app_context():
        cli = app.test_cli_runner()
        listing = cli.invoke(args=["lattice", "events", "--status", "failed"])
    assert event_id in listing.output and "the host's handler broke" in listing.output
    assert any(item["status"] == "failed" for item in received["lattice.event-processed"])

    broken["on"] = False
    result = app.test_cli_runner().invoke(args=["lattice", "replay", "--failed"])
    assert result.exit_code == 0, result.output
    assert f"{event_id}  customer.subscription.updated" in result.output
    assert result.output.splitlines()[-1] == "1 applied"
    # The replay is one more attempt: the history of the failed ones is kept.
    assert event_statuses(app)[event_id] == ("processed", attempts + 1)
    assert subscription_row(app, ids["subscription"]).status == "active"


def _subscription_event(
    event_id: str, created: int, status: str, subscription_id: str = "sub_trusted"
) -> JSON:
    return {
        "id": event_id,
        "object": "event",
        "type": "customer.subscription.updated",
        "created": created,
        "livemode": False,
        "api_version": API_VERSION,
        "data": {
            "object": {
                "id": subscription_id,
                "object": "subscription",
                "customer": "cus_trusted",
                "status": status,
                "metadata": {"lattice_billable": "user:trusted"},
                "cancel_at_period_end": False,
                "cancel_at": None,
                "livemode": False,
                "items": {
                    "object": "list",
                    "data": [
                        {
                            "id": "si_trusted",
                            "quantity": 1,
                            "current_period_start": created,
                            "current_period_end": created + 30 * 86400,
                            "price": {"id": "price_x", "lookup_key": "team_monthly"},
                        }
                    ],
                    "has_more": False,
                },
            }
        },
    }


@pytest.mark.parametrize("policy", ["when-safe", "always-trust"])
def test_trusted_payloads_never_let_an_older_snapshot_win(
    app_factory: Callable[..., Flask], policy: str
) -> None:
    # No sandbox: every Stripe call would fail, so these are projected from payloads.
    app = app_factory(LATTICE_TRUST_WEBHOOK_PAYLOADS=policy)
    client = app.test_client()
    newer = _subscription_event("evt_newer", 2_000_000_100, "active")
    older = _subscription_event("evt_older", 2_000_000_000, "incomplete")
    for event in (newer, older):
        assert post_event(client, event, TEST_WEBHOOK_SECRET).status_code == 200
    run_worker(app)
    assert event_statuses(app) == {"evt_newer": ("processed", 1), "evt_older": ("processed", 1)}
    row = subscription_row(app, "sub_trusted")
    # The subscription's metadata names a billable, but only the app's record of the
    # customer decides ownership: cus_trusted is unknown, so the row stays unlinked.
    assert (row.status, row.plan_key, row.billable_key) == ("active", "team", None)
    assert (row.watermark_event_id, int(row.watermark_created.timestamp())) == (
        "evt_newer",
        2_000_000_100,
    )

    # A newer snapshot still wins, and a tie (same second) is re-fetched: here Stripe is
    # unreachable, so the tie fails and is retried rather than guessed. (The newer one
    # stays in good standing: one that ended it would be confirmed with Stripe too.)
    newest = _subscription_event("evt_newest", 2_000_000_200, "trialing")
    tie = copy.deepcopy(newest)
    tie["id"], tie["data"]["object"]["status"] = "evt_tie", "active"
    for event in (newest, tie):
        assert post_event(client, event, TEST_WEBHOOK_SECRET).status_code == 200
    run_worker(app)
    statuses = event_statuses(app)
    assert statuses["evt_newest"] == ("processed", 1)
    assert statuses["evt_tie"][0] == "failed"
    assert subscription_row(app, "sub_trusted").status == "trialing"


def test_a_portal_card_change_reaches_the_subscription(app: Flask, sandbox: Any) -> None:
    # Stripe's portal saves a new card as the customer's invoice_settings.default_payment_method
    # only; Checkout gave the subscription its own default_payment_method, which takes precedence
    # (docs.stripe.com/api/subscriptions/object#subscription_object-default_payment_method).
    # The customer.updated webhook points the subscription at the customer's new default.
    ids = signup(sandbox, "user:card")
    client = sandbox.client()
    checkout_card = client.v1.subscriptions.retrieve(ids["subscription"]).default_payment_method
    start = len(sandbox.events)
    session = client.v1.billing_portal.sessions.create(params={"customer": ids["customer"]})
    form = {"card_number": "4000000000000341"}
    answer = requests.post(f"{session.url}/payment_method", data=form, allow_redirects=False)
    assert answer.status_code == 303
    new_card = client.v1.customers.retrieve(ids["customer"]).invoice_settings.default_payment_method
    assert new_card and new_card != checkout_card
    deliver(app.test_client(), sandbox.events[start:], sandbox.webhook_secret)
    run_worker(app)
    assert client.v1.subscriptions.retrieve(ids["subscription"]).default_payment_method == new_card


@pytest.mark.parametrize(
    ("change", "policy", "projected"),
    [
        ("other api_version", "when-safe", False),
        ("other api_version", "always-trust", False),
        ("partial object", "always-trust", True),
        ("partial object", "when-safe", False),
        ("thin event", "when-safe", False),
        ("nothing", "always-fetch", False),
        ("nothing", "when-safe", True),
    ],
)
def test_when_safe_refetches_payloads_it_cannot_trust(
    app_factory: Callable[..., Flask], change: str, policy: str, projected: bool
) -> None:
    # No sandbox: a re-fetch fails, so "failed" shows the worker asked Stripe.
    app = app_factory(LATTICE_TRUST_WEBHOOK_PAYLOADS=policy)
    event = _subscription_event("evt_doubt", 2_000_000_100, "active")
    if change == "other api_version":
        event["api_version"] = "2019-12-03"
    elif change == "partial object":
        del event["data"]["object"]["items"]
    elif change == "thin event":
        event["data"]["object"] = {"id": "sub_trusted", "object": "subscription"}
    assert post_event(app.test_client(), event, TEST_WEBHOOK_SECRET).status_code == 200
    run_worker(app)
    assert event_statuses(app)["evt_doubt"][0] == ("processed" if projected else "failed")


def test_old_boolean_setting_still_works_with_a_deprecation_warning(
    app_factory: Callable[..., Flask],
) -> None:
    with pytest.warns(DeprecationWarning, match="LATTICE_TRUST_WEBHOOK_PAYLOADS = True"):
        app = app_factory(LATTICE_TRUST_WEBHOOK_PAYLOADS=True)
    assert get_state(app).config.fetch_policy == "always-trust"


def test_the_warm_up_runs_a_jobs_statements_and_leaves_nothing_behind(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    from flask_lattice.models import Invoice, Subscription, WebhookEvent
    from flask_lattice.webhooks.job import warm_up

    with app.app_context(), driver_statements(app) as statements:
        warm_up()
    assert "warming up the worker failed" not in caplog.text
    updates = " ".join(statement for statement in statements if statement.startswith("UPDATE"))
    # the renewal, and the snapshot that only moves the watermark
    assert "current_period_end" in updates and "watermark_event_id" in updates
    assert "lattice_webhook_events SET status" in updates  # the job's last statement
    with app.app_context():
        session = host(app).db.session
        for model in (Customer, Subscription, Invoice, WebhookEvent):
            assert session.scalar(sa.select(sa.func.count()).select_from(model)) == 0
