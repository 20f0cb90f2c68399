"""pytest fixtures for a host app's tests: the sandbox, the queue and billing time.

Opt in from the top-level ``conftest.py``::

    pytest_plugins = ["flask_lattice.testing.plugin"]

or with ``lattice_fixtures = true`` in the pytest configuration. The host provides an
``app`` fixture (its app, built with :func:`lattice_config`'s settings); the fixtures
that act on the app use it. See :doc:`testing` for a complete example.

Fixtures:

``lattice_sandbox`` (session)
    A :class:`~flask_lattice.sandbox.StripeSandbox` serving on a free port.
``lattice_config``
    The settings that point an app at the sandbox and a private queue. The sandbox
    (objects, events, clock) and the queue are emptied first.
``lattice_catalog``
    Pushes the app's catalog to the sandbox (prices need amounts, see
    :mod:`flask_lattice.plans`); returns lookup key → price id.
``lattice_jobs``
    ``lattice_jobs()`` runs every queued job now.
``lattice_deliver``
    ``lattice_deliver()`` posts every sandbox event not delivered yet to the app's
    webhook route, signed, then runs the jobs.
``lattice_subscribe``
    ``lattice_subscribe(billable, plan, *, interval, seats, status, trial)`` puts a
    billable on a plan through the real path; returns the projected subscription row.
``lattice_clock``
    ``lattice_clock.advance(days=…)`` moves the sandbox clock and this process's clock
    (which the access gates read) together, then delivers what happened meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from ..billable import BILLABLE_METADATA_KEY, Billable
from ..billing.catalog_push import push
from ..billing.customers import get_or_create_customer
from ..billing.prices import offered_price
from ..models import Subscription, WebhookEvent
from ..sandbox import StripeSandbox
from ..state import get_state
from ..webhooks import embedded_redis
from .delivery import deliver_events, run_jobs

#: Statuses :func:`lattice_subscribe` can produce.
SUBSCRIBE_STATUSES = ("active", "trialing", "canceled")


@pytest.fixture(scope="session")
def lattice_sandbox() -> Iterator[StripeSandbox]:
    """One sandbox for the test session, on a free port."""
    with StripeSandbox() as sandbox:
        yield sandbox


@pytest.fixture(scope="session")
def lattice_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private embedded Redis for the session's queue (``unix://…``)."""
    folder = tmp_path_factory.mktemp("lattice-redis")
    yield f"unix://{embedded_redis.ensure_server(str(folder))}"
    embedded_redis.stop_servers()


@pytest.fixture
def lattice_config(lattice_sandbox: StripeSandbox, lattice_redis_url: str) -> dict[str, Any]:
    """Settings that point an app at the sandbox and the private queue, both emptied."""
    from redis import Redis

    lattice_sandbox.reset()
    connection = Redis.from_url(lattice_redis_url)
    connection.flushdb()
    connection.close()
    return {
        "LATTICE_STRIPE_SECRET_KEY": lattice_sandbox.api_key,
        "LATTICE_STRIPE_API_BASE": lattice_sandbox.url,
        "LATTICE_STRIPE_MAX_NETWORK_RETRIES": 0,
        "LATTICE_WEBHOOK_SECRETS": [lattice_sandbox.webhook_secret],
        "LATTICE_REDIS_URL": lattice_redis_url,
        "LATTICE_JOB_RETRY_INTERVALS": [0, 0, 0],
        "LATTICE_PRICE_CACHE_SECONDS": 0,
    }


@pytest.fixture
def lattice_catalog(app: Flask, lattice_sandbox: StripeSandbox) -> dict[str, str]:
    """The app's catalog pushed to the sandbox; returns lookup key → price id."""
    with app.app_context():
        state = get_state()
        push(state.stripe, state.config.plans)
        keys = [ref for plan in state.config.plans for ref in plan.prices.values()]
        return {
            price["lookup_key"]: price["id"] for price in state.stripe.list_prices(lookup_keys=keys)
        }


@pytest.fixture
def lattice_jobs(app: Flask) -> Callable[[], None]:
    """``lattice_jobs()``: run every queued job now, in this process."""
    return lambda: run_jobs(app)


@dataclass
class _Deliverer:
    app: Flask
    sandbox: StripeSandbox
    delivered: set[str] = field(default_factory=set)

    def __call__(self) -> None:
        events = [event for event in self.sandbox.events if event["id"] not in self.delivered]
        deliver_events(self.app, events, self.sandbox.webhook_secret)
        self.delivered.update(event["id"] for event in events)
        run_jobs(self.app)


@pytest.fixture
def lattice_deliver(
    app: Flask, lattice_sandbox: StripeSandbox, lattice_config: dict[str, Any]
) -> Callable[[], None]:
    """``lattice_deliver()``: post the sandbox's new events to the app, then run the jobs."""
    return _Deliverer(app, lattice_sandbox)


