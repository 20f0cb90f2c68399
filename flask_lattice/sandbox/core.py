"""The sandbox's shared state: store, clock, settings, outbox, and the unit of work."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import events
from .clock import Clock
from .delivery import Outbox
from .idempotency import Idempotency
from .limits import RateLimiter
from .store import Snapshots, Store
from .wire import JSON

log = logging.getLogger(__name__)

API_VERSION = "2026-10-28.endive"


@dataclass
class Settings:
    """Billing behaviour knobs.

    ``dunning_retry_days``: days after each failed renewal payment to retry (after the last retry
    fails the subscription becomes ``dunning_final_status``: ``canceled`` or ``unpaid``).
    """

    dunning_retry_days: tuple[int, ...] = (3, 5, 7)
    dunning_final_status: str = "canceled"
    trial_notice_days: int = 3


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
                events.flush(self)
                if self.snapshots and save:
                    self.snapshots.save(self.store.snapshot())

    def now_for(self, obj: JSON | None) -> int:
        """Sandbox time for ``obj``: its test clock's frozen time if it has one."""
        clock_id = (obj or {}).get("test_clock")
        if isinstance(clock_id, str):
            clock = self.store.objects.get("test_helpers.test_clock", {}).get(clock_id)
            if clock:
                return int(clock["frozen_time"])
        return self.clock.now()
