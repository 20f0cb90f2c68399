"""Fuzzed deliveries: the route never answers 5xx and stores nothing that is not validly signed.

Hypothesis generates bodies (events, odd events, deep nesting, raw bytes, oversized) and
headers (none, valid, rotated, stale, another secret, mangled, random text). For every
delivery: the answer is below 500; a 200 means the delivery was validly signed and its
event is stored; a delivery that was not validly signed changes nothing; a validly
signed, well-formed event is accepted. At the end the inbox holds exactly the events
that got a 200.

``make test`` runs 2,000 deliveries per backend; ``make fuzz`` runs
``LATTICE_FUZZ_EXAMPLES`` (100,000) on SQLite and prints the answers by status.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, given, settings

from flask_lattice.models import WebhookEvent
from tests.helpers.deliveries import MAX_BYTES, TOLERANCE, Delivery, deliveries
from tests.helpers.support import TEST_WEBHOOK_SECRET, host

EXAMPLES = int(os.environ.get("LATTICE_FUZZ_EXAMPLES", "2000"))


def test_fuzzed_deliveries_never_5xx_and_only_signed_events_are_stored(
    app_factory: Callable[..., Flask], capsys: pytest.CaptureFixture[str]
) -> None:
    app = app_factory(LATTICE_WEBHOOK_MAX_BYTES=MAX_BYTES, LATTICE_WEBHOOK_TOLERANCE=TOLERANCE)
    client = app.test_client()
    with app.app_context():
        engine = host(app).db.engine
    count_rows = sa.select(sa.func.count()).select_from(WebhookEvent)
    statuses: Counter[int] = Counter()
    accepted: set[str] = set()
    unsigned_rows = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(delivery=deliveries(TEST_WEBHOOK_SECRET))
    def post(delivery: Delivery) -> None:
        nonlocal unsigned_rows
        headers = {} if delivery.header is None else {"Stripe-Signature": delivery.header}
        with engine.connect() as connection:
            before = connection.scalar(count_rows)
        response = client.post("/billing/webhook", data=delivery.body, headers=headers)
        with engine.connect() as connection:
            after = connection.scalar(count_rows)
        statuses[response.status_code] += 1
        assert response.status_code < 500, response.get_data(as_text=True)
        if not delivery.signed:
            unsigned_rows += (after or 0) - (before or 0)
            assert response.status_code in (400, 413), response.get_data(as_text=True)
            assert after == before
        if delivery.acceptable:
            assert response.status_code == 200, response.get_data(as_text=True)
        if response.status_code == 200:
            assert delivery.signed
            accepted.add(json.loads(delivery.body)["id"])
        else:
            assert after == before

    post()
    with app.app_context():
        stored = set(host(app).db.session.scalars(sa.select(WebhookEvent.id)))
    assert stored == accepted
    assert accepted  # the fuzz reached the inbox, not only the refusals
    if "LATTICE_FUZZ_EXAMPLES" in os.environ:
        with capsys.disabled():
            by_status = ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
            print(
                f"\nfuzz: {sum(statuses.values())} deliveries; by status {by_status}; "
                f"responses >= 500: {sum(n for code, n in statuses.items() if code >= 500)}; "
                f"rows stored without a valid signature: {unsigned_rows}; "
                f"events stored: {len(stored)}"
            )
