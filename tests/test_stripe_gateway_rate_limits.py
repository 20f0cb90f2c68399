"""The gateway under Stripe's rate limits (https://docs.stripe.com/rate-limits).

The sandbox answers 429 (``rate_limit``, ``Stripe-Should-Retry: true``) above its limit; the
SDK retries such answers up to ``LATTICE_STRIPE_MAX_NETWORK_RETRIES`` times, and what is still
refused reaches the app as :class:`StripeUnavailable` ("retry later"), never as a bad request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from flask_lattice.errors import StripeUnavailable
from flask_lattice.signals import stripe_request
from flask_lattice.state import get_state


@pytest.fixture
def statuses() -> Iterator[list[int]]:
    """The HTTP status of every request attempt the gateway signalled."""
    seen: list[int] = []

    def record(_sender: Any, **details: Any) -> None:
        seen.append(details["status"])

    stripe_request.connect(record)
    yield seen
    stripe_request.disconnect(record)


@pytest.fixture
def rate_limited(sandbox: Any) -> Iterator[Any]:
    """The sandbox, limiting requests only for the length of the test."""
    yield sandbox
    sandbox.set_rate_limit(None)


def test_a_refused_request_is_unavailable_not_invalid(
    app: Flask, rate_limited: Any, statuses: list[int]
) -> None:
    customer = rate_limited.client().v1.customers.create(params={"email": "a@example.com"})
    rate_limited.set_rate_limit(0.001)  # one request, then none for over 15 minutes
    with app.app_context():
        gateway = get_state().stripe
        assert gateway.retrieve_customer(customer.id)["id"] == customer.id
        with pytest.raises(StripeUnavailable) as refused:
            gateway.retrieve_customer(customer.id)
    assert refused.value.http_status == 429
    assert statuses == [200, 429]


def test_the_sdk_retries_what_the_limit_refused(
    app_factory: Any, rate_limited: Any, statuses: list[int]
) -> None:
    app = app_factory(sandbox=rate_limited, LATTICE_STRIPE_MAX_NETWORK_RETRIES=5)
    rate_limited.set_rate_limit(2)
    with app.app_context():
        gateway = get_state().stripe
        created = [
            gateway.create_customer({"email": f"c{index}@example.com"}) for index in range(6)
        ]
    assert len({customer["id"] for customer in created}) == 6
    assert 429 in statuses, "six requests in a row never met a 2 requests/s limit"
    assert statuses.count(200) == 6
