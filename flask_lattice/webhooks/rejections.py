"""Refused webhook deliveries, counted per reason in Redis, so that ``doctor`` can see them.

A refused delivery costs one pipelined ``INCR`` + ``EXPIRE`` of the key
``lattice:webhook-rejections:<queue name>:<reason>`` (reasons:
:class:`~flask_lattice.webhooks.envelope.Reason`). Each refusal pushes the key's expiry an
hour ahead, so a counter exists exactly while refusals of its reason keep coming less
than an hour apart, and holds how many there were since the first of them. Accepted
deliveries never touch these keys.

Counting never fails a request: when Redis cannot be reached, refusals are not counted
for :data:`PAUSE` seconds (one warning is logged), so a flood of bad deliveries does not
wait on a dead Redis.
"""

from __future__ import annotations

import logging
import time
import weakref

from flask import Flask
from redis.exceptions import RedisError

from ..errors import ConfigurationError
from ..state import LatticeState, get_state
from . import queue
from .envelope import Reason

log = logging.getLogger(__name__)

#: Seconds a counter lives after the latest refusal of its reason.
WINDOW = 3600
#: Seconds refusals go uncounted after Redis could not be reached.
PAUSE = 30.0

_paused_until: weakref.WeakKeyDictionary[LatticeState, float] = weakref.WeakKeyDictionary()


def key(state: LatticeState, reason: str) -> str:
    """The Redis key of one reason's counter."""
    return f"lattice:webhook-rejections:{state.config.queue_name}:{reason}"


def count(reason: Reason, app: Flask | None = None) -> None:
    """Count one refused delivery of ``reason``; never raises."""
    state = get_state(app)
    if _paused_until.get(state, 0.0) > time.monotonic():
        return
    counter = key(state, reason)
    try:
        with queue.redis_connection(app).pipeline(transaction=False) as pipe:
            pipe.incr(counter)
            pipe.expire(counter, WINDOW)
            pipe.execute()
    except (RedisError, ConfigurationError, OSError) as error:
        _paused_until[state] = time.monotonic() + PAUSE
        log.warning(
            "could not count a refused webhook delivery (%s): %s; not counting for %d s",
            reason,
            error,
            PAUSE,
        )


def recent(app: Flask | None = None) -> dict[Reason, int]:
    """Refusals per reason, for the reasons refused within the last hour.

    Each count runs from the first refusal of an unbroken streak (gaps under an hour).
    Raises ``RedisError`` when Redis cannot be reached.
    """
    state = get_state(app)
    reasons = list(Reason)
    values = queue.redis_connection(app).mget([key(state, reason) for reason in reasons])
    return {reason: int(value) for reason, value in zip(reasons, values, strict=True) if value}
