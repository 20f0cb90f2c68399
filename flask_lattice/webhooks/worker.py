"""The lattice RQ worker: a fresh app context per job, and the drain on a timer.

``flask lattice worker`` runs :func:`build_worker` with RQ's scheduler on (it moves
retries with a backoff interval back onto the queue). Any number of workers, on any
number of machines, may run against one Redis and one database: the inbox, the row
locks and the watermarks make every job safe to run twice or side by side.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

from flask import Flask
from rq import SimpleWorker, Worker
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.utils import import_attribute
from rq.worker.base import BaseWorker
from rq.worker_pool import WorkerData, WorkerPool

from .. import revenue
from ..models import utcnow
from ..state import get_state
from . import queue
from .job import open_connection, warm_up
from .spare_horse import HandOff, SpareHorse

log = logging.getLogger(__name__)

#: Events received this recently are being enqueued by the web process: the drain
#: leaves them alone (seconds).
DRAIN_MIN_AGE = 10.0
#: Seconds, beyond the drain interval, after which a worker's last heartbeat counts as
#: stale (an idle worker beats at least once per drain interval).
HEARTBEAT_GRACE = 60.0


#: Seconds within which an in-process worker skips a second heartbeat (when the worker's
#: key outlives the next one anyway): RQ sends one before and one after every dequeue.
HEARTBEAT_COALESCE = 1.0

_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class _LatticeMixin:
    """What both worker classes add to RQ: the app, per-job contexts, the drain, and fewer
    Redis round trips per job."""

    app: Flask
    #: ``time.monotonic()`` of this worker's last heartbeat, and when its key expires.
    _beat_at = float("-inf")
    _key_expires_at = float("-inf")
    #: The state this worker last wrote to its Redis key.
    _written_state: str | None = None

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """Work the queue, after enqueueing what this process's web side handed over."""
        end_children_with_this_process()
        queue.flush_enqueued(self.app)
        worked: bool = super().work(*args, **kwargs)  # type: ignore[misc]
        return worked

    def perform_job(self, job: Job, queue: Queue, execution: Any) -> bool:
        """Run one job inside a fresh app context (a new database session per job)."""
        with self.app.app_context():
            result: bool = super().perform_job(job, queue, execution)  # type: ignore[misc]
        return result

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's worker heartbeat (``last_heartbeat`` and the TTL of the worker's keys), sent
        in one round trip instead of three; one that rides on a caller's ``pipeline`` goes
        with it."""
        ttl = timeout or self.worker_ttl + 60  # type: ignore[attr-defined]
        if pipeline is None:
            with self.connection.pipeline(transaction=False) as own:  # type: ignore[attr-defined]
                super().heartbeat(ttl, pipeline=own)  # type: ignore[misc]
                own.execute()
        else:
            super().heartbeat(ttl, pipeline=pipeline)  # type: ignore[misc]
        now = time.monotonic()
        self._beat_at, self._key_expires_at = now, now + ttl

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """RQ's ``set_state``, without writing again the state the worker's key holds
        (RQ sets ``idle`` after every job and again before every dequeue)."""
        if pipeline is None and state == self._written_state:
            self._state = state
            return
        super().set_state(state, pipeline=pipeline)  # type: ignore[misc]
        self._written_state = state

    def request_stop(self, signum: int, frame: Any) -> None:
        """Remember a ``SIGTERM`` or ``SIGINT`` before RQ acts on it. RQ raises
        ``StopRequested`` in an idle worker wherever it is, and code there that catches
        exceptions would lose it; RQ's loop also stops on this flag at its next turn.

        A process forked from this worker (RQ's scheduler, a work horse, a spare) runs this
        handler until it sets its own. There the signal does what it does by default, and
        ends that process: the worker's shutdown, run in a copy of the worker, would leave
        the process running, or kill the horse of the worker's current job."""
        if os.getpid() != self.pid:  # type: ignore[attr-defined]
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self._stop_requested = True
        super().request_stop(signum, frame)  # type: ignore[misc]

    def subscribe(self) -> None:
        """Listen for RQ's commands (a thread of redis-py's) with ``SIGINT`` and ``SIGTERM``
        blocked in that thread: the kernel then always delivers them to the main thread,
        where they interrupt a waiting dequeue at once. (Taken by the listener, a signal
        would wait for the dequeue's timeout, and a shutdown could hang that long.)"""
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            super().subscribe()  # type: ignore[misc]
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def run_maintenance_tasks(self) -> None:
        """RQ's maintenance (abandoned jobs, the scheduler), the drain, the MRR snapshot."""
        super().run_maintenance_tasks()  # type: ignore[misc]
        self.drain()
        self.snapshot_revenue()

    @property
    def dequeue_timeout(self) -> int:
        """Wake up at least once per drain interval."""
        interval: int = self.maintenance_interval  # type: ignore[attr-defined]
        rq_timeout: int = super().dequeue_timeout  # type: ignore[misc]
        return max(1, min(interval, rq_timeout))

    def drain(self) -> None:
        """Enqueue stored events that never reached the queue; a failure never stops the
        worker (a shutdown request does)."""
        with self.app.app_context(), _logged_failure("drain failed; the next one retries"):
            queue.drain(self.app, min_age=DRAIN_MIN_AGE)

    def snapshot_revenue(self) -> None:
        """Bring every subscription's MRR up to date, and record today's MRR snapshot
        once per UTC day; a failure never stops the worker (a shutdown request does)."""
        with (
            self.app.app_context(),
            _logged_failure("MRR snapshot failed; the next tick retries"),
        ):
            session = get_state(self.app).db.session
            revenue.refresh_positions(session)
            revenue.take_daily_snapshot(session)


@contextlib.contextmanager
def _logged_failure(message: str) -> Iterator[None]:
    """Log an exception with ``message`` and carry on, except RQ's ``StopRequested``: a
    ``SIGTERM`` or ``SIGINT`` to an idle worker raises it wherever the worker is, and it
    must reach RQ's loop for the worker to shut down."""
    try:
        yield
    except StopRequested:
        raise
    except Exception:
        log.exception(message)


class LatticeWorker(_LatticeMixin, Worker):
    """A forking RQ worker for the lattice queue (one work horse process per job).

    Each horse is forked ahead of its job (:mod:`~flask_lattice.webhooks.spare_horse`):
    while one job runs, the next horse opens its database and Redis connections, and
    takes the next job as soon as it is dequeued.

    A work horse that dies takes its job with it; RQ notices through the heartbeat
    and retries the job. The heartbeat is kept short (``job_monitoring_interval`` plus a
    grace period), so an abandoned job is retried within seconds, not minutes.
    """

    _spare: SpareHorse | None = None

    def __init__(self, *args: Any, app: Flask, heartbeat_grace: int = 10, **kwargs: Any) -> None:
        self.app = app
        self.heartbeat_grace = heartbeat_grace
        super().__init__(*args, **kwargs)
        # Import the job's modules once here, so that no work horse imports them again.
        import_attribute(queue.PROCESS_EVENT)

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """Work the queue. First the job's SQL is compiled once here (:func:`~flask_lattice.webhooks.job.warm_up`), so
        that work horses inherit it, and the objects built so far are frozen out of the
        garbage collector, so that a work horse's collections do not copy the parent's memory
        (together about halve the cost of a job; see :doc:`workers`). The spare horse, if
        any, ends with the worker."""
        with self.app.app_context():
            warm_up()
        gc.collect()
        gc.freeze()
        try:
            return super().work(*args, **kwargs)
        finally:
            if self._spare is not None:
                self._spare.discard()
                self._spare = None

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        """Hand ``job`` to the spare horse (forked now if there is none, or if it died
        while it waited), then fork the spare for the next job."""
        hand_off = HandOff(job.id, self.execution.id, queue.name)  # type: ignore[union-attr]
        horse, self._spare = self._spare, None
        if horse is None or not horse.hand(hand_off):
            if horse is not None:  # it died while it waited
                horse.discard()
            horse = self._fork_spare()
            # A fresh horse that cannot take its job has died: RQ sees its exit status.
            horse.hand(hand_off)
        self._horse_pid = horse.pid
        self.procline(f"Handed {job.id} to work horse {horse.pid} at {time.time()}")  # type: ignore[no-untyped-call]
        try:
            self._spare = self._fork_spare()
        except OSError:
            log.warning("could not fork a spare work horse; the next job forks its own",
                        exc_info=True)  # fmt: skip

    def _fork_spare(self) -> SpareHorse:
        return SpareHorse.fork(self._prepare_spare, self._become_horse)

    def _prepare_spare(self) -> None:
        """In a spare: a horse's signals and no connection of the worker's (an error here
        ends the spare), then its own database and Redis connections (an error is logged:
        the job then opens them itself)."""
        self.setup_work_horse_signals()  # type: ignore[no-untyped-call]
        self.procline("Spare work horse, waiting for a job")  # type: ignore[no-untyped-call]
        _drop_inherited_connections(self.app)
        try:
            self.connection.ping()
            with self.app.app_context():
                open_connection()
        except Exception:
            log.warning("a spare work horse could not open its connections; its job will",
                        exc_info=True)  # fmt: skip

    def _become_horse(self, hand_off: HandOff) -> None:
        """In a spare: load the job and its execution from Redis (the worker wrote both
        before the hand-off), forget the worker's state of the jobs before, and run the
        job as RQ's work horse does (which ends the process)."""
        os.environ.update(
            RQ_WORKER_ID=self.name, RQ_JOB_ID=hand_off.job_id,
            RQ_EXECUTION_ID=hand_off.execution_id,
        )  # fmt: skip
        job = self.job_class.fetch(
            hand_off.job_id, connection=self.connection, serializer=self.serializer
        )
        execution = Execution.fetch(hand_off.execution_id, job.id, connection=self.connection)
        execution._job = job  # as RQ's own spawning worker does: no second fetch
        self._horse_pid = 0
        self._written_state = None
        self.executions = {}
        self.execution = execution
        (job_queue,) = (each for each in self.queues if each.name == hand_off.queue_name)
        self.main_work_horse(job, job_queue)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """How long a running job's heartbeat lasts before RQ counts the job abandoned."""
        interval = self.job_monitoring_interval
        if job.timeout and job.timeout > 0:
            interval = min(interval, max(1, int(job.timeout - working_time)))
        return int(interval) + self.heartbeat_grace


class LatticeSimpleWorker(_LatticeMixin, SimpleWorker):
    """An in-process RQ worker (no fork), for tests and platforms without ``fork``.

    In burst mode it does not listen for RQ's commands (stop a job, shut down): it quits
    by itself once the queue is empty, and the listener would only slow its exit.
    """

    def __init__(self, *args: Any, app: Flask, **kwargs: Any) -> None:
        self.app = app
        self._burst = False
        super().__init__(*args, **kwargs)

    def work(self, burst: bool = False, **options: Any) -> bool:  # type: ignore[override]
        """Work the queue (``burst``: until it is empty)."""
        self._burst = burst
        return super().work(burst=burst, **options)

    def subscribe(self) -> None:
        """Listen for RQ's commands, except in burst mode."""
        if not self._burst:
            super().subscribe()

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """The heartbeat, except one that comes within :data:`HEARTBEAT_COALESCE` seconds
        of the last while the worker's key outlives the next dequeue timeout by a minute:
        under a backlog RQ would send two per job, around each dequeue. ``last_heartbeat``
        is then at most that stale, and the key never expires early. (Only here: a
        forking worker's horse sets the key's TTL in a process this one does not see.)"""
        now = time.monotonic()
        if (
            pipeline is None
            and now - self._beat_at < HEARTBEAT_COALESCE
            and self._key_expires_at >= now + self.dequeue_timeout + 60
        ):
            return
        super().heartbeat(timeout, pipeline=pipeline)


def run_pool(
    app: Flask, processes: int, *, burst: bool = False, job_monitoring_interval: int = 10
) -> int:
    """Run ``processes`` lattice workers under RQ's ``WorkerPool`` until stopped; returns
    how many worker processes ended with an error (killed, or an exception).

    Each worker is a process of its own that runs its jobs one after another, in-process
    (as :class:`LatticeSimpleWorker` does), so connections and caches live from one job to
    the next. A job that crashes its process takes only that process: the pool starts
    another in its place (except in ``burst`` mode, where it only waits for the others to
    empty the queue), and the job is retried once its heartbeat has expired.
    ``SIGTERM`` or ``SIGINT`` stops every worker after its current job; if the pool's own
    process is killed, its workers get ``SIGTERM`` (on Linux).
    """
    end_children_with_this_process()
    pool = _LatticePool(
        [queue.queue(app)], connection=queue.redis_connection(app), num_workers=processes
    )
    pool.worker_class = _pool_worker_class(
        app, job_monitoring_interval, lambda: pool.status is WorkerPool.Status.STOPPED
    )
    pool.start(burst=burst, logging_level="INFO")
    return pool.failed


class _LatticePool(WorkerPool):
    """RQ's worker pool, counting the worker processes that ended with an error."""

    failed = 0

    def handle_dead_worker(self, worker_data: WorkerData) -> None:
        """Count a worker process whose exit code says it failed, then forget it."""
        if worker_data.process.exitcode not in (0, None):
            self.failed += 1
        super().handle_dead_worker(worker_data)


def _pool_worker_class(
    app: Flask, job_monitoring_interval: int, pool_stopping: Callable[[], bool]
) -> type[LatticeSimpleWorker]:
    """A worker class that ``WorkerPool`` can build with its own arguments (queues, name,
    connection…): it adds ``app`` and the lattice worker's settings.

    A worker process starts with the pool's signal handlers, until RQ installs its own just
    before its loop. A stop signal in between would run the pool's handler here and be
    lost; instead it is remembered (as is one the pool's handler took, ``pool_stopping``)
    and the worker stops at the top of its loop.
    """
    drain_interval = get_state(app).config.drain_interval

    class LatticePoolWorker(LatticeSimpleWorker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._stop_before_loop = pool_stopping()
            signal.signal(signal.SIGTERM, self._remember_stop)
            signal.signal(signal.SIGINT, self._remember_stop)
            _drop_inherited_connections(app)  # forked from the pool's process
            super().__init__(
                *args,
                app=app,
                maintenance_interval=drain_interval,
                job_monitoring_interval=job_monitoring_interval,
                **kwargs,
            )
            self._stop_requested = self._stop_before_loop or pool_stopping()

        def _remember_stop(self, signum: int, frame: Any) -> None:
            self._stop_before_loop = self._stop_requested = True

    return LatticePoolWorker


# ``pid``: the process that is forking, noted just before each fork (see below).
_forking = SimpleNamespace(pid=0)
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def end_children_with_this_process() -> None:
    """Make every process this one forks from now on (a work horse, RQ's scheduler, a
    pool's workers) get ``SIGTERM`` when this one dies, even by ``SIGKILL``, so that none
    outlives the worker that started it. Linux only (``prctl(PR_SET_PDEATHSIG)``);
    elsewhere it does nothing. Registered once per process."""
    if _forking.pid or not sys.platform.startswith("linux"):
        return
    _forking.pid = os.getpid()
    os.register_at_fork(before=_note_forking_pid, after_in_child=_end_with_parent)


def _note_forking_pid() -> None:
    _forking.pid = os.getpid()


def _end_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("could not ask to end with the parent process: errno %d", ctypes.get_errno())
    elif os.getppid() != _forking.pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _drop_inherited_connections(app: Flask) -> None:
    """In a process forked from one that used the database: forget the parent's pooled
    connections without closing them (they are the parent's), so this one opens its own."""
    with app.app_context():
        for engine in get_state(app).db.engines.values():
            engine.dispose(close=False)


def live_workers(app: Flask | None = None) -> list[BaseWorker]:
    """Workers of the lattice queue whose last heartbeat is recent: within the drain
    interval plus :data:`HEARTBEAT_GRACE` seconds. Raises ``RedisError`` when Redis
    cannot be reached."""
    limit = get_state(app).config.drain_interval + HEARTBEAT_GRACE
    now = utcnow()
    return [
        found
        for found in Worker.all(queue=queue.queue(app))
        if found.last_heartbeat is not None
        and (now - found.last_heartbeat).total_seconds() <= limit
    ]


def build_worker(
    app: Flask,
    *,
    simple: bool = False,
    name: str | None = None,
    job_monitoring_interval: int = 10,
) -> LatticeWorker | LatticeSimpleWorker:
    """A worker for ``app``'s lattice queue; call ``.work(burst=…, with_scheduler=…)``.

    ``simple`` runs jobs in this process instead of a forked work horse. The drain runs
    when the worker starts and then every ``LATTICE_DRAIN_INTERVAL`` seconds.
    """
    config = get_state(app).config
    options: dict[str, Any] = {
        "name": name,
        "connection": queue.redis_connection(app),
        "maintenance_interval": config.drain_interval,
        "job_monitoring_interval": job_monitoring_interval,
    }
    queues = [queue.queue(app)]
    if simple:
        return LatticeSimpleWorker(queues, app=app, **options)
    return LatticeWorker(queues, app=app, **options)
