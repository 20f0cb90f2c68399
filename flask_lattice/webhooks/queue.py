"""The lattice queue: one Redis connection per app, enqueueing with retries, and the drain.

Every stored webhook event has one RQ job, whose id is derived from the event id
(:func:`job_id`). The webhook route hands the event id to :func:`enqueue_soon` right
after the event is committed: a background thread of the web process (one per app and
process, started lazily, so it survives gunicorn's fork) collects the ids handed over
within ``Enqueuer.LINGER`` and enqueues them in one pipelined ``enqueue_many``, off the
request path. When that fails
(Redis down) or never happens (the process died first), the event is still safe in the
database, and :func:`drain` enqueues it later: it finds stored events that are not done
and whose job is missing or ended, and enqueues them again.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from flask import Flask, current_app
from redis import Redis
from redis.backoff import NoBackoff
from redis.driver_info import DriverInfo
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry as ConnectionRetry
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.queue import EnqueueData
from rq.registry import StartedJobRegistry

from ..models import EventStatus, WebhookEvent, utcnow
from ..state import LatticeState, get_state

if TYPE_CHECKING:
    from redis.client import Pipeline

log = logging.getLogger(__name__)

#: The job function every webhook event runs through.
PROCESS_EVENT = "flask_lattice.webhooks.job.process_event"
#: How long one job may run before RQ stops it (seconds).
JOB_TIMEOUT = 300
#: How long RQ keeps a finished job's result (seconds).
RESULT_TTL = 3600
#: How long RQ keeps a failed job (seconds).
FAILURE_TTL = 7 * 86400
#: Stored events that are not done: the drain looks for these.
PENDING_STATUSES = (EventStatus.RECEIVED,)
#: Job states after which a pending event needs a new job.
_ENDED = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED})

_connect_lock = threading.Lock()
_queues: weakref.WeakKeyDictionary[LatticeState, Queue] = weakref.WeakKeyDictionary()


def job_id(event_id: str) -> str:
    """The RQ job id of a stored event's job: ``lattice-`` and a SHA-256 of the event id.

    RQ refuses job ids with anything but letters, digits, ``_`` and ``-``; a hash makes
    every stored id, even one stored before the route checked ids, a valid job id.
    """
    digest = hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"lattice-{digest[:40]}"


def redis_connection(app: Flask | None = None) -> Redis[bytes]:
    """The app's Redis client, created on first use.

    ``LATTICE_REDIS_URL`` when set; otherwise the instance folder's embedded Redis
    (:mod:`~flask_lattice.webhooks.embedded_redis`), shared by the web process and local
    workers, and stopped with the process that started it.
    """
    target: Flask = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
    state = get_state(target)
    if state.redis is None:
        with _connect_lock:
            if state.redis is None:
                state.redis = _connect(state.config.redis_url, target.instance_path)
    return state.redis


def redis_location(app: Flask | None = None) -> str:
    """Which Redis the app uses, for messages: ``LATTICE_REDIS_URL`` without its
    password, or the embedded Redis of the instance folder."""
    target: Flask = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
    url = get_state(target).config.redis_url
    if not url:
        return f"the embedded Redis of {target.instance_path} (LATTICE_REDIS_URL is not set)"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def _connect(url: str | None, instance_path: str) -> Redis[bytes]:
    # Fail fast when Redis is down: the webhook route must answer quickly either way.
    options: dict[str, Any] = {
        "socket_connect_timeout": 2,
        "retry": ConnectionRetry(NoBackoff(), 1),
        "health_check_interval": 30,
        # redis-py looks its own version up in the installed packages' metadata for every
        # new connection unless given it; a forking worker's horses each open one.
        "driver_info": DriverInfo(),
    }
    if url:
        return Redis.from_url(url, **options)
    from .embedded_redis import ensure_server

    return Redis(unix_socket_path=ensure_server(instance_path), **options)


def queue(app: Flask | None = None) -> Queue:
    """The RQ queue named ``LATTICE_QUEUE_NAME`` on the app's Redis."""
    connection = redis_connection(app)
    state = get_state(app)
    cached = _queues.get(state)
    if cached is None or cached.connection is not connection:
        cached = Queue(state.config.queue_name, connection=connection)
        _queues[state] = cached
    return cached


