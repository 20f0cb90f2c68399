"""``/v1/events``, ``/v1/webhook_endpoints`` and ``/v1/test_helpers/test_clocks``."""

from __future__ import annotations

import copy
import secrets
import threading

from .. import billing
from ..api import Router
from ..clock import MAX_TIMESTAMP, add_interval
from ..core import SandboxCore
from ..events import emit
from ..ids import new_id
from ..objects.platform import test_clock, webhook_endpoint
from ..timeline import run_until
from ..wire import JSON, StripeError, invalid_param, missing_param
from . import apply_metadata, list_of

router = Router()


@router.route("GET", "/v1/events")
def list_events(core: SandboxCore, params: JSON) -> JSON:
    """List events by ``type`` (``*`` wildcards), ``types[]``, ``created`` and
    ``delivery_success`` (whether every receiver answered 2xx; false includes pending)."""
    wanted = params.get("types") or ([params["type"]] if "type" in params else None)
    success = params.get("delivery_success")
    if success not in (None, "true", "false", True, False):
        raise invalid_param("delivery_success", "must be a boolean")
    acknowledged: dict[str, set[str]] = {}
    for delivery in list(core.outbox.log):
        if delivery.status is not None and 200 <= delivery.status < 300:
            acknowledged.setdefault(delivery.event_id, set()).add(delivery.url)

    def keep(evt: JSON) -> bool:
        if success is not None:
            delivered = len(acknowledged.get(evt["id"], ())) >= evt["pending_webhooks"]
            if delivered != (success in ("true", True)):
                return False
        if wanted is None:
            return True
        return any(
            evt["type"] == pattern
            or (pattern.endswith("*") and evt["type"].startswith(pattern[:-1]))
            for pattern in wanted
        )

    return list_of(core, "event", params, "/v1/events", keep)


@router.route("GET", "/v1/events/{id}")
def retrieve_event(core: SandboxCore, params: JSON, id: str) -> JSON:
    """Retrieve an event."""
    return core.store.get("event", id)


@router.route("POST", "/v1/webhook_endpoints")
def create_endpoint(core: SandboxCore, params: JSON) -> JSON:
    """Register a webhook endpoint; the response alone carries its ``secret``."""
    for key in ("url", "enabled_events"):
        if not params.get(key):
            raise missing_param(key)
    endpoint = webhook_endpoint(
        new_id("we", 24),
        core.clock.now(),
        url=params["url"],
        enabled_events=list(params["enabled_events"]),
        api_version=params.get("api_version"),
    )
    endpoint["description"] = params.get("description")
    apply_metadata(endpoint, params.get("metadata"))
    core.store.put(endpoint)
    secret = "whsec_" + secrets.token_hex(16)
    core.store.secret(endpoint["id"])["secret"] = secret
    return {**endpoint, "secret": secret}


@router.route("GET", "/v1/webhook_endpoints/{webhook_endpoint}")
def retrieve_endpoint(core: SandboxCore, params: JSON, webhook_endpoint: str) -> JSON:
    """Retrieve a webhook endpoint (without its secret)."""
    return core.store.get("webhook_endpoint", webhook_endpoint, "webhook_endpoint")


@router.route("POST", "/v1/webhook_endpoints/{webhook_endpoint}")
def update_endpoint(core: SandboxCore, params: JSON, webhook_endpoint: str) -> JSON:
    """Update a webhook endpoint's url, events, description, ``disabled`` flag or metadata."""
    endpoint = core.store.get("webhook_endpoint", webhook_endpoint, "webhook_endpoint")
    for key in ("url", "description"):
        if key in params:
            endpoint[key] = params[key] or None
    if "enabled_events" in params:
        endpoint["enabled_events"] = list(params["enabled_events"])
    if "disabled" in params:
        endpoint["status"] = "disabled" if params["disabled"] else "enabled"
    apply_metadata(endpoint, params.get("metadata"))
    return endpoint


@router.route("DELETE", "/v1/webhook_endpoints/{webhook_endpoint}")
def delete_endpoint(core: SandboxCore, params: JSON, webhook_endpoint: str) -> JSON:
    """Delete a webhook endpoint."""
    core.store.get("webhook_endpoint", webhook_endpoint, "webhook_endpoint")
    del core.store.objects["webhook_endpoint"][webhook_endpoint]
    return {"id": webhook_endpoint, "object": "webhook_endpoint", "deleted": True}


@router.route("GET", "/v1/webhook_endpoints")
def list_endpoints(core: SandboxCore, params: JSON) -> JSON:
    """List webhook endpoints."""
    return list_of(core, "webhook_endpoint", params, "/v1/webhook_endpoints")


@router.route("POST", "/v1/test_helpers/test_clocks")
def create_clock(core: SandboxCore, params: JSON) -> JSON:
    """Create a test clock frozen at ``frozen_time``."""
    if "frozen_time" not in params:
        raise missing_param("frozen_time")
    if not 0 < params["frozen_time"] <= MAX_TIMESTAMP:
        raise invalid_param(
            "frozen_time",
            f"Invalid timestamp: {params['frozen_time']}. The frozen_time must be after the Unix "
            "epoch and before the year 10000.",
        )
    clock = test_clock(
        new_id("clock", 24),
        core.clock.now(),
        frozen_time=params["frozen_time"],
        name=params.get("name"),
    )
    core.store.put(clock)
    emit(core, "test_helpers.test_clock.created", clock, at=core.clock.now())
    return clock


