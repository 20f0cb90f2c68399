"""Fixtures for the sandbox suite: a running sandbox, a recording SDK client, a webhook receiver.

Every object a test makes the sandbox produce (API responses, stored objects, event payloads) is
validated against the digest when the test ends. Webhooks are delivered with chaos (shuffled,
duplicated, delayed; seeded per test) unless a test is marked ``ordered_delivery``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe

from flask_lattice.sandbox import StripeSandbox

from ..conftest import chaos_wanted, sandbox_seed
from .schema_check import violations

FAST_RETRIES = (0.05, 0.1, 0.2)


class RecordingClient(stripe.RequestsClient):
    """The SDK's requests-based HTTP client, keeping every JSON response body."""

    def __init__(self, bodies: list[Any]) -> None:
        super().__init__()
        self.bodies = bodies

    def request(self, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        content, status, response_headers = super().request(method, url, headers, post_data)
        if status < 400:
            self.bodies.append(json.loads(content))
        return content, status, response_headers


@dataclass
class Sandbox:
    """A running sandbox plus the responses its SDK clients received."""

    sb: StripeSandbox
    responses: list[Any] = field(default_factory=list)

    def client(self, **options: Any) -> stripe.StripeClient:
        return self.sb.client(http_client=RecordingClient(self.responses), **options)

    def produced(self) -> list[Any]:
        """Everything the sandbox produced: responses, stored objects and event payloads."""
        store = self.sb.core.store
        stored = [obj for objects in store.objects.values() for obj in objects.values()]
        return self.responses + stored


def assert_valid(objects: list[Any]) -> None:
    """Fail with the first violations if any object breaks the digest."""
    problems = [problem for obj in objects for problem in violations(obj)]
    assert not problems, "\n".join(problems[:30])


@pytest.fixture
def recorded_sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    with StripeSandbox(
        retry_schedule=FAST_RETRIES,
        delivery_timeout=2,
        chaos=chaos_wanted(request.node),
        seed=sandbox_seed(request.node.nodeid),
    ) as sb:
        box = Sandbox(sb)
        yield box
        sb.wait_for_deliveries(5)
        assert_valid(box.produced())


@pytest.fixture
def sb(recorded_sandbox: Sandbox) -> StripeSandbox:
    return recorded_sandbox.sb


@pytest.fixture
def stripe_client(recorded_sandbox: Sandbox) -> stripe.StripeClient:
    return recorded_sandbox.client()


@dataclass
class Catalog:
    basic_monthly: Any
    pro_monthly: Any
    pro_yearly: Any


@pytest.fixture
def catalog(stripe_client: stripe.StripeClient) -> Catalog:
    basic = stripe_client.v1.products.create(params={"name": "Basic"})
    pro = stripe_client.v1.products.create(params={"name": "Pro"})

    def price(product: Any, amount: int, interval: str, key: str) -> Any:
        return stripe_client.v1.prices.create(
            params={
                "product": product.id,
                "currency": "usd",
                "unit_amount": amount,
                "recurring": {"interval": interval},  # type: ignore[typeddict-item]
                "lookup_key": key,
            }
        )

    return Catalog(
        basic_monthly=price(basic, 1000, "month", "basic_monthly"),
        pro_monthly=price(pro, 3000, "month", "pro_monthly"),
        pro_yearly=price(pro, 30000, "year", "pro_yearly"),
    )


def signup(
    stripe_client: stripe.StripeClient,
    sb: StripeSandbox,
    price: Any,
    *,
    card: str = "4242424242424242",
    trial_days: int | None = None,
    email: str = "ada@example.com",
) -> tuple[Any, Any]:
    """Sign up through hosted Checkout; returns the (session, subscription)."""
    params: dict[str, Any] = {
        "mode": "subscription",
        "customer_email": email,
        "line_items": [{"price": price.id, "quantity": 1}],
        "success_url": "http://app.test/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://app.test/pricing",
    }
    if trial_days:
        params["subscription_data"] = {"trial_period_days": trial_days}
    session = stripe_client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]
    sb.complete_checkout(session.id, card=card)
    session = stripe_client.v1.checkout.sessions.retrieve(session.id)
    sub = stripe_client.v1.subscriptions.retrieve(str(session.subscription))
    return session, sub


@dataclass
class Receiver:
    """A tiny webhook receiver: records requests; answers ``fail_first`` of them with 500."""

    url: str
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_first: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                state.requests.append((dict(self.headers), body))
                failing = len(state.requests) <= state.fail_first
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/webhook"
    yield state
    server.shutdown()
    server.server_close()