def _retry(state: LatticeState) -> Retry:
    intervals = list(state.config.job_retry_intervals)
    return Retry(max=len(intervals), interval=intervals)


def enqueue_event(event_id: str, app: Flask | None = None) -> bool:
    """Enqueue the job of a stored event in one Redis round trip.

    Returns False (and logs a warning) when Redis cannot be reached: the event stays in
    the database and the next drain enqueues it.
    """
    target = queue(app)
    try:
        with target.connection.pipeline(transaction=False) as pipe:
            _enqueue(target, get_state(app), event_id, pipe)
            pipe.execute()
    except RedisError as error:
        _warn_not_enqueued([event_id], error)
        return False
    return True


def _enqueue(
    target: Queue, state: LatticeState, event_id: str, pipe: Pipeline[bytes] | None
) -> Job:
    jobs = target.enqueue_many([_job_data(event_id, _retry(state))], pipeline=pipe)
    return jobs[0]


def _job_data(event_id: str, retry: Retry) -> EnqueueData:
    return Queue.prepare_data(
        PROCESS_EVENT,
        (event_id,),
        job_id=job_id(event_id),
        retry=retry,
        timeout=JOB_TIMEOUT,
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
        description=f"process Stripe event {event_id}",
    )


def _warn_not_enqueued(event_ids: list[str], error: RedisError) -> None:
    for event_id in event_ids:
        log.warning(
            "could not enqueue webhook event %s (%s); it is stored and the next drain "
            "will enqueue it",
            event_id,
            error,
        )


# -- the background enqueuer of a web process ---------------------------------------------


