"""The success page's wait for its webhook: a warning when it lasts and no worker runs.

The success page polls ``status.json`` with ``waiting_since``, the unix time (seconds) it
was rendered. Once a poll finds the wait longer than ``LATTICE_SUCCESS_WAIT_WARNING``
seconds and no worker with a recent heartbeat, it logs a warning on
``flask_lattice.web.waiting``: the subscription is paid for, but nothing projects it.
At most one check (and warning) a minute per process, whatever the polls say.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from redis.exceptions import RedisError

from ..state import get_state
from ..webhooks.worker import live_workers

log = logging.getLogger(__name__)

#: Seconds between two checks (and warnings) in one process.
CHECK_EVERY = 60.0


class _Throttle:
    """Lets one caller through per ``every`` seconds (per process)."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._lock = threading.Lock()
        self._last = -math.inf

    def ready(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.every:
                return False
            self._last = now
            return True


_throttle = _Throttle(CHECK_EVERY)


def note(waiting_since: str | None) -> None:
    """Record one poll of a billable still without an active plan; may log a warning.

    ``waiting_since`` comes from the page's query string: anything that is not a finite
    number of seconds is ignored.
    """
    try:
        since = float(waiting_since or "")
    except ValueError:
        return
    waited = time.time() - since
    if not math.isfinite(waited) or waited < get_state().config.success_wait_warning:
        return
    if not _throttle.ready():
        return
    try:
        alive = bool(live_workers())
    except RedisError as error:
        log.warning(
            "the Checkout success page has waited %d s for its subscription and Redis is "
            "not reachable (%s): webhooks are stored but no worker can process them",
            waited,
            error,
        )
        return
    if not alive:
        log.warning(
            "the Checkout success page has waited %d s for its subscription and no lattice "
            "worker is alive: run `flask lattice worker` (see `flask lattice doctor`)",
            waited,
        )
