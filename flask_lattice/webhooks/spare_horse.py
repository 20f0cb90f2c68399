"""A work horse forked ahead of its job, for the forking worker.

RQ's forking worker forks a horse once it has dequeued a job, so every job waits for the
fork and for the horse to open its database and Redis connections. The lattice worker
forks the next horse as soon as it has handed the current one its job: the spare opens
its connections while the current job runs (on another core, where there is one), then
waits on a pipe. The worker hands it the next job's ids (:class:`HandOff`), and the spare
becomes that job's horse: a fresh process for every job, as with RQ's own worker, that
runs one job and exits.

The worker hands a job over by writing its ids as one line; the spare reads up to the end
of that line, not until the pipe closes: other processes the worker forks while a spare
waits (RQ's scheduler, restarted after a Redis outage, say) inherit the pipe's write end
and keep it open. A pipe closed with no line in it ends the spare. A worker that stops
ends its spare; one that dies takes it along (``SIGTERM``: see
:func:`~flask_lattice.webhooks.worker.end_children_with_this_process`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, NoReturn

log = logging.getLogger(__name__)


class HandOff(NamedTuple):
    """What a spare horse needs to find its job in Redis (RQ ids)."""

    job_id: str
    execution_id: str
    queue_name: str


@dataclass
class SpareHorse:
    """The worker's side of a spare horse: its pid, and the pipe that hands it its job."""

    pid: int
    _handoff_fd: int | None

    @classmethod
    def fork(
        cls, prepare: Callable[[], None], become_horse: Callable[[HandOff], object]
    ) -> SpareHorse:
        """Fork a spare. In the child: its own process group (as RQ's horses), then
        ``prepare()``, then wait for the hand-off and run ``become_horse(hand_off)``, which
        should end the process. An exception in either is logged and ends the spare with
        exit status 1; the child never returns from here."""
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(write_fd)
            _run_spare(read_fd, prepare, become_horse)
        os.close(read_fd)
        return cls(pid, write_fd)

    def hand(self, hand_off: HandOff) -> bool:
        """Give the spare its job; False when the spare has died (the caller reaps it with
        :meth:`discard`). A spare that dies after this is the job's horse dying: RQ's
        worker sees its exit status and fails or retries the job."""
        fd, self._handoff_fd = self._handoff_fd, None
        if fd is None:
            return False
        try:
            os.write(fd, json.dumps(hand_off).encode() + b"\n")  # JSON has no raw newline
        except BrokenPipeError:
            return False
        finally:
            os.close(fd)
        return True

    def discard(self) -> None:
        """End a spare that has no job (or could not take one) and reap it."""
        if self._handoff_fd is not None:
            os.close(self._handoff_fd)
            self._handoff_fd = None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _run_spare(
    read_fd: int, prepare: Callable[[], None], become_horse: Callable[[HandOff], object]
) -> NoReturn:
    status = 1
    try:
        os.setpgrp()
        prepare()
        line = _read_line(read_fd)
        if line.endswith(b"\n"):
            become_horse(HandOff(*json.loads(line)))
        status = 0
    except BaseException:
        log.exception("a spare work horse ended before its job ran")
    finally:
        os._exit(status)


def _read_line(fd: int) -> bytes:
    """Read up to and with the first newline, or until the pipe closes without one."""
    line = b""
    while not line.endswith(b"\n") and (chunk := os.read(fd, 4096)):
        line += chunk
    os.close(fd)
    return line
