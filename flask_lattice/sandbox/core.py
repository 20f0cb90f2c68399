"""The sandbox's shared state: store, clock, settings, outbox, and the unit of work."""

from __future__ import annotations

import contextlib
import json
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .clock import Clock
from .delivery import Outbox
from .idempotency import Idempotency
from .limits import RateLimiter
from .store import Snapshots, Store
from .wire import JSON

log = logging.getLogger(__name__)

API_VERSION = "2026-10-28.endive"
#: How many requests the request log keeps (the oldest are dropped first).
REQUEST_LOG_SIZE = 10_000


@dataclass(frozen=True)
class LoggedRequest:
    """One ``/v1`` request the sandbox received: method, path and its raw parameter pairs
    (query string, then form body), as sent."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...]


SMART_RETRY_DAYS = (1, 1, 2, 2, 2, 3, 3)
"""A fixed stand-in for Stripe's Smart Retries default: 8 attempts (the first and 7 retries)
within 2 weeks. Each number is the days from one failed attempt to the next retry."""


@dataclass
class Settings:
    """Billing behaviour knobs (Stripe's defaults unless a test chooses otherwise).

    ``dunning_retry_days``: days from each failed renewal payment to its next retry (after the
    last retry fails the subscription becomes ``dunning_final_status``: ``canceled`` or
    ``unpaid``). ``upcoming_notice_days``: days before a renewal that ``invoice.upcoming`` is
    sent (0: never). ``finalize_delay``: seconds a renewal invoice stays a draft before it is
    finalized and charged (Stripe: one hour).
    """

    dunning_retry_days: tuple[int, ...] = SMART_RETRY_DAYS
    dunning_final_status: str = "canceled"
    trial_notice_days: int = 3
    upcoming_notice_days: int = 7
    finalize_delay: int = 3600


class SandboxCore:
    """Everything one sandbox instance knows; mutate it only inside :meth:`unit_of_work`."""

    def __init__(
        self,
        *,
        base_url: str,
        webhook_secret: str,
        outbox: Outbox,
        settings: Settings,
        persist_path: str | Path | None,
        api_keys: frozenset[str],
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.base_url = base_url
        self.api_keys = api_keys
        self.rate_limiter = rate_limiter
        self.webhook_secret = webhook_secret
        self.outbox = outbox
        self.settings = settings
        self.api_version = API_VERSION
        self.forward_to: str | None = None
        self.store = Store()
        self.idempotency = Idempotency(self.store)
        self.clock = Clock()
        self.request: JSON | None = None
        self.pending: list[tuple[JSON, list[tuple[str, str]]]] = []
        #: The latest ``/v1`` requests received, oldest first (``StripeSandbox.requests``).
        self.request_log: deque[LoggedRequest] = deque(maxlen=REQUEST_LOG_SIZE)
        self.snapshots = Snapshots(persist_path) if persist_path else None
        if self.snapshots and (saved := self.snapshots.load()):
            self.store.restore(saved)
            self.clock.offset = self.store.clock_offset

    @contextlib.contextmanager
    def unit_of_work(
        self, request: JSON | None = None, *, save: bool = True
    ) -> Iterator[SandboxCore]:
        """Hold the lock; afterwards deliver the events emitted and (``save``) persist."""
        with self.store.lock:
            self.request = request
            try:
                yield self
            finally:
                self.request = None
                self.store.clock_offset = self.clock.offset
                self._flush_events()
                if self.snapshots and save:
                    self.snapshots.save(self.store.snapshot())

    def _flush_events(self) -> None:
        """Hand the events emitted by the finished unit of work to the outbox."""
        pending, self.pending = self.pending, []
        for evt, receivers in pending:
            if receivers:
                payload = json.dumps(evt, indent=2).encode()
                self.outbox.enqueue(evt["id"], payload, receivers)

    def now_for(self, obj: JSON | None) -> int:
        """Sandbox time for ``obj``: its test clock's frozen time if it has one."""
        clock_id = (obj or {}).get("test_clock")
        if isinstance(clock_id, str):
            clock = self.store.objects.get("test_helpers.test_clock", {}).get(clock_id)
            if clock:
                return int(clock["frozen_time"])
        return self.clock.now()