class Subscribe:
    """The callable behind the ``lattice_subscribe`` fixture."""

    def __init__(self, app: Flask, sandbox: StripeSandbox, deliver: Callable[[], None]) -> None:
        self.app = app
        self.sandbox = sandbox
        self.deliver = deliver

    def __call__(
        self,
        billable: Billable | str,
        plan: str,
        *,
        interval: str = "month",
        seats: int = 1,
        status: str = "active",
        trial: int | bool | None = None,
    ) -> Subscription:
        """Put ``billable`` on ``plan`` and return its projected subscription (detached).

        The app creates (or reuses) the billable's Stripe customer as in production;
        the sandbox then completes a Checkout Session for the plan's price with
        ``seats`` as the quantity (``trial`` days, or the plan's ``trial_days`` with
        ``trial=True``); ``status="canceled"`` cancels it afterwards. The resulting
        events are signed and posted to the app's webhook route and the jobs run, so
        the row is what the projection made of them. Raises ``ValueError`` for a status
        outside :data:`SUBSCRIBE_STATUSES` and ``AssertionError`` when no row appears.
        """
        if status not in SUBSCRIBE_STATUSES:
            raise ValueError(f"status must be one of {', '.join(SUBSCRIBE_STATUSES)}")
        who = billable if isinstance(billable, Billable) else Billable(key=billable)
        with self.app.app_context():
            state = get_state()
            chosen = state.config.plans.get(plan)
            days = _trial_days(trial, chosen.trial_days, status)
            price = offered_price(chosen, interval)
            customer = get_or_create_customer(who).stripe_customer_id
            subscription_data: dict[str, Any] = {"metadata": {BILLABLE_METADATA_KEY: who.key}}
            if days:
                subscription_data["trial_period_days"] = days
            session = state.stripe.create_checkout_session(
                {
                    "mode": "subscription",
                    "customer": customer,
                    "client_reference_id": who.key,
                    "line_items": [{"price": price.stripe_price_id, "quantity": seats}],
                    "subscription_data": subscription_data,
                    "success_url": "http://localhost/?session_id={CHECKOUT_SESSION_ID}",
                },
                scope=f"lattice_subscribe {time.time_ns()}",
            )
            self.sandbox.complete_checkout(session["id"])
            subscription_id = str(
                state.stripe.retrieve_checkout_session(session["id"])["subscription"]
            )
            if status == "canceled":
                state.stripe.cancel_subscription(subscription_id)
        self.deliver()
        return _projected(self.app, subscription_id)


def _trial_days(trial: int | bool | None, plan_days: int | None, status: str) -> int | None:
    if trial is True or (trial is None and status == "trialing"):
        return plan_days or 14
    if trial is False or trial is None:
        return None
    return int(trial)


def _projected(app: Flask, subscription_id: str) -> Subscription:
    with app.app_context():
        session = get_state().db.session
        row = session.scalar(
            sa.select(Subscription).where(Subscription.stripe_subscription_id == subscription_id)
        )
        if row is None:
            events = session.execute(
                sa.select(WebhookEvent.id, WebhookEvent.type, WebhookEvent.status)
            ).all()
            raise AssertionError(
                f"subscription {subscription_id} was not projected; stored events: {events}"
            )
        session.expunge(row)
        return row


@pytest.fixture
def lattice_subscribe(
    app: Flask,
    lattice_sandbox: StripeSandbox,
    lattice_catalog: dict[str, str],
    lattice_deliver: Callable[[], None],
) -> Subscribe:
    """``lattice_subscribe(billable, plan, …)``: see :class:`Subscribe`."""
    return Subscribe(app, lattice_sandbox, lattice_deliver)


class Clock:
    """Billing time for a test: the sandbox clock and this process's clock move together."""

    def __init__(self, sandbox: StripeSandbox, deliver: Callable[[], None]) -> None:
        import time_machine

        self.sandbox = sandbox
        self.deliver = deliver
        self._travel = time_machine.travel(time.time(), tick=True)
        self._coordinates = self._travel.start()
        self._shifted = 0.0

    def now(self) -> datetime:
        """Billing time now, as an aware UTC datetime."""
        return datetime.fromtimestamp(self.sandbox.now(), UTC)

    def advance(self, *, days: float = 0, seconds: float = 0) -> datetime:
        """Move billing time forward; renewals, trial ends and dunning happen in the
        sandbox, their events reach the app and its jobs run. Returns the new time."""
        delta = days * 86400 + seconds
        self.sandbox.advance(seconds=delta)
        with self.sandbox.core.unit_of_work():
            # The sandbox's clock is real time plus an offset: move the offset into
            # this process's time, so both clocks read the same.
            self._coordinates.shift(timedelta(seconds=delta))
            self.sandbox.core.clock.offset -= delta
            self._shifted += delta
        self.deliver()
        return self.now()

    def stop(self) -> None:
        """Give the process its real time back; the sandbox keeps the moved time."""
        with self.sandbox.core.unit_of_work():
            self._travel.stop()
            self.sandbox.core.clock.offset += self._shifted


@pytest.fixture
def lattice_clock(
    lattice_sandbox: StripeSandbox, lattice_deliver: Callable[[], None]
) -> Iterator[Clock]:
    """Billing time that tests move: ``lattice_clock.advance(days=31)``."""
    clock = Clock(lattice_sandbox, lattice_deliver)
    yield clock
    clock.stop()