class Enqueuer:
    """Enqueues handed-over event ids from a thread of this process, in batches.

    The thread starts on the first hand-over and ends after a second without work. A
    forked child (a gunicorn worker) starts empty and starts its own thread. Each batch
    is one pipelined ``enqueue_many`` of the ids handed over within :attr:`LINGER` of
    the batch's first id. It holds the queue, not the app.
    """

    #: Seconds without work after which the thread ends (a new one starts on demand).
    IDLE = 1.0
    #: Seconds the thread waits for more ids after the first of a batch: a batch costs
    #: less per event, and the thread competes with requests for the interpreter once
    #: per batch instead of once per event.
    LINGER = 0.01

    def __init__(self, target: Queue, retry: Retry) -> None:
        self.target = target
        self.retry = retry
        self._reset()

    def _reset(self) -> None:
        """Start empty, without a thread (also in a forked child: see below)."""
        self._lock = threading.Condition()
        self._pending: list[str] = []
        self._handed = 0  # ids handed over so far
        self._settled = 0  # ids enqueued, or given up on (Redis down), so far
        self._thread: threading.Thread | None = None

    def submit(self, event_id: str) -> None:
        """Hand over one stored event's id; returns at once."""
        with self._lock:
            self._pending.append(event_id)
            self._handed += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="lattice-enqueuer", daemon=True
                )
                self._thread.start()
            self._lock.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every id handed over so far is enqueued (or given up on)."""
        with self._lock:
            goal = self._handed
            return self._lock.wait_for(lambda: self._settled >= goal, timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._lock.wait(self.IDLE)
                if not self._pending:
                    self._thread = None
                    return
            time.sleep(self.LINGER)
            with self._lock:
                batch, self._pending = self._pending, []
            self._send(list(dict.fromkeys(batch)))
            with self._lock:
                self._settled += len(batch)
                self._lock.notify_all()

    def _send(self, event_ids: list[str]) -> None:
        """Enqueue a batch in one round trip; one event that fails never drops the others."""
        try:
            with self.target.connection.pipeline(transaction=False) as pipe:
                for event_id in event_ids:
                    try:
                        self.target.enqueue_many([_job_data(event_id, self.retry)], pipeline=pipe)
                    except Exception:  # this event only; the drain retries it
                        log.exception(
                            "could not enqueue webhook event %s; it is stored and the next "
                            "drain retries it",
                            event_id,
                        )
                results = pipe.execute(raise_on_error=False)
        except RedisError as error:
            _warn_not_enqueued(event_ids, error)
        except Exception:  # never let the thread die with ids in hand; the drain has them
            log.exception("could not enqueue webhook events %s", ", ".join(event_ids))
        else:
            errors = [result for result in results if isinstance(result, Exception)]
            if errors:
                log.error(
                    "Redis refused %d command(s) while enqueueing webhook events %s (first: "
                    "%s); the next drain enqueues any of them left without a job",
                    len(errors),
                    ", ".join(event_ids),
                    errors[0],
                )


_enqueuers: weakref.WeakKeyDictionary[LatticeState, Enqueuer] = weakref.WeakKeyDictionary()
_live_enqueuers: weakref.WeakSet[Enqueuer] = weakref.WeakSet()


def _enqueuer(app: Flask | None) -> Enqueuer:
    state = get_state(app)
    target = queue(app)
    current = _enqueuers.get(state)
    if current is None or current.target is not target:
        with _connect_lock:
            current = _enqueuers.get(state)
            if current is None or current.target is not target:
                current = Enqueuer(target, _retry(state))
                _enqueuers[state] = current
                _live_enqueuers.add(current)
    return current


def enqueue_soon(event_id: str, app: Flask | None = None) -> None:
    """Hand a stored event to this process's background enqueuer; returns at once.

    If the process dies before the enqueue, or Redis is down (a warning is logged),
    the event stays ``received`` in the database and the next drain enqueues it.
    """
    _enqueuer(app).submit(event_id)


def flush_enqueued(app: Flask | None = None, timeout: float = 10.0) -> bool:
    """Wait until this process has enqueued every event handed to :func:`enqueue_soon`."""
    current = _enqueuers.get(get_state(app))
    return current is None or current.flush(timeout)


@atexit.register
def _flush_at_exit() -> None:
    for current in list(_live_enqueuers):
        current.flush(timeout=5.0)


def _after_fork_in_child() -> None:
    """A forked child has none of its parent's threads: forget their work and locks."""
    for current in list(_live_enqueuers):
        current._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)


def requeue_event(event_id: str, app: Flask | None = None) -> None:
    """Replace the event's job with a fresh one; raises ``RedisError`` when Redis is down."""
    target = queue(app)
    with contextlib.suppress(NoSuchJobError):
        Job.fetch(job_id(event_id), connection=target.connection).delete()
    _enqueue(target, get_state(app), event_id, None)


def recover_abandoned(app: Flask | None = None) -> None:
    """Let RQ retry (or fail) jobs whose worker died: their heartbeat has expired."""
    target = queue(app)
    StartedJobRegistry(queue=target).cleanup()


