"""Idempotency keys as Stripe handles them (https://docs.stripe.com/api/idempotent_requests).

Stripe saves the status and body of the first request made with a key once the endpoint has
begun executing, and replays them for every retry with the same parameters. A request that fails
validation saves nothing (a corrected retry may reuse the key), and a request made while another
with the same key is still executing gets ``409`` (``idempotency_error``,
``idempotency_key_in_use``) and saves nothing either.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from .store import Store
from .wire import JSON, StripeError


@dataclass
class Slot:
    """One request's hold on an idempotency key: the saved result, if any, and where to save."""

    store: Store
    cache_key: str
    idem: str
    fingerprint: JSON

    def saved(self) -> JSON | None:
        """The result saved by an earlier request with this key, or None."""
        with self.store.lock:
            return self.store.idempotency.get(self.cache_key)

    def save(self, status: int, body: JSON) -> None:
        """Remember this request's result for retries (call inside the unit of work)."""
        self.store.idempotency[self.cache_key] = {
            **self.fingerprint,
            "status": status,
            "body": body,
        }


class Idempotency:
    """Saved results live in the store (and its snapshots); keys in flight live here."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._in_flight: set[str] = set()

    def saved(self, cache_key: str) -> JSON | None:
        """The result saved for ``cache_key``, or None (replays need no hold on the key).

        Read without the store lock: one dict lookup is atomic, and a replay must not wait for
        another request's unit of work.
        """
        return self._store.idempotency.get(cache_key)

    def in_flight(self) -> frozenset[str]:
        """The ``"api_key:idempotency_key"`` pairs of requests executing right now."""
        with self._lock:
            return frozenset(self._in_flight)

    @contextlib.contextmanager
    def claim(self, cache_key: str, idem: str, fingerprint: JSON) -> Iterator[Slot]:
        """Hold ``cache_key`` for one request, or raise Stripe's 409 if another holds it."""
        with self._lock:
            if cache_key in self._in_flight:
                raise StripeError(
                    "There is currently another in-progress request using this Idempotent Key "
                    "(that probably means you submitted twice, and the other request is still "
                    f"going through): {idem}. Please try again later.",
                    status=409,
                    type="idempotency_error",
                    code="idempotency_key_in_use",
                )
            self._in_flight.add(cache_key)
        try:
            yield Slot(self._store, cache_key, idem, fingerprint)
        finally:
            with self._lock:
                self._in_flight.discard(cache_key)
