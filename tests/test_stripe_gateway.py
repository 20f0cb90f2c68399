"""The Stripe gateway: guards, idempotency keys, the request signal, errors, redaction."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from flask import Flask

from flask_lattice.errors import (
    StripeGuardError,
    StripeNotFound,
    StripeRequestError,
    StripeUnavailable,
)
from flask_lattice.signals import stripe_request
from flask_lattice.state import get_state
from flask_lattice.stripe_gateway import (
    PAUSE_BEHAVIORS,
    StripeGateway,
    check_guards,
    idempotency_key,
)
from tests.helpers.spine import objects

SERVER_LOGGER = "flask_lattice.sandbox.server"


# -- the guards, as pure checks -----------------------------------------------------------

GUARDED_CALLS = [
    ("POST", "/v1/subscriptions"),
    ("POST", "/v1/subscriptions/sub_1"),
    ("POST", "/v1/subscriptions/sub_1/resume"),
    ("POST", "/v1/subscription_items"),
    ("POST", "/v1/subscription_items/si_1"),
    ("DELETE", "/v1/subscription_items/si_1"),
    ("POST", "/v1/invoices/create_preview"),
]
PLACES = [
    [("proration_behavior", "none")],
    [("subscription_details[proration_behavior]", "create_prorations")],
    [("schedule_details[proration_behavior]", "none")],
    [("items[0][price]", "price_1"), ("items[0][proration_behavior]", "always_invoice")],
    [("items[0][price]", "p"), ("items[2][price]", "q"), ("items[2][proration_behavior]", "none")],
]


@pytest.mark.parametrize(("method", "path"), GUARDED_CALLS)
def test_guarded_calls_need_proration_behavior(method: str, path: str) -> None:
    with pytest.raises(StripeGuardError, match="proration_behavior"):
        check_guards(method, path, [("items[0][price]", "price_1")], require_proration=True)
    with pytest.raises(StripeGuardError):
        check_guards(method, path, [("proration_behavior", "")], require_proration=True)
    check_guards(method, path, [("items[0][price]", "p")], require_proration=False)


@pytest.mark.parametrize("params", PLACES)
@pytest.mark.parametrize(("method", "path"), GUARDED_CALLS)
def test_proration_behavior_may_sit_in_any_place(
    method: str, path: str, params: list[tuple[str, str]]
) -> None:
    check_guards(method, path, params, require_proration=True)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/subscriptions/sub_1"),
        ("DELETE", "/v1/subscriptions/sub_1"),
        ("POST", "/v1/customers"),
        ("POST", "/v1/checkout/sessions"),
        ("POST", "/v1/subscriptions/sub_1/discount"),
    ],
)
def test_other_calls_are_not_guarded(method: str, path: str) -> None:
    check_guards(method, path, [], require_proration=True)


@pytest.mark.parametrize("behavior", PAUSE_BEHAVIORS)
def test_known_pause_behaviors_pass(behavior: str) -> None:
    params = [("pause_collection[behavior]", behavior), ("proration_behavior", "none")]
    check_guards("POST", "/v1/subscriptions/sub_1", params, require_proration=True)
    check_guards(
        "POST", "/v1/subscriptions/sub_1", [("pause_collection", "")], require_proration=False
    )


@pytest.mark.parametrize(
    "params",
    [
        [("pause_collection[behavior]", "pause")],
        [("pause_collection[behavior]", "")],
        [("pause_collection", "void")],
        [("pause_collection[resumes_at]", "1700000000")],
    ],
)
def test_unknown_pause_behaviors_are_refused(params: list[tuple[str, str]]) -> None:
    for path in ("/v1/subscriptions", "/v1/subscriptions/sub_1"):
        with pytest.raises(StripeGuardError, match="pause_collection"):
            check_guards("POST", path, params, require_proration=False)


# -- the guards against the sandbox: nothing is sent ----------------------------------------


@pytest.fixture
def sent(caplog: pytest.LogCaptureFixture) -> Iterator[list[dict[str, Any]]]:
    """Every request the gateway signalled, and the sandbox server's request log in caplog."""
    caplog.set_level(logging.DEBUG, logger=SERVER_LOGGER)
    signalled: list[dict[str, Any]] = []

    def record(_sender: Any, **details: Any) -> None:
        signalled.append(details)

    stripe_request.connect(record)
    yield signalled
    stripe_request.disconnect(record)


def _server_saw(caplog: pytest.LogCaptureFixture, fragment: str) -> bool:
    return any(
        fragment in record.getMessage() for record in caplog.records if record.name == SERVER_LOGGER
    )


def _wait_for_server_log(caplog: pytest.LogCaptureFixture, fragment: str) -> None:
    deadline = time.monotonic() + 10
    while not _server_saw(caplog, fragment):
        assert time.monotonic() < deadline, f"the sandbox never logged {fragment}"
        time.sleep(0.02)


GUARDED_REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("update", {"items": [{"price": "price_x"}]}),
    ("update", {"cancel_at_period_end": True}),
    ("update", {"proration_behavior": "none", "pause_collection": {"behavior": "pause"}}),
    ("preview", {"subscription_details": {"items": [{"price": "price_x"}]}}),
    ("create", {"customer": "cus_x", "items": [{"price": "price_x"}]}),
]


