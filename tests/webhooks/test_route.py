"""``POST /billing/webhook``: signatures, limits, the inbox, duplicates, CSRF, Redis down."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_wtf.csrf import CSRFProtect  # type: ignore[import-untyped]
from rq import Queue

from flask_lattice.models import WebhookEvent
from flask_lattice.testing import sign_payload
from flask_lattice.webhooks import queue, rejections
from flask_lattice.webhooks.envelope import Reason
from tests.helpers.pipeline import post_event
from tests.helpers.support import TEST_WEBHOOK_SECRET, host, serving

OTHER_SECRET = "whsec_rotated_second_secret"


def an_event(event_id: str = "evt_route_1", event_type: str = "customer.updated") -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "api_version": "2026-10-28.endive",
        "data": {"object": {"id": "cus_route", "object": "customer", "metadata": {}}},
    }


def stored(app: Flask) -> list[WebhookEvent]:
    with app.app_context():
        return list(host(app).db.session.scalars(sa.select(WebhookEvent)))


def queued(app: Flask) -> list[str]:
    """The queued job ids, once this process's background enqueuer has caught up."""
    with app.app_context():
        assert queue.flush_enqueued(app)
        return list(queue.queue(app).job_ids)


@pytest.fixture
def web(app_factory: Callable[..., Flask]) -> Flask:
    return app_factory()


BODY = json.dumps(an_event()).encode()


@pytest.mark.parametrize(
    ("headers", "body", "message", "reason"),
    [
        ({}, BODY, "header is missing", "header"),
        ({"Stripe-Signature": "garbage"}, BODY, "exactly one t= timestamp", "header"),
        ({"Stripe-Signature": "t=notanumber,v1=abc"}, BODY, "exactly one t= timestamp", "header"),
        ({"Stripe-Signature": "t=1,t=2,v1=abc"}, BODY, "exactly one t= timestamp", "header"),
        ({"Stripe-Signature": f"t={int(time.time())}"}, BODY, "no v1= signature", "header"),
        ({"Stripe-Signature": "t=1,v1=é"}, BODY, "printable ASCII", "header"),
        ({"Stripe-Signature": "t=1,v1=\x00"}, BODY, "printable ASCII", "header"),
        ({"Stripe-Signature": "t=1,v1=" + "a" * 4096}, BODY, "printable ASCII", "header"),
        (
            {"Stripe-Signature": sign_payload(BODY, "whsec_somebody_else")},
            BODY,
            "No signatures found matching",
            "signature",
        ),
        (
            {"Stripe-Signature": sign_payload(BODY, TEST_WEBHOOK_SECRET, timestamp=1_000_000)},
            BODY,
            "too old",
            "timestamp",
        ),
        (
            {"Stripe-Signature": sign_payload(BODY, TEST_WEBHOOK_SECRET)},
            BODY.replace(b"customer.updated", b"customer.deleted"),
            "No signatures found matching",
            "signature",
        ),
    ],
    ids=[
        "missing",
        "garbage",
        "bad-timestamp",
        "two-timestamps",
        "no-v1",
        "non-ascii",
        "control-char",
        "too-long",
        "wrong-secret",
        "stale",
        "tampered",
    ],
)
def test_bad_signatures_are_refused_counted_and_nothing_is_stored(
    web: Flask, headers: dict[str, str], body: bytes, message: str, reason: str
) -> None:
    response = web.test_client().post("/billing/webhook", data=body, headers=headers)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert stored(web) == []
    assert queued(web) == []
    with web.app_context():
        assert rejections.recent(web) == {reason: 1}


