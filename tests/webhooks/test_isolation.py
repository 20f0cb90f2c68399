"""One bad event never blocks another: per-event enqueue, a drain that carries on, safe job ids.

Issue #15: a stored event with the id ``evt_a b`` (the route stored it before ids were
checked) made RQ refuse its job id, which dropped every other event of its enqueue
batch and aborted every drain. Job ids are now hashes, and the enqueuer and the drain
isolate each event, which these tests show with real Redis failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import cast

import pytest
import sqlalchemy as sa
from flask import Flask
from rq.job import Job

from flask_lattice.models import EventStatus, WebhookEvent, from_timestamp, utcnow
from flask_lattice.webhooks import queue
from flask_lattice.webhooks.worker import DRAIN_MIN_AGE, build_worker
from tests.helpers.pipeline import event_statuses
from tests.helpers.support import host, run_worker

#: A type nothing handles: the worker marks such an event ``ignored``, without Stripe.
UNHANDLED = "test.isolation"


def store(app: Flask, *event_ids: str, age: float = 0.0) -> None:
    """Insert events into the inbox as a route would ``age`` seconds ago, without a job."""
    table = cast(sa.Table, WebhookEvent.__table__)
    now = int(time.time())
    with app.app_context(), host(app).db.engine.begin() as connection:
        connection.execute(
            table.insert(),
            [
                {
                    "id": event_id,
                    "type": UNHANDLED,
                    "created": from_timestamp(now),
                    "livemode": False,
                    "api_version": "2026-10-28.endive",
                    "payload": f'{{"id": "{event_id}", "type": "{UNHANDLED}", "created": {now}}}',
                    "received_at": utcnow() - timedelta(seconds=age),
                    "status": EventStatus.RECEIVED,
                    "attempts": 0,
                }
                for event_id in event_ids
            ],
        )


def poison_job_key(app: Flask, event_id: str) -> None:
    """Make Redis refuse every command on the event's job hash (WRONGTYPE)."""
    with app.app_context():
        queue.redis_connection(app).set(Job.key_for(queue.job_id(event_id)), "not a job hash")


def cure_job_key(app: Flask, event_id: str) -> None:
    with app.app_context():
        queue.redis_connection(app).delete(Job.key_for(queue.job_id(event_id)))


@pytest.fixture
def web(app_factory: Callable[..., Flask]) -> Flask:
    return app_factory()


@pytest.mark.parametrize("event_id", ["evt_a b", "evt_é\x00:", "x" * 255, ""])
def test_every_stored_id_has_a_job_id_that_rq_accepts(event_id: str) -> None:
    from rq.job import validate_job_id

    validate_job_id(queue.job_id(event_id))
    assert queue.job_id(event_id) != queue.job_id(event_id + " ")


def test_a_legacy_poison_id_and_the_rest_of_its_batch_are_all_processed(web: Flask) -> None:
    ordinary = [f"evt_batch_{index}" for index in range(6)]
    batch = [*ordinary[:3], "evt_a b", *ordinary[3:]]
    store(web, *batch)
    with web.app_context():
        for event_id in batch:
            queue.enqueue_soon(event_id, web)
        assert queue.flush_enqueued(web)
        assert sorted(queue.queue(web).job_ids) == sorted(map(queue.job_id, batch))
    run_worker(web)
    assert event_statuses(web) == {event_id: ("ignored", 1) for event_id in batch}
    with web.app_context():
        assert queue.drain(web).enqueued == []


def test_an_event_redis_refuses_does_not_drop_its_batch_or_stop_the_drain(
    web: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    batch = ["evt_first", "evt_poison", "evt_last"]
    store(web, *batch)
    poison_job_key(web, "evt_poison")
    with web.app_context():
        for event_id in batch:
            queue.enqueue_soon(event_id, web)
        assert queue.flush_enqueued(web)
    assert "Redis refused" in caplog.text

    # An event that never reached the queue, stored after the poisoned one.
    store(web, "evt_missed")
    with web.app_context():
        report = queue.drain(web)
    assert report.enqueued == ["evt_missed"]
    assert list(report.skipped) == ["evt_poison"]
    assert "WRONGTYPE" in report.skipped["evt_poison"]
    assert "drain skipped webhook event evt_poison" in caplog.text

    result = web.test_cli_runner().invoke(args=["lattice", "drain"])
    assert result.exit_code == 1
    assert "skipped evt_poison: ResponseError: WRONGTYPE" in result.output
    assert "1 event(s) could not be enqueued; the others were" in result.output

    cure_job_key(web, "evt_poison")
    run_worker(web)
    statuses = event_statuses(web)
    assert statuses.pop("evt_poison") == ("received", 0)
    assert statuses == {
        event_id: ("ignored", 1) for event_id in ("evt_first", "evt_last", "evt_missed")
    }

    # Redis accepts the job now: the next drain enqueues it, and it is processed.
    with web.app_context():
        assert queue.drain(web).enqueued == ["evt_poison"]
    run_worker(web)
    assert event_statuses(web)["evt_poison"] == ("ignored", 1)


def test_the_worker_timer_drain_carries_on_too(web: Flask) -> None:
    store(web, "evt_timer_poison", "evt_timer_ok", age=DRAIN_MIN_AGE + 1)
    poison_job_key(web, "evt_timer_poison")
    build_worker(web, simple=True).drain()  # what the worker runs every drain interval
    with web.app_context():
        job_ids = queue.queue(web).job_ids
    assert job_ids == [queue.job_id("evt_timer_ok")]