@pytest.mark.parametrize(("call", "params"), GUARDED_REQUESTS)
def test_guards_refuse_before_anything_is_sent(
    app: Flask,
    sandbox: Any,
    sent: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    call: str,
    params: dict[str, Any],
) -> None:
    events_before = len(sandbox.events)
    with app.app_context():
        gateway = get_state().stripe
        calls = {
            "update": lambda p: gateway.update_subscription("sub_guarded", p),
            "preview": lambda p: gateway.preview_invoice({"subscription": "sub_guarded", **p}),
            "create": lambda p: gateway.create_subscription({**p, "description": "sub_guarded"}),
        }
        with pytest.raises(StripeGuardError):
            calls[call](params)
        assert sent == []
        # A control request that passes the guards does reach the sandbox (and its log).
        with pytest.raises(StripeNotFound):
            gateway.update_subscription("sub_control", {"proration_behavior": "none"})
    _wait_for_server_log(caplog, "sub_control")
    assert not _server_saw(caplog, "sub_guarded")
    assert not _server_saw(caplog, "/v1/invoices/create_preview")
    assert [request["path"] for request in sent] == ["/v1/subscriptions/sub_control"]
    assert len(sandbox.events) == events_before


@pytest.mark.parametrize(
    "where",
    [
        {"proration_behavior": "none"},
        {"subscription_details": {"proration_behavior": "none"}},
    ],
)
def test_preview_with_proration_behavior_is_sent(
    app: Flask, sandbox: Any, where: dict[str, Any]
) -> None:
    with app.app_context(), pytest.raises((StripeNotFound, StripeRequestError)):
        get_state().stripe.preview_invoice({"subscription": "sub_missing", **where})


def test_guard_can_be_switched_off(app_factory: Any, sandbox: Any) -> None:
    app = app_factory(sandbox=sandbox, LATTICE_REQUIRE_EXPLICIT_PRORATION=False)
    with app.app_context(), pytest.raises(StripeNotFound):
        get_state().stripe.update_subscription("sub_missing", {"cancel_at_period_end": True})
    with app.app_context(), pytest.raises(StripeGuardError):
        get_state().stripe.update_subscription(
            "sub_missing", {"pause_collection": {"behavior": "x"}}
        )


# -- idempotency, signal, errors, logs ------------------------------------------------------


def test_idempotency_keys_are_deterministic_and_input_sensitive() -> None:
    key = idempotency_key("customer", {"email": "a@example.com", "metadata": {"k": "v"}}, "")
    assert key == idempotency_key(
        "customer", {"metadata": {"k": "v"}, "email": "a@example.com"}, ""
    )
    assert key != idempotency_key(
        "customer", {"email": "b@example.com", "metadata": {"k": "v"}}, ""
    )
    assert key != idempotency_key(
        "customer", {"email": "a@example.com", "metadata": {"k": "v"}}, "x"
    )
    assert key != idempotency_key(
        "checkout", {"email": "a@example.com", "metadata": {"k": "v"}}, ""
    )
    assert key.startswith("lattice-customer-") and len(key) < 255


def test_creates_replay_the_same_object(app: Flask, sandbox: Any) -> None:
    with app.app_context():
        gateway = get_state().stripe
        first = gateway.create_customer({"email": "a@example.com"})
        second = gateway.create_customer({"email": "a@example.com"})
        third = gateway.create_customer({"email": "a@example.com"}, scope="again")
    assert first["id"] == second["id"] != third["id"]
    assert len(objects(sandbox, "customer")) == 2


def test_request_signal_carries_metadata_only(
    app: Flask, sandbox: Any, sent: list[dict[str, Any]]
) -> None:
    with app.app_context():
        customer = get_state().stripe.create_customer({"email": "a@example.com"})
        with pytest.raises(StripeNotFound):
            get_state().stripe.retrieve_customer("cus_missing")
    create, missing = sent
    assert set(create) == {"method", "path", "status", "duration", "request_id", "idempotency_key"}
    assert (create["method"], create["path"], create["status"]) == ("POST", "/v1/customers", 200)
    assert create["request_id"].startswith("req_") and create["duration"] >= 0
    assert create["idempotency_key"].startswith("lattice-customer-")
    assert (missing["method"], missing["status"]) == ("GET", 404)
    assert missing["path"] == "/v1/customers/cus_missing"
    assert customer["id"]
    assert all(sandbox.api_key not in str(value) for item in sent for value in item.values())


def test_unreachable_stripe_is_unavailable_and_signalled(
    app_factory: Any, sent: list[dict[str, Any]]
) -> None:
    app = app_factory()  # no sandbox: a closed port
    with app.app_context(), pytest.raises(StripeUnavailable):
        get_state().stripe.retrieve_customer("cus_1")
    assert sent[0]["status"] == 0 and sent[0]["request_id"] is None


def test_authentication_errors_are_request_errors(app: Flask, sandbox: Any) -> None:
    config = get_state(app).config
    gateway = StripeGateway.from_config(
        type(config)(**{**config.__dict__, "stripe_secret_key": "sk_live_wrong"})
    )
    with pytest.raises(StripeRequestError) as raised:
        gateway.retrieve_customer("cus_1")
    assert raised.value.http_status == 401
    assert "sk_live_wrong" not in str(raised.value)


def test_gateway_pins_the_api_version_and_base(app: Flask, sandbox: Any) -> None:
    gateway = get_state(app).stripe
    assert isinstance(gateway.client, stripe.StripeClient)
    requestor = gateway.client._requestor
    assert requestor._options.stripe_version == stripe.api_version
    assert requestor._options.base_addresses["api"] == sandbox.url
    assert requestor._options.max_network_retries == 0


def test_response_bodies_are_redacted_from_the_stripe_log(
    app: Flask, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="stripe")
    with app.app_context():
        get_state().stripe.create_customer({"email": "secret-looking@example.com"})
    bodies = [r.getMessage() for r in caplog.records if "API response body" in r.getMessage()]
    assert bodies == ["body=<redacted> message='API response body'"]
