"""Stripe's API rate limits: token buckets, one for the whole account and one per endpoint.

Stripe's test mode allows 25 requests per second overall and, by default, 25 per second on each
endpoint (https://docs.stripe.com/rate-limits); live mode allows 100 overall. A request over the
limit gets ``429`` with the ``rate_limit`` error code and ``Stripe-Should-Retry: true``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from .wire import StripeError

#: Stripe's test-mode limit, requests per second (global and per endpoint).
TEST_MODE_RATE = 25.0


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimiter:
    """Token buckets refilled at ``rate`` per second, holding at most ``max(rate, 1)`` tokens.

    A request spends one token from the global bucket and one from its endpoint's bucket
    (``"METHOD /v1/path/{param}"``); if either is empty it is refused and spends nothing.
    """

    rate: float
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def burst(self) -> float:
        """How many requests may arrive at once after a quiet second."""
        return max(self.rate, 1.0)

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.setdefault(key, _Bucket(self.burst, now))
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        return bucket

    def check(self, endpoint: str) -> None:
        """Spend a token for ``endpoint`` or raise Stripe's ``429 rate_limit`` error."""
        with self._lock:
            now = time.monotonic()
            buckets = [self._refilled("*", now), self._refilled(endpoint, now)]
            if any(bucket.tokens < 1 for bucket in buckets):
                raise rate_limited()
            for bucket in buckets:
                bucket.tokens -= 1


def rate_limited() -> StripeError:
    """Stripe's answer to a request over the rate limit."""
    return StripeError(
        "Request rate limit exceeded. You can learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        status=429,
        code="rate_limit",
    )
