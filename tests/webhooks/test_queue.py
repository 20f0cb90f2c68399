"""The web process's background enqueuer: normal RQ jobs, fork safety, and no lost event.

The webhook route answers once the event is committed and hands its id to a thread of
its process, which enqueues it a moment later. These tests check that the jobs it
writes are ordinary RQ jobs, that a forked process (gunicorn's workers) gets its own
thread, and that a web process killed between the commit and the enqueue loses nothing:
the drain enqueues the stored event.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from rq.job import Job

from flask_lattice.testing import sign_payload
from flask_lattice.webhooks import queue
from tests.helpers.pipeline import REPO_ROOT, event_statuses, post_event, wait_for
from tests.helpers.pipeline_app import config_env
from tests.helpers.support import TEST_WEBHOOK_SECRET, run_worker


def an_event(event_id: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": "customer.updated",
        "created": int(time.time()),
        "livemode": False,
        "api_version": "2026-10-28.endive",
        "data": {"object": {"id": "cus_enqueuer", "object": "customer", "metadata": {}}},
    }


def queued(app: Flask) -> list[str]:
    with app.app_context():
        return list(queue.queue(app).job_ids)


def test_events_are_enqueued_as_ordinary_rq_jobs_and_processed(app: Flask, sandbox: Any) -> None:
    client = app.test_client()
    ids = [f"evt_batch_{index:02d}" for index in range(25)]
    for event_id in ids:
        response = post_event(client, an_event(event_id), sandbox.webhook_secret)
        assert response.status_code == 200, response.get_data(as_text=True)
    with app.app_context():
        assert queue.flush_enqueued(app)
    assert queued(app) == [queue.job_id(event_id) for event_id in ids]

    with app.app_context():
        job = Job.fetch(queue.job_id(ids[0]), connection=queue.redis_connection(app))
    intervals = list(app.extensions["lattice"].config.job_retry_intervals)
    assert (job.func_name, job.args, job.timeout) == (
        queue.PROCESS_EVENT,
        (ids[0],),
        queue.JOB_TIMEOUT,
    )
    assert (job.retries_left, job.retry_intervals) == (len(intervals), intervals)
    assert (job.result_ttl, job.failure_ttl) == (queue.RESULT_TTL, queue.FAILURE_TTL)

    run_worker(app)
    assert {status for status, _ in event_statuses(app).values()} == {"processed"}


def test_a_forked_process_enqueues_through_its_own_thread(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory()
    with app.app_context():
        queue.enqueue_soon("evt_parent", app)  # starts this process's thread
        assert queue.flush_enqueued(app)
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        code = 1
        try:
            with app.app_context():
                queue.enqueue_soon("evt_child", app)
                code = 0 if queue.flush_enqueued(app, timeout=10) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert queued(app) == [queue.job_id("evt_parent"), queue.job_id("evt_child")]


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A Redis URL whose server accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _web_process(app: Flask, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "run", "--port", str(port), "--no-reload"],
            cwd=REPO_ROOT,
            env={**os.environ, **config_env(app)},
            start_new_session=True,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _post(port: int, event: dict[str, Any], secret: str) -> int:
    body = json.dumps(event).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST",
            "/billing/webhook",
            body=body,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": sign_payload(body, secret),
            },
        )
        return connection.getresponse().status
    finally:
        connection.close()


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_web_process_killed_after_the_commit_loses_no_event(
    app_factory: Callable[..., Flask], sandbox: Any, black_hole: str, tmp_path: Path
) -> None:
    # The web process's Redis never answers, so its enqueue cannot happen before the kill.
    web = app_factory(sandbox=sandbox, LATTICE_REDIS_URL=black_hole)
    port = _free_port()
    process = _web_process(web, port, tmp_path / "web.log")
    try:
        wait_for(lambda: _answers(port), 30, "the web process to listen")
        assert _post(port, an_event("evt_orphaned"), sandbox.webhook_secret) == 200
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    assert event_statuses(web) == {"evt_orphaned": ("received", 0)}

    # The same database with a working Redis: nothing was enqueued, the drain does it.
    app = app_factory(sandbox=sandbox)
    assert queued(app) == []
    result = app.test_cli_runner().invoke(args=["lattice", "drain"])
    assert result.exit_code == 0, result.output
    assert "enqueued 1 stored event(s)" in result.output
    run_worker(app)
    assert event_statuses(app) == {"evt_orphaned": ("processed", 1)}


def test_a_web_process_that_exits_enqueues_what_it_holds(
    app_factory: Callable[..., Flask], tmp_path: Path
) -> None:
    app = app_factory()
    script = (
        "import json, os, sys\n"
        "from tests.helpers.pipeline_app import create_app\n"
        "from tests.helpers.pipeline import post_event\n"
        "app = create_app()\n"
        "for index in range(5):\n"
        "    event = json.loads(sys.argv[1]) | {'id': f'evt_exit_{index}'}\n"
        "    assert post_event(app.test_client(), event, sys.argv[2]).status_code == 200\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, json.dumps(an_event("x")), TEST_WEBHOOK_SECRET],
        cwd=REPO_ROOT,
        env={**os.environ, **config_env(app)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    # The process ended right after its last 200; its exit handler enqueued the rest.
    assert sorted(queued(app)) == sorted(queue.job_id(f"evt_exit_{index}") for index in range(5))
