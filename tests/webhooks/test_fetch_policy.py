"""The fetch policy: when an event's own snapshot is projected, when Stripe is asked, and
how Stripe's rate limits reschedule a job instead of failing it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_lattice import Access, Billable, current_access
from flask_lattice.models import WebhookEvent
from flask_lattice.signals import stripe_request
from flask_lattice.webhooks.fetch_policy import CLOCK_TOLERANCE, FetchPolicy, PaidInvoice, decide
from flask_lattice.webhooks.projection import EventMark
from tests.helpers.pipeline import deliver, event_statuses, signup, snapshot, switch_price
from tests.helpers.support import host, run_worker, subscription_row

T0 = datetime(2026, 11, 1, tzinfo=UTC)
PINNED = "2026-10-28.endive"
FULL = {
    "id": "sub_1",
    "object": "subscription",
    "customer": "cus_1",
    "status": "active",
    "items": {"object": "list", "data": [], "has_more": False},
    "cancel_at_period_end": False,
    "cancel_at": None,
    "livemode": False,
}
PARTIAL = {key: value for key, value in FULL.items() if key != "items"}
CYCLE = "subscription_cycle"
MONTH = timedelta(days=30)


def _decide(
    policy: FetchPolicy,
    event: EventMark,
    *,
    watermark: datetime,
    payload: dict[str, Any] | None,
    stored_status: str | None,
    paid_invoice: PaidInvoice | None = None,
) -> str:
    """The decision for a subscription row with this watermark and status, never fetched."""
    return decide(
        policy,
        event,
        watermark=watermark,
        fetched_at=None,
        payload=payload,
        kind="subscription",
        pinned_version=PINNED,
        stored_status=stored_status,
        paid_invoice=paid_invoice,
    )


def _event(created: datetime = T0, *, version: str = PINNED, received: datetime = T0) -> EventMark:
    return EventMark(id="evt_1", created=created, api_version=version, received_at=received)


@pytest.mark.parametrize(
    ("case", "event", "row", "payload", "expected"),
    [
        ("new row", _event(), (None, None), FULL, "payload"),
        ("strictly newer", _event(), (T0 - timedelta(seconds=1), None), FULL, "payload"),
        ("tie with the watermark", _event(), (T0, None), FULL, "fetch"),
        ("older than the watermark", _event(), (T0 + timedelta(seconds=1), None), FULL, "skip"),
        ("other api_version", _event(version="2019-12-03"), (None, None), FULL, "fetch"),
        ("thin payload", _event(), (None, None), None, "fetch"),
        ("partial payload", _event(), (None, None), PARTIAL, "fetch"),
        (
            "truncated items",
            _event(),
            (None, None),
            {**FULL, "items": {"data": [], "has_more": True}},
            "fetch",
        ),
        ("other object", _event(), (None, None), {**FULL, "object": "invoice"}, "fetch"),
        (
            "fetched after the event arrived",
            _event(received=T0),
            (T0 - timedelta(days=1), T0 + timedelta(seconds=5)),
            FULL,
            "coalesce",
        ),
        (
            "fetched about when the event arrived",
            _event(received=T0),
            (T0 - timedelta(days=1), T0 + timedelta(milliseconds=300)),
            FULL,
            "fetch",
        ),
        (
            "fetched long before the event arrived",
            _event(received=T0),
            (T0 - timedelta(days=1), T0 - timedelta(seconds=5)),
            FULL,
            "payload",
        ),
    ],
)
def test_when_safe(
    case: str,
    event: EventMark,
    row: tuple[datetime | None, datetime | None],
    payload: dict[str, Any] | None,
    expected: str,
) -> None:
    watermark, fetched_at = row
    decision = decide(
        FetchPolicy.WHEN_SAFE,
        event,
        watermark=watermark,
        fetched_at=fetched_at,
        payload=payload,
        kind="subscription",
        pinned_version=PINNED,
    )
    assert decision == expected, case


INVOICE = {
    "id": "in_1",
    "object": "invoice",
    "customer": "cus_1",
    "currency": "usd",
    "amount_due": 1200,
    "amount_paid": 1200,
    "amount_remaining": 0,
    "total": 1200,
    "parent": None,
}


@pytest.mark.parametrize(
    ("stored", "offered", "expected"),
    [
        ("open", "paid", "payload"),  # invoice.paid in the second of invoice.finalized
        ("paid", "open", "skip"),  # ... and the other way round
        ("draft", "open", "payload"),
        ("uncollectible", "paid", "payload"),
        ("paid", "paid", "skip"),  # two snapshots of a paid invoice agree
        ("void", "void", "skip"),
        ("paid", "void", "fetch"),  # the same stage, yet they differ: only Stripe knows
        ("open", "open", "fetch"),
        ("uncollectible", "uncollectible", "fetch"),
        (None, "paid", "fetch"),
    ],
)
def test_a_tie_between_invoice_stages_needs_no_fetch(
    stored: str | None, offered: str, expected: str
) -> None:
    decision = decide(
        FetchPolicy.WHEN_SAFE,
        _event(),
        watermark=T0,
        fetched_at=None,
        payload={**INVOICE, "status": offered},
        kind="invoice",
        pinned_version=PINNED,
        stored_status=stored,
    )
    assert decision == expected
    # A subscription has no one-way lifecycle (active and past_due alternate); the tie is
    # past_due → active, which leaves good standing alone, so only the tie decides.
    assert (
        _decide(
            FetchPolicy.WHEN_SAFE,
            _event(),
            watermark=T0,
            payload={**FULL, "status": "active"},
            stored_status="past_due",
        )
        == "fetch"
    )


@pytest.mark.parametrize(
    ("case", "reason", "status", "period_end", "expected"),
    [
        ("a renewal, the row in the period it bills", CYCLE, "active", T0 + MONTH, "skip"),
        ("trialing, in the period", CYCLE, "trialing", T0 + MONTH, "skip"),
        ("the row still in the period before the renewal", CYCLE, "active", T0, "fetch"),
        ("the first payment of an incomplete subscription", CYCLE, "incomplete", None, "fetch"),
        ("a recovered past_due subscription", CYCLE, "past_due", T0 + MONTH, "fetch"),
        ("unpaid", CYCLE, "unpaid", T0 + MONTH, "fetch"),
        ("a row with no period", CYCLE, "active", None, "fetch"),
        ("the first invoice", "subscription_create", "active", T0 + MONTH, "fetch"),
        # a proration, or the final invoice of a cancellation (invoice_now)
        ("an invoice of a change", "subscription_update", "active", T0 + MONTH, "fetch"),
        ("an invoice without a reason", None, "active", T0 + MONTH, "fetch"),
    ],
)
def test_a_paid_invoice_refreshes_its_subscription_only_when_the_payment_can_change_it(
    case: str, reason: str | None, status: str, period_end: datetime | None, expected: str
) -> None:
    # invoice.paid an hour after the invoice was created (T0); the row was projected
    # from an earlier customer.subscription.updated.
    paid = PaidInvoice(billing_reason=reason, invoice_created=T0, period_end=period_end)
    later = _event(T0 + timedelta(hours=1), received=T0 + timedelta(hours=1))

    def decision(policy: FetchPolicy) -> str:
        return _decide(
            policy, later, watermark=T0, payload=None, stored_status=status, paid_invoice=paid
        )

    assert decision(FetchPolicy.WHEN_SAFE) == expected, case
    assert decision(FetchPolicy.ALWAYS_TRUST) == expected, case
    assert decision(FetchPolicy.ALWAYS_FETCH) == "fetch", case


@pytest.mark.parametrize(
    ("stored", "offered", "expected"),
    [
        ("active", "past_due", "fetch"),
        ("active", "canceled", "fetch"),
        ("trialing", "paused", "fetch"),
        ("trialing", "active", "payload"),
        ("past_due", "active", "payload"),
        ("incomplete", "active", "payload"),
        ("past_due", "unpaid", "payload"),
        (None, "past_due", "payload"),
    ],
)
def test_a_snapshot_that_ends_good_standing_is_confirmed_with_stripe(
    stored: str | None, offered: str, expected: str
) -> None:
    for policy in (FetchPolicy.WHEN_SAFE, FetchPolicy.ALWAYS_TRUST):
        decision = _decide(
            policy,
            _event(),
            watermark=T0 - timedelta(seconds=1),
            payload={**FULL, "status": offered},
            stored_status=stored,
        )
        assert decision == expected, (stored, offered, policy)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (FetchPolicy.ALWAYS_FETCH, ["fetch", "fetch", "skip", "fetch"]),
        (FetchPolicy.ALWAYS_TRUST, ["fetch", "fetch", "skip", "coalesce"]),
    ],
)
def test_other_policies(policy: FetchPolicy, expected: list[str]) -> None:
    # other api_version, tie, older, fetched after the event arrived
    cases = [
        (_event(version="2019-12-03"), None, None),
        (_event(), T0, None),
        (_event(), T0 + timedelta(seconds=1), None),
        (_event(), T0 - timedelta(days=1), T0 + timedelta(seconds=5)),
    ]
    decisions = [
        decide(
            policy,
            event,
            watermark=watermark,
            fetched_at=fetched_at,
            payload=FULL,
            kind="subscription",
            pinned_version=PINNED,
        )
        for event, watermark, fetched_at in cases
    ]
    assert decisions == expected


def test_a_sync_projects_what_it_was_given() -> None:
    assert (
        decide(
            FetchPolicy.ALWAYS_FETCH,
            None,
            watermark=T0,
            fetched_at=T0,
            payload=None,
            kind="subscription",
            pinned_version=PINNED,
        )
        == "payload"
    )


# -- against the sandbox ------------------------------------------------------------------


@pytest.fixture
def reads() -> Iterator[list[str]]:
    """The path of every GET the app sends to Stripe."""
    seen: list[str] = []

    def record(sender: Any, **details: Any) -> None:
        if details["method"] == "GET":
            seen.append(details["path"])

    stripe_request.connect(record)
    yield seen
    stripe_request.disconnect(record)


def _renewal_stream(sandbox: Any) -> list[dict[str, Any]]:
    start = len(sandbox.events)
    signup(sandbox, "user:storm")
    sandbox.advance(days=32)
    events: list[dict[str, Any]] = sandbox.events[start:]
    return events


def _age_the_inbox(app: Flask, seconds: float) -> None:
    """Pretend every stored event arrived ``seconds`` ago (a queue backlog)."""
    with app.app_context():
        session = host(app).db.session
        received = datetime.now(UTC) - timedelta(seconds=seconds)
        session.execute(sa.update(WebhookEvent).values(received_at=received))
        session.commit()


def test_coalescing_needs_far_fewer_reads_and_projects_the_same(
    app_factory: Callable[..., Flask], sandbox: Any, reads: list[str]
) -> None:
    events = _renewal_stream(sandbox)
    results = {}
    for policy in ("always-fetch", "when-safe"):
        app = app_factory(sandbox=sandbox, LATTICE_TRUST_WEBHOOK_PAYLOADS=policy)
        deliver(app.test_client(), events, sandbox.webhook_secret)
        _age_the_inbox(app, 60)
        reads.clear()
        run_worker(app)
        assert {status for status, _ in event_statuses(app).values()} <= {"processed", "ignored"}
        results[policy] = (len(reads), snapshot(app))
        with app.app_context():
            host(app).db.drop_all()
    (fetching, fetched_state), (safe, safe_state) = results["always-fetch"], results["when-safe"]
    assert safe_state == fetched_state
    # A backlog: the first fetch of each row happens after every event arrived, so the
    # rest of that row's events coalesce into it.
    assert fetching >= 5
    assert safe * 3 <= fetching, (safe, fetching)


def test_an_exhausted_read_budget_reschedules_without_a_failed_attempt(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    # One read per 1,000 s: the second read of the storm would wait far longer than the
    # budget's limit, so the job reschedules itself instead of failing.
    events = _renewal_stream(sandbox)
    app = app_factory(
        sandbox=sandbox,
        LATTICE_TRUST_WEBHOOK_PAYLOADS="always-fetch",
        LATTICE_STRIPE_READ_RATE=0.001,
    )
    deliver(app.test_client(), events, sandbox.webhook_secret)
    run_worker(app)
    statuses = event_statuses(app)
    assert "failed" not in {status for status, _ in statuses.values()}
    waiting = [event_id for event_id, (status, _) in statuses.items() if status == "received"]
    assert waiting
    assert all(statuses[event_id][1] == 0 for event_id in waiting)


class _StripeSays429:
    """Wraps the sandbox's WSGI app: while ``on``, every GET gets Stripe's rate-limit answer
    (docs.stripe.com/rate-limits: HTTP 429, code ``rate_limit``, ``Stripe-Should-Retry``)."""

    def __init__(self, app: Any) -> None:
        self.app, self.on, self.answered = app, True, 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not (self.on and environ["REQUEST_METHOD"] == "GET"):
            return self.app(environ, start_response)
        self.answered += 1
        body = b'{"error": {"type": "invalid_request_error", "code": "rate_limit"}}'
        start_response(
            "429 Too Many Requests",
            [("Content-Type", "application/json"), ("Stripe-Should-Retry", "true")],
        )
        return [body]


def test_a_429_reschedules_the_job_and_the_event_is_processed_later(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    from rq.registry import ScheduledJobRegistry

    from flask_lattice.webhooks import queue

    events = _renewal_stream(sandbox)
    app = app_factory(sandbox=sandbox, LATTICE_TRUST_WEBHOOK_PAYLOADS="always-fetch")
    server = sandbox._server
    limiter = _StripeSays429(server.app)
    server.app = limiter
    try:
        deliver(app.test_client(), events, sandbox.webhook_secret)
        run_worker(app)
        statuses = event_statuses(app)
        assert limiter.answered > 0
        assert "failed" not in {status for status, _ in statuses.values()}
        waiting = {event_id for event_id, (status, _) in statuses.items() if status == "received"}
        assert waiting and all(statuses[event_id][1] == 0 for event_id in waiting)
        registry = ScheduledJobRegistry(queue=queue.queue(app))  # type: ignore[no-untyped-call]
        assert {queue.job_id(event_id) for event_id in waiting} <= set(registry.get_job_ids())
        limiter.on = False
        for job_id in registry.get_job_ids():
            registry.requeue(job_id)
        run_worker(app)
    finally:
        server.app = limiter.app
    statuses = event_statuses(app)
    assert {status for status, _ in statuses.values()} <= {"processed", "ignored"}
    assert all(statuses[event_id][1] == 1 for event_id in waiting)


# -- a payment whose refresh was skipped, then older snapshots ----------------------------

FAILING_CARD = "4000000000000341"


def _access_of(app: Flask, billable: str) -> Access:
    """What ``billable`` may use in a request now (the host bills by that key)."""
    host(app).billing.billable_loader(lambda: Billable(billable))
    with app.test_request_context():
        return current_access()


def _subscription_update(events: list[dict[str, Any]], status: str) -> list[dict[str, Any]]:
    return [
        event
        for event in events
        if event["type"] == "customer.subscription.updated"
        and event["data"]["object"]["status"] == status
    ]


@pytest.mark.ordered_delivery
def test_a_late_past_due_snapshot_does_not_undo_a_renewal_that_was_paid(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    start = len(sandbox.events)
    ids = signup(sandbox, "user:dunned")
    sandbox.update_payment_method(ids["customer"], card=FAILING_CARD)
    sandbox.advance(days=32)  # the renewal; its payment fails an hour later: past_due
    sandbox.update_payment_method(ids["customer"])
    sandbox.advance(days=3)  # the next retry pays the invoice: active again
    events = sandbox.events[start:]
    paid = [event for event in events if event["type"] == "invoice.paid"][-1]
    assert paid["data"]["object"]["billing_reason"] == "subscription_cycle"
    late = _subscription_update(events, "past_due")
    recovery = [
        e for e in _subscription_update(events, "active") if e["created"] >= paid["created"]
    ]
    assert late and recovery
    # The failure's events are held up (an endpoint outage, say); the rest, the paying
    # invoice.paid included, arrive on time.
    held = {event["id"] for event in late + recovery}
    held |= {event["id"] for event in events if event["type"] == "invoice.payment_failed"}
    app = app_factory(sandbox=sandbox, LATTICE_PAST_DUE_GRACE=86400)
    client = app.test_client()
    on_time = [e for e in events if e["id"] not in held and e["created"] <= paid["created"]]
    deliver(client, on_time, sandbox.webhook_secret)
    run_worker(app)
    assert subscription_row(app, ids["subscription"]).status == "active"
    assert _access_of(app, "user:dunned").active
    # Stripe's retry of the held past_due snapshot comes before the recovery's update,
    # more than CLOCK_TOLERANCE after the app's last fetch.
    time.sleep(CLOCK_TOLERANCE.total_seconds() * 2.5)
    deliver(client, late, sandbox.webhook_secret)
    run_worker(app)
    assert sandbox.client().v1.subscriptions.retrieve(ids["subscription"]).status == "active"
    assert subscription_row(app, ids["subscription"]).status == "active"
    assert _access_of(app, "user:dunned").active


@pytest.mark.ordered_delivery
def test_the_paid_final_invoice_of_a_canceled_subscription_ends_it(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    app = app_factory(sandbox=sandbox)
    client = app.test_client()
    seen = len(sandbox.events)

    def deliver_new(hold: Callable[[dict[str, Any]], bool] = lambda event: False) -> None:
        nonlocal seen
        events = sandbox.events[seen:]
        seen += len(events)
        deliver(client, [event for event in events if not hold(event)], sandbox.webhook_secret)
        run_worker(app)

    ids = signup(sandbox, "user:leaving")
    deliver_new()
    sandbox.advance(seconds=1)
    switch_price(sandbox, ids["subscription"], "team_monthly")  # leaves pending prorations
    deliver_new()
    time.sleep(CLOCK_TOLERANCE.total_seconds() * 1.5)  # real time passes before the cancel
    sandbox.advance(days=3)
    sandbox.client().v1.subscriptions.cancel(ids["subscription"], params={"invoice_now": True})
    # The final invoice's events arrive; customer.subscription.deleted is still on its way.
    deliver_new(hold=lambda event: event["type"] == "customer.subscription.deleted")
    assert sandbox.client().v1.subscriptions.retrieve(ids["subscription"]).status == "canceled"
    assert subscription_row(app, ids["subscription"]).status == "canceled"
