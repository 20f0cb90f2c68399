"""The fetch policy: when an event's own snapshot is projected, when Stripe is asked, and
how Stripe's rate limits reschedule a job instead of failing it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_lattice.models import WebhookEvent
from flask_lattice.signals import stripe_request
from flask_lattice.webhooks.fetch_policy import FetchPolicy, PaidInvoice, decide
from flask_lattice.webhooks.projection import EventMark
from tests.helpers.pipeline import deliver, event_statuses, signup, snapshot
from tests.helpers.support import host, run_worker

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
    # A subscription has no one-way lifecycle (active and past_due alternate).
    assert (
        decide(
            FetchPolicy.WHEN_SAFE,
            _event(),
            watermark=T0,
            fetched_at=None,
            payload={**FULL, "status": "past_due"},
            kind="subscription",
            pinned_version=PINNED,
            stored_status="active",
        )
        == "fetch"
    )


@pytest.mark.parametrize(
    ("case", "status", "period_end", "expected"),
    [
        ("active, in the period the invoice bills", "active", T0 + timedelta(days=30), "skip"),
        ("trialing, in the period", "trialing", T0 + timedelta(days=30), "skip"),
        ("active, still in the period before the renewal", "active", T0, "fetch"),
        ("the first payment of an incomplete subscription", "incomplete", None, "fetch"),
        ("a recovered past_due subscription", "past_due", T0 + timedelta(days=30), "fetch"),
        ("unpaid", "unpaid", T0 + timedelta(days=30), "fetch"),
        ("a row with no period", "active", None, "fetch"),
    ],
)
def test_a_paid_invoice_refreshes_its_subscription_only_when_the_payment_can_change_it(
    case: str, status: str, period_end: datetime | None, expected: str
) -> None:
    # invoice.paid an hour after the renewal (the invoice was created at T0); the row was
    # projected from the renewal's customer.subscription.updated.
    paid = PaidInvoice(invoice_created=T0, period_end=period_end)
    later = _event(T0 + timedelta(hours=1), received=T0 + timedelta(hours=1))

    def decision(policy: FetchPolicy) -> str:
        return decide(
            policy,
            later,
            watermark=T0,
            fetched_at=None,
            payload=None,
            kind="subscription",
            pinned_version=PINNED,
            stored_status=status,
            paid_invoice=paid,
        )

    assert decision(FetchPolicy.WHEN_SAFE) == expected, case
    assert decision(FetchPolicy.ALWAYS_TRUST) == expected, case
    assert decision(FetchPolicy.ALWAYS_FETCH) == "fetch", case


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