@dataclass(frozen=True)
class Drained:
    """What one drain did: the ids it enqueued, and the ids it could not enqueue (with why)."""

    enqueued: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def drain(app: Flask | None = None, *, min_age: float = 0.0, limit: int = 1000) -> Drained:
    """Enqueue stored events that are not done and have no live job.

    This process's own background enqueuer is flushed first, so events it holds are not
    enqueued twice. ``min_age`` (seconds) skips events received very recently, whose job
    another web process is enqueueing right now. Events that RQ is retrying (status
    ``failed``, job scheduled) are left alone. A job whose worker died is first handed
    to RQ's own abandoned-job handling. An event whose jobs died more often than the
    retries allow is marked ``failed`` instead of enqueued again.

    Each event is handled on its own: one whose job cannot be read or enqueued is logged,
    reported in :attr:`Drained.skipped` and tried again by the next drain, and the drain
    carries on with the others. Raises ``redis.exceptions.ConnectionError`` (a
    ``RedisError``) when Redis cannot be reached at all.
    """
    state = get_state(app)
    flush_enqueued(app)
    recover_abandoned(app)
    cutoff = utcnow() - timedelta(seconds=min_age)
    table = cast(sa.Table, WebhookEvent.__table__)
    with state.db.engine.connect() as connection:
        pending = connection.execute(
            sa.select(table.c.id, table.c.attempts)
            .where(table.c.status.in_(PENDING_STATUSES), table.c.received_at <= cutoff)
            .order_by(table.c.created, table.c.received_at)
            .limit(limit)
        ).all()
    target = queue(app)
    report = Drained()
    needs = _jobs_needed(target, [row.id for row in pending], report.skipped)
    orphaned = [row for row in pending if needs.get(row.id)]
    max_attempts = len(state.config.job_retry_intervals) + 1
    exhausted = [row.id for row in orphaned if row.attempts >= max_attempts]
    if exhausted:
        _give_up(state, exhausted, max_attempts)
    for row in orphaned:
        if row.attempts >= max_attempts:
            continue
        try:
            requeue_event(row.id, app)
        except (RedisConnectionError, RedisTimeoutError):
            raise
        except Exception as error:
            _skip(report.skipped, row.id, error)
        else:
            report.enqueued.append(row.id)
    if report.enqueued:
        log.info("drain enqueued %d stored webhook event(s)", len(report.enqueued))
    return report


def _jobs_needed(target: Queue, event_ids: list[str], skipped: dict[str, str]) -> dict[str, bool]:
    """Event id → whether it needs a new job; unreadable jobs go to ``skipped``."""
    try:
        jobs = Job.fetch_many(
            [job_id(event_id) for event_id in event_ids], connection=target.connection
        )
        return {event_id: _needs_job(job) for event_id, job in zip(event_ids, jobs, strict=True)}
    except (RedisConnectionError, RedisTimeoutError):
        raise
    except Exception:  # one unreadable job: read them one by one to find it
        log.warning("could not read the jobs of %d pending event(s) at once", len(event_ids))
    needed: dict[str, bool] = {}
    for event_id in event_ids:
        try:
            job = Job.fetch(job_id(event_id), connection=target.connection)
        except NoSuchJobError:
            needed[event_id] = True
        except (RedisConnectionError, RedisTimeoutError):
            raise
        except Exception as error:
            _skip(skipped, event_id, error)
        else:
            needed[event_id] = _needs_job(job)
    return needed


def _skip(skipped: dict[str, str], event_id: str, error: Exception) -> None:
    reason = f"{type(error).__name__}: {error}".splitlines()[0][:300]
    skipped[event_id] = reason
    log.error(
        "drain skipped webhook event %s: its job cannot be read or enqueued (%s); the other "
        "events go ahead and the next drain tries it again",
        event_id,
        reason,
    )


def _give_up(state: LatticeState, event_ids: list[str], attempts: int) -> None:
    table = cast(sa.Table, WebhookEvent.__table__)
    log.error("giving up on webhook event(s) %s: their jobs died mid-run", ", ".join(event_ids))
    with state.db.engine.begin() as connection:
        connection.execute(
            sa.update(table)
            .where(table.c.id.in_(event_ids), table.c.status.in_(PENDING_STATUSES))
            .values(
                status=EventStatus.FAILED,
                last_error=f"the job stopped without finishing {attempts} times "
                "(worker killed or out of memory?); replay it once the cause is fixed",
            )
        )


def _needs_job(job: Job | None) -> bool:
    if job is None:
        return True
    status = job.get_status(refresh=False)
    return status is None or status in _ENDED
