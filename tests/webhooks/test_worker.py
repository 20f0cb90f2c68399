"""The lattice worker's heartbeat on real Redis: one round trip, repeats skipped only when safe.

RQ sends a worker heartbeat before and after every dequeue. The lattice worker pipelines
each one, and an in-process worker skips one that comes within a second of the last, but
never when the worker's key would expire before the next dequeue ends.
"""

from __future__ import annotations

import os
import signal
import time

from flask import Flask

from flask_lattice.webhooks import queue
from flask_lattice.webhooks.worker import HEARTBEAT_COALESCE, build_worker


def test_an_in_process_worker_skips_a_repeated_heartbeat_only_while_its_key_lives(
    app: Flask,
) -> None:
    worker = build_worker(app, simple=True, name="heartbeats")
    redis = queue.redis_connection(app)
    worker.register_birth()
    try:
        worker.heartbeat()
        first = redis.hget(worker.key, "last_heartbeat")
        assert redis.ttl(worker.key) > worker.dequeue_timeout + 60

        worker.heartbeat()  # within a second of the last, and the key lives on: skipped
        assert redis.hget(worker.key, "last_heartbeat") == first

        # A job's heartbeat rides on RQ's pipeline and is always sent, with the job's TTL.
        with redis.pipeline() as pipeline:
            worker.heartbeat(30, pipeline=pipeline)
            pipeline.execute()
        assert 0 < redis.ttl(worker.key) <= 30
        second = redis.hget(worker.key, "last_heartbeat")
        assert second != first

        # Now the key would expire before the next dequeue ends: sent at once.
        worker.heartbeat()
        assert redis.ttl(worker.key) > worker.dequeue_timeout + 60
        third = redis.hget(worker.key, "last_heartbeat")
        assert third != second

        time.sleep(HEARTBEAT_COALESCE)  # a second later, sent again
        worker.heartbeat()
        assert redis.hget(worker.key, "last_heartbeat") != third
    finally:
        worker.register_death()


def test_a_forking_worker_sends_every_heartbeat(app: Flask) -> None:
    """Its work horse sets the key's TTL in another process, so it never skips one."""
    worker = build_worker(app, name="forking-heartbeats")
    redis = queue.redis_connection(app)
    worker.register_birth()
    try:
        worker.heartbeat()
        first = redis.hget(worker.key, "last_heartbeat")
        redis.expire(worker.key, 20)  # what a horse's job heartbeat leaves behind
        worker.heartbeat()
        assert redis.hget(worker.key, "last_heartbeat") != first
        assert redis.ttl(worker.key) > 20
    finally:
        worker.register_death()


def test_a_process_forked_from_the_worker_ends_on_a_stop_signal_it_inherited(
    app: Flask,
) -> None:
    """RQ's scheduler or a spare horse runs the worker's handler until it sets its own; a
    stop signal then ends it, as by default (it stopped nothing before, and a spare's copy
    of the worker could kill the horse of the worker's current job)."""
    worker = build_worker(app, name="inherited-handler")
    child = os.fork()
    if child == 0:
        try:
            worker.request_stop(signal.SIGTERM, None)
        finally:
            os._exit(0)  # reached only when the handler returns
    _, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status), os.waitstatus_to_exitcode(status)
    assert os.WTERMSIG(status) == signal.SIGTERM