def finish_advance(core: SandboxCore, clock: JSON) -> None:
    """Run an ``advancing`` clock's renewals, trial ends and dunning; then it is ``ready``."""
    if clock["status"] != "advancing":
        return
    target = clock["status_details"]["advancing"]["target_frozen_time"]
    run_until(core, target, clock["id"])
    clock.update(frozen_time=target, status="ready", status_details={"advancing": None})
    emit(core, "test_helpers.test_clock.ready", clock, at=target)


def _finish_later(core: SandboxCore, clock_id: str) -> None:
    def work() -> None:
        with core.unit_of_work():
            clock = core.store.objects.get("test_helpers.test_clock", {}).get(clock_id)
            if clock:
                finish_advance(core, clock)

    threading.Thread(target=work, name=f"advance-{clock_id}", daemon=True).start()


#: The sandbox's own clock, published as a test clock so that a client sees sandbox time
#: the way it sees a Stripe test clock's (it is not listed, and cannot be advanced or
#: deleted through the test clock API: ``/_sandbox/clock/advance`` moves it).
SANDBOX_CLOCK_ID = "clock_sandbox"


def sandbox_clock(core: SandboxCore) -> JSON:
    """The sandbox's own clock as a ready test clock, frozen at sandbox time now."""
    now = core.clock.now()
    return test_clock(SANDBOX_CLOCK_ID, now, frozen_time=now, name="Sandbox clock")


@router.route("GET", "/v1/test_helpers/test_clocks/{test_clock}")
def retrieve_clock(core: SandboxCore, params: JSON, test_clock: str) -> JSON:
    """Retrieve a test clock (an advance still running finishes first; ``clock_sandbox`` is
    the sandbox's own clock)."""
    if test_clock == SANDBOX_CLOCK_ID:
        return sandbox_clock(core)
    clock = core.store.get("test_helpers.test_clock", test_clock, "test_clock")
    finish_advance(core, clock)
    return clock


@router.route("DELETE", "/v1/test_helpers/test_clocks/{test_clock}")
def delete_clock(core: SandboxCore, params: JSON, test_clock: str) -> JSON:
    """Delete a test clock and the customers (and their subscriptions) bound to it."""
    core.store.get("test_helpers.test_clock", test_clock, "test_clock")
    for customer in core.store.all("customer"):
        if customer["test_clock"] == test_clock:
            for sub in core.store.all("subscription"):
                if sub["customer"] == customer["id"] and sub["status"] != "canceled":
                    billing.cancel(core, sub, core.now_for(sub))
            del core.store.objects["customer"][customer["id"]]
            core.store.secret(customer["id"])["deleted"] = True
    clock = core.store.objects["test_helpers.test_clock"].pop(test_clock)
    emit(core, "test_helpers.test_clock.deleted", clock, at=core.clock.now())
    return {"id": test_clock, "object": "test_helpers.test_clock", "deleted": True}


@router.route("POST", "/v1/test_helpers/test_clocks/{test_clock}/advance")
def advance_clock(core: SandboxCore, params: JSON, test_clock: str) -> JSON:
    """Start advancing a test clock: it answers ``advancing``, and is ``ready`` once done.

    Stripe's limits: the target must be after ``frozen_time`` and at most two intervals of the
    shortest subscription on the clock ahead (two years without subscriptions); a clock that is
    still advancing cannot be advanced again.
    """
    clock = core.store.get("test_helpers.test_clock", test_clock, "test_clock")
    if clock["status"] == "advancing":
        raise StripeError(
            f"The test clock {test_clock} is currently advancing; wait until its status is "
            "ready before advancing it again.",
            param="test_clock",
        )
    target = params["frozen_time"]
    if target <= clock["frozen_time"]:
        raise invalid_param(
            "frozen_time", "The frozen_time must be after the test clock's current frozen_time."
        )
    if target > _advance_limit(core, clock):
        raise invalid_param(
            "frozen_time",
            "Cannot advance the test clock more than two intervals of its shortest subscription "
            "(or two years when it has no subscriptions) beyond its current frozen_time.",
        )
    clock.update(status="advancing", status_details={"advancing": {"target_frozen_time": target}})
    emit(core, "test_helpers.test_clock.advancing", clock, at=clock["frozen_time"])
    _finish_later(core, clock["id"])
    return copy.deepcopy(clock)


def _advance_limit(core: SandboxCore, clock: JSON) -> int:
    frozen = int(clock["frozen_time"])
    spans = [
        (item["price"]["recurring"]["interval"], 2 * item["price"]["recurring"]["interval_count"])
        for sub in core.store.all("subscription")
        if sub["test_clock"] == clock["id"] and sub["status"] not in billing.ENDED
        for item in sub["items"]["data"][:1]
    ]
    limits = []
    for interval, count in spans or [("year", 2)]:
        try:
            limits.append(add_interval(frozen, interval, count))
        except (ValueError, OverflowError):  # past what a calendar can hold
            limits.append(MAX_TIMESTAMP)
    return min(*limits, MAX_TIMESTAMP)


@router.route("GET", "/v1/test_helpers/test_clocks")
def list_clocks(core: SandboxCore, params: JSON) -> JSON:
    """List test clocks (advances still running finish first)."""
    for clock in core.store.all("test_helpers.test_clock"):
        finish_advance(core, clock)
    return list_of(core, "test_helpers.test_clock", params, "/v1/test_helpers/test_clocks")
