"""Timestamps out of range: refused at the route with a 400, and never a job that fails
forever in the projection (logged, stored as null)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from tests.helpers.lifecycle import EventFeed, stored_event
from tests.helpers.pipeline import post_event
from tests.helpers.subscriptions import Subscriber, subscribe
from tests.helpers.support import run_worker, subscription_row

HUGE = "99999999999999999999"


@pytest.mark.parametrize("resumes_at", [HUGE, "253402300800", "99999-01-01"])
def test_an_out_of_range_resumes_at_is_a_400(subscriber: Subscriber, resumes_at: str) -> None:
    before = subscriber.stripe()
    response = subscriber.post("pause", behavior="void", resumes_at=resumes_at)
    assert response.status_code == 400
    assert "resumes_at" in response.get_data(as_text=True)
    assert subscriber.stripe()["pause_collection"] == before["pause_collection"] is None


def test_the_last_second_of_year_9999_is_accepted(subscriber: Subscriber) -> None:
    response = subscriber.post("pause", behavior="void", resumes_at="253402300799")
    assert response.status_code == 303
    assert subscriber.stripe()["pause_collection"]["resumes_at"] == 253402300799


def test_an_out_of_range_timestamp_from_stripe_is_stored_as_null(
    app_factory: Callable[..., Flask], sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_factory(sandbox=sandbox, LATTICE_TRUST_WEBHOOK_PAYLOADS="always-trust")
    subscriber = subscribe(app, sandbox)
    feed = EventFeed(app, sandbox)
    feed.seen = 0
    feed.settle()
    updated = next(
        event
        for event in reversed(sandbox.events)
        if event["type"].startswith("customer.subscription.")
    )
    event = {
        **updated,
        "id": "evt_huge_resumes_at",
        "type": "customer.subscription.updated",
        "created": updated["created"] + 1,
        "data": {
            "object": {
                **updated["data"]["object"],
                "pause_collection": {"behavior": "void", "resumes_at": int(HUGE)},
            }
        },
    }
    assert post_event(app.test_client(), event, sandbox.webhook_secret).status_code == 200
    with caplog.at_level(logging.WARNING, logger="flask_lattice"):
        run_worker(app)
    assert stored_event(app, "evt_huge_resumes_at") == ("processed", None)
    row = subscription_row(app, subscriber.subscription_id)
    assert (row.pause_collection_behavior, row.pause_resumes_at) == ("void", None)
    assert any("resumes_at" in record.getMessage() for record in caplog.records)
