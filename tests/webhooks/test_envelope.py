"""The deliveries of issue #15 that got a 5xx or were wrongly stored: each is a 4xx now.

Every case posts through the real route to a real database (both backends) and checks
the answer, its reason, the rejection counter and that nothing was stored.
Stripe's signature scheme: https://docs.stripe.com/webhooks#verify-manually
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_lattice.models import WebhookEvent
from flask_lattice.testing import sign_payload
from flask_lattice.webhooks import rejections
from flask_lattice.webhooks.envelope import MAX_DEPTH
from tests.helpers.pipeline import post_event
from tests.helpers.support import TEST_WEBHOOK_SECRET, host


def an_event(**fields: Any) -> dict[str, Any]:
    event = {
        "id": "evt_envelope_1",
        "object": "event",
        "type": "customer.updated",
        "created": int(time.time()),
        "livemode": False,
        "api_version": "2026-10-28.endive",
        "data": {"object": {"id": "cus_envelope", "object": "customer", "metadata": {}}},
    }
    event.update(fields)
    return event


def stored_ids(app: Flask) -> list[str]:
    with app.app_context():
        return list(host(app).db.session.scalars(sa.select(WebhookEvent.id)))


def counted(app: Flask) -> dict[str, int]:
    with app.app_context():
        return {str(reason): value for reason, value in rejections.recent(app).items()}


@pytest.fixture
def web(app_factory: Callable[..., Flask]) -> Flask:
    return app_factory()


def test_a_non_ascii_signature_is_a_400_not_a_500(web: Flask) -> None:
    # The SDK's hmac.compare_digest raises TypeError on non-ASCII strings.
    for body in (b"{}", json.dumps(an_event()).encode()):
        response = web.test_client().post(
            "/billing/webhook", data=body, headers={"Stripe-Signature": "t=1,v1=é"}
        )
        assert response.status_code == 400
        assert "printable ASCII" in response.get_data(as_text=True)
    assert stored_ids(web) == []
    assert counted(web) == {"header": 2}


@pytest.mark.parametrize("ahead", [3600, 365 * 86400], ids=["an-hour", "a-year"])
def test_a_signature_from_the_future_is_refused(web: Flask, ahead: int) -> None:
    response = post_event(
        web.test_client(), an_event(), TEST_WEBHOOK_SECRET, timestamp=int(time.time()) + ahead
    )
    assert response.status_code == 400
    assert "too far in the future" in response.get_data(as_text=True)
    assert stored_ids(web) == []
    assert counted(web) == {"timestamp": 1}


def test_a_signature_just_inside_the_tolerance_is_accepted_both_ways(web: Flask) -> None:
    client = web.test_client()
    now = int(time.time())
    for event_id, signed_at in (("evt_early", now + 240), ("evt_late", now - 240)):
        response = post_event(
            client, an_event(id=event_id), TEST_WEBHOOK_SECRET, timestamp=signed_at
        )
        assert response.status_code == 200, response.get_data(as_text=True)
    assert sorted(stored_ids(web)) == ["evt_early", "evt_late"]


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def with_object(raw: str, **fields: Any) -> str:
    """An event whose ``data.object`` is the JSON text ``raw`` (json.dumps would recurse)."""
    return json.dumps(an_event(data="@object", **fields)).replace(
        '"@object"', f'{{"object": {raw}}}'
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (json.dumps(an_event(created=253402300800)), "created must"),
        (json.dumps(an_event()).replace('"created": ', '"created": 1e20, "x": '), "created must"),
        (json.dumps(an_event(created=10**20)), "created must"),
        (json.dumps(an_event(created=2**63)), "created must"),
        (json.dumps(an_event(created=-(10**12))), "created must"),
        (json.dumps(an_event()).replace('"created": ', '"created": -1e12, "x": '), "created must"),
        (json.dumps(an_event(created=True)), "created must"),
        (with_object(_deep(1000)), "deeper than"),
        (with_object(_deep(MAX_DEPTH)), "deeper than"),
        (_deep(100_000), "deeper than"),
        (json.dumps(an_event(id="evt_nul\x00")), "event id must"),
        (json.dumps(an_event(type="customer.updated\x00")), "event type must"),
        (json.dumps(an_event(api_version="2026-10-28.endive\x00")), "api_version must"),
        (json.dumps(an_event(api_version="2026-10-28." + "x" * 60)), "api_version must"),
        (json.dumps(an_event(type="customer." + "x" * 200)), "event type must"),
        (json.dumps(an_event(id="evt_a b")), "event id must"),
        (json.dumps(an_event(id="evt_" + "a" * 252)), "event id must"),
        (json.dumps(an_event(id="ch_123")), "event id must"),
        (json.dumps(an_event(id=12345)), "event id must"),
        (json.dumps(an_event(livemode="yes")), "livemode must"),
        ('{"id": "evt_1", "type": "x", "created": NaN}', "not JSON"),
        ('{"id": "evt_\\ud800", "type": "x", "created": 1}', "not JSON"),
    ],
    ids=[
        "created-year-10000",
        "created-1e20",
        "created-10**20",
        "created-2**63",
        "created-minus-10**12",
        "created-minus-1e12",
        "created-bool",
        "nested-1000",
        "nested-one-too-deep",
        "nested-100000",
        "nul-in-id",
        "nul-in-type",
        "nul-in-api-version",
        "long-api-version",
        "long-type",
        "space-in-id",
        "long-id",
        "not-an-event-id",
        "numeric-id",
        "livemode-string",
        "nan",
        "lone-surrogate",
    ],
)
def test_a_signed_event_with_a_bad_envelope_is_a_400(web: Flask, body: str, message: str) -> None:
    response = post_event(web.test_client(), body.encode(), TEST_WEBHOOK_SECRET)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert stored_ids(web) == []
    assert set(counted(web)) <= {"body", "event"}


def test_the_largest_accepted_values_are_stored(web: Flask) -> None:
    event_id = "evt_" + "a" * 251
    body = with_object(
        _deep(MAX_DEPTH - 2),
        id=event_id,
        type="customer." + "x" * 119,
        api_version="v" * 64,
        created=253402300799,
    )
    response = post_event(web.test_client(), body.encode(), TEST_WEBHOOK_SECRET)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert stored_ids(web) == [event_id]
    assert counted(web) == {}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_refusals_are_still_400_when_redis_is_down(
    app_factory: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = app_factory(LATTICE_REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0")
    client = app.test_client()
    for _ in range(3):
        response = client.post(
            "/billing/webhook",
            data=b"{}",
            headers={"Stripe-Signature": sign_payload(b"{}", "whsec_wrong")},
        )
        assert response.status_code == 400
    # One warning, then the counter pauses instead of waiting on Redis again.
    assert caplog.text.count("could not count a refused webhook delivery") == 1