def test_a_stale_timestamp_is_accepted_within_the_configured_tolerance(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(LATTICE_WEBHOOK_TOLERANCE=3600)
    response = post_event(
        app.test_client(), an_event(), TEST_WEBHOOK_SECRET, timestamp=int(time.time()) - 1800
    )
    assert response.status_code == 200
    assert len(stored(app)) == 1


def test_every_configured_secret_verifies_during_a_rotation(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(LATTICE_WEBHOOK_SECRETS=[TEST_WEBHOOK_SECRET, OTHER_SECRET])
    client = app.test_client()
    assert post_event(client, an_event("evt_old_secret"), TEST_WEBHOOK_SECRET).status_code == 200
    assert post_event(client, an_event("evt_new_secret"), OTHER_SECRET).status_code == 200
    assert post_event(client, an_event("evt_unknown"), "whsec_unknown").status_code == 400
    assert sorted(row.id for row in stored(app)) == ["evt_new_secret", "evt_old_secret"]


def test_no_configured_secret_refuses_everything(app_factory: Callable[..., Flask]) -> None:
    with pytest.warns(UserWarning, match="LATTICE_WEBHOOK_SECRETS is empty"):
        app = app_factory(LATTICE_WEBHOOK_SECRETS=[])
    response = post_event(app.test_client(), an_event(), TEST_WEBHOOK_SECRET)
    assert response.status_code == 400
    assert "No webhook signing secret" in response.get_data(as_text=True)
    assert stored(app) == []


def test_an_oversized_body_gets_413_before_it_is_read(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(LATTICE_WEBHOOK_MAX_BYTES=2048)
    event = an_event()
    event["data"]["object"]["description"] = "x" * 4096
    response = post_event(app.test_client(), event, TEST_WEBHOOK_SECRET)
    assert response.status_code == 413
    assert stored(app) == []


def _post_chunked(base_url: str, body: bytes) -> tuple[int, str]:
    """POST ``body`` to the webhook route over real HTTP, chunked (no Content-Length)."""
    connection = http.client.HTTPConnection(urlsplit(base_url).netloc, timeout=30)
    chunks = (body[start : start + 65536] for start in range(0, len(body), 65536))
    headers = {"Stripe-Signature": sign_payload(body, TEST_WEBHOOK_SECRET)}
    connection.request(
        "POST", "/billing/webhook", body=chunks, headers=headers, encode_chunked=True
    )
    response = connection.getresponse()
    answer = (response.status, response.read().decode())
    connection.close()
    return answer


def _event_of_size(size: int, event_id: str) -> bytes:
    """A Stripe event whose JSON body is exactly ``size`` bytes."""
    event = an_event(event_id)
    event["data"]["object"]["description"] = ""
    padding = size - len(json.dumps(event).encode())
    event["data"]["object"]["description"] = "x" * padding
    body = json.dumps(event).encode()
    assert len(body) == size
    return body


def test_an_oversized_body_without_content_length_gets_413(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    app = app_factory(LATTICE_WEBHOOK_MAX_BYTES=2048)
    with serving(app, sandbox) as base_url:
        # A chunked body: the server terminates the stream, there is no Content-Length.
        status, text = _post_chunked(base_url, _event_of_size(2049, "evt_route_big"))
        fits = _post_chunked(base_url, _event_of_size(2048, "evt_route_fits"))
        far_over = _post_chunked(base_url, _event_of_size(600_000, "evt_route_huge"))
    assert status == 413
    assert "limited to 2048 bytes" in text
    assert far_over[0] == 413
    assert fits[0] == 200
    assert [row.id for row in stored(app)] == ["evt_route_fits"]
    with app.app_context():
        assert rejections.recent(app) == {Reason.TOO_LARGE: 2}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"this is not json", "not JSON"),
        (b"\xff\xfe not utf-8", "not UTF-8"),
        (b"[1, 2, 3]", "not a Stripe event"),
        (json.dumps({"object": "event", "type": "x", "created": 1}).encode(), "event id must"),
        (json.dumps({"id": "evt_1", "created": 1}).encode(), "event type must"),
        (json.dumps({"id": "evt_1", "type": "x", "created": "soon"}).encode(), "created must"),
        (json.dumps({"id": "evt_1", "type": "x", "created": 1}).encode("utf-16"), "not UTF-8"),
    ],
    ids=["text", "binary", "array", "no-id", "no-type", "bad-created", "utf-16-event"],
)
def test_a_signed_body_that_is_not_an_event_is_refused(
    web: Flask, body: bytes, reason: str
) -> None:
    response = web.test_client().post(
        "/billing/webhook",
        data=body,
        headers={"Stripe-Signature": sign_payload(body, TEST_WEBHOOK_SECRET)},
    )
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)
    assert stored(web) == []


def test_an_event_is_stored_raw_and_enqueued_once(web: Flask) -> None:
    event = an_event("evt_stored")
    body = json.dumps(event, indent=3).encode()
    client = web.test_client()
    for _ in range(3):
        response = client.post(
            "/billing/webhook",
            data=body,
            headers={"Stripe-Signature": sign_payload(body, TEST_WEBHOOK_SECRET)},
        )
        assert response.status_code == 200
    (row,) = stored(web)
    assert (row.id, row.type, row.status, row.attempts) == (
        "evt_stored",
        "customer.updated",
        "received",
        0,
    )
    assert row.payload == body.decode()
    assert row.api_version == "2026-10-28.endive"
    assert row.created.timestamp() == event["created"]
    assert queued(web) == [queue.job_id("evt_stored")]


@pytest.mark.parametrize("csrf_first", [True, False], ids=["csrf-before", "csrf-after"])
def test_the_route_is_exempt_from_flask_wtf_csrf(
    app_factory: Callable[..., Flask], csrf_first: bool
) -> None:
    app = app_factory()
    CSRFProtect(app)
    app.config["TESTING"] = False
    response = post_event(app.test_client(), an_event("evt_csrf"), TEST_WEBHOOK_SECRET)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [row.id for row in stored(app)] == ["evt_csrf"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_redis_down_still_answers_200_and_the_drain_enqueues_later(
    app_factory: Callable[..., Flask], redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_factory(LATTICE_REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0")
    client = app.test_client()
    response = post_event(client, an_event("evt_while_down"), TEST_WEBHOOK_SECRET)
    assert response.status_code == 200
    assert queue.flush_enqueued(app)
    assert "could not enqueue webhook event evt_while_down" in caplog.text
    assert "the next drain will enqueue it" in caplog.text
    assert [row.status for row in stored(app)] == ["received"]

    # Redis is back: the same database, now with a reachable Redis.
    back = app_factory(LATTICE_REDIS_URL=redis_url)
    with back.app_context():
        assert queue.drain(back).enqueued == ["evt_while_down"]
        assert queue.drain(back).enqueued == []  # its job is queued now
    assert Queue("lattice", connection=queue.redis_connection(back)).job_ids == [
        queue.job_id("evt_while_down")
    ]


def test_a_database_outage_answers_503_so_stripe_retries(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory()
    with app.app_context():
        cast(sa.Table, WebhookEvent.__table__).drop(host(app).db.engine)
    response = post_event(app.test_client(), an_event(), TEST_WEBHOOK_SECRET)
    assert response.status_code == 503
    assert "Stripe will retry" in response.get_data(as_text=True)
    assert queued(app) == []
