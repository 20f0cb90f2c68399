"""Webhook delivery: Stripe's signature scheme and a background outbox with retries."""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

DEFAULT_RETRY_SCHEDULE = (0.2, 0.5, 1.0, 2.0, 5.0)


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header for ``payload``: ``t=…,v1=HMAC-SHA256(secret, "t.body")``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


@dataclass(frozen=True)
class Delivery:
    """One attempt to deliver one event to one URL (an entry of ``StripeSandbox.deliveries``)."""

    event_id: str
    url: str
    attempt: int
    status: int | None
    error: str | None
    at: float


@dataclass
class _Job:
    event_id: str
    url: str
    secret: str
    payload: bytes
    due: float
    attempt: int = 1
    seq: int = field(default=0)


class Outbox:
    """Queues signed deliveries and sends them from a daemon thread.

    Knobs: ``duplicate`` sends every event N times, ``shuffle`` delivers each ready batch in a
    seeded random order, ``delay`` holds every new delivery for that many seconds, ``jitter``
    holds each delivery (each copy of a duplicate too) for a further random 0 to ``jitter``
    seconds, so events of different requests overtake each other, and ``retry_schedule`` gives
    the backoff (seconds) between attempts after a non-2xx or timeout. ``seed`` seeds the
    shuffle and the jitter (:meth:`reseed` restarts the sequence).
    """

    def __init__(
        self,
        *,
        retry_schedule: Sequence[float] = DEFAULT_RETRY_SCHEDULE,
        timeout: float = 5.0,
        duplicate: int = 1,
        shuffle: bool = False,
        delay: float = 0.0,
        jitter: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.retry_schedule = tuple(retry_schedule)
        self.timeout = timeout
        self.duplicate = duplicate
        self.shuffle = shuffle
        self.delay = delay
        self.jitter = jitter
        self.seed = seed
        self.random = random.Random(seed)
        self.log: list[Delivery] = []
        self._jobs: list[_Job] = []
        self._busy = 0
        self._held = False
        self._seq = 0
        self._stopped = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    def enqueue(self, event_id: str, payload: bytes, targets: Sequence[tuple[str, str]]) -> None:
        """Queue ``payload`` for each ``(url, secret)`` target (``duplicate`` times each)."""
        with self._cond:
            now = time.monotonic() + self.delay
            for url, secret in targets:
                for _ in range(self.duplicate):
                    self._seq += 1
                    due = now + (self.random.uniform(0, self.jitter) if self.jitter else 0.0)
                    self._jobs.append(_Job(event_id, url, secret, payload, due, seq=self._seq))
            self._cond.notify_all()

    def configure(self, *, duplicate: int, shuffle: bool, delay: float, jitter: float) -> None:
        """Set the delivery knobs together (deliveries already queued keep their due time)."""
        with self._cond:
            self.duplicate, self.shuffle, self.delay, self.jitter = (
                duplicate,
                shuffle,
                delay,
                jitter,
            )

    def reseed(self, seed: int) -> None:
        """Restart the shuffle and jitter sequence from ``seed`` (to replay a failure)."""
        with self._cond:
            self.seed = seed
            self.random.seed(seed)

    def hold(self) -> None:
        """Stop sending until :meth:`release` (events keep queuing)."""
        with self._cond:
            self._held = True

    def release(self) -> None:
        """Resume sending, starting with everything held."""
        with self._cond:
            self._held = False
            self._cond.notify_all()

    def wait(self, timeout: float) -> bool:
        """Block until nothing is queued or in flight; False if ``timeout`` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not (self._jobs or self._busy), timeout)

    def clear(self) -> None:
        """Drop queued deliveries and the delivery log."""
        with self._cond:
            self._jobs.clear()
            self.log.clear()
            self._cond.notify_all()

    def stop(self) -> None:
        """End the delivery thread."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=self.timeout + 1)

    def _take_ready(self) -> list[_Job]:
        """Wait for, then remove and return, the batch of jobs that are due (lock held)."""
        while not self._stopped:
            now = time.monotonic()
            ready = [job for job in self._jobs if job.due <= now]
            if ready and not self._held:
                self._jobs = [job for job in self._jobs if job.due > now]
                ready.sort(key=lambda job: (job.due, job.seq))
                if self.shuffle:
                    self.random.shuffle(ready)
                self._busy += len(ready)
                return ready
            pending = [job.due for job in self._jobs]
            wait = None if self._held or not pending else max(0.0, min(pending) - now)
            self._cond.wait(wait)
        return []

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = self._take_ready()
                if self._stopped:
                    return
            for job in batch:
                self._attempt(job)

    def _attempt(self, job: _Job) -> None:
        status, error = self._post(job)
        with self._cond:
            self.log.append(
                Delivery(job.event_id, job.url, job.attempt, status, error, time.time())
            )
            failed = status is None or not 200 <= status < 300
            if failed and job.attempt <= len(self.retry_schedule):
                job.due = time.monotonic() + self.retry_schedule[job.attempt - 1]
                job.attempt += 1
                self._jobs.append(job)
            self._busy -= 1
            self._cond.notify_all()

    def _post(self, job: _Job) -> tuple[int | None, str | None]:
        request = urllib.request.Request(  # noqa: S310 - URLs come from the sandbox's owner
            job.url,
            data=job.payload,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": sign(job.payload, job.secret),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.status, None
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code, None
        except (OSError, ValueError) as exc:
            log.info("webhook delivery of %s to %s failed: %s", job.event_id, job.url, exc)
            return None, str(exc)
