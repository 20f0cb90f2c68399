"""Work horses forked ahead of their jobs, with real processes, Redis and database.

The forking worker hands each job to a horse it forked while the job before ran. Every
job still runs in a fresh process of its own, no spare outlives the worker, and a spare
that died while it waited is replaced before its job is lost.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_lattice.webhooks.spare_horse import HandOff, SpareHorse
from flask_lattice.webhooks.worker import build_worker
from tests.helpers.pipeline import JSON, attempted_once, bare_event, event_statuses, post_event
from tests.helpers.support import host

EVENT_TYPE = "charge.dispute.created"


def _children(pid: int | None = None) -> set[int]:
    """The living and unreaped child processes of ``pid`` (this process by default) that
    its main thread forked."""
    pid = os.getpid() if pid is None else pid
    listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {int(child) for child in listed}


def _post(app: Flask, sandbox: Any, count: int) -> list[str]:
    """``count`` events of a type only the test's handler takes, stored and queued."""
    ids = [f"evt_spare_{index}" for index in range(count)]
    for event_id in ids:
        event = bare_event(event_id, EVENT_TYPE, sandbox.now())
        assert post_event(app.test_client(), event, sandbox.webhook_secret).status_code == 200
    return ids


def _record_pids(app: Flask, pid_file: Path) -> None:
    """Each handled event appends ``event id, pid of the process running it``."""

    @host(app).billing.on_event(EVENT_TYPE)
    def record(event: JSON) -> None:
        with pid_file.open("a") as handle:
            handle.write(f"{event['id']} {os.getpid()}\n")


def _pids(pid_file: Path) -> dict[str, int]:
    lines = (line.split() for line in pid_file.read_text().splitlines())
    return {event_id: int(pid) for event_id, pid in lines}


def test_every_job_runs_in_a_fresh_process_and_no_spare_outlives_the_worker(
    app: Flask, sandbox: Any, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    _record_pids(app, pid_file)
    ids = _post(app, sandbox, 4)
    before = _children()

    build_worker(app, name="spares").work(burst=True)

    pids = _pids(pid_file)
    assert sorted(pids) == ids
    assert len(set(pids.values())) == 4, pids
    assert os.getpid() not in pids.values()
    statuses = event_statuses(app)
    assert {status for status, _ in statuses.values()} == {"processed"}
    assert attempted_once(statuses), statuses
    assert _children() == before, "every horse and the last spare were ended and reaped"


def test_a_spare_that_died_while_it_waited_is_replaced(
    app: Flask, sandbox: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pid_file, killed_file = tmp_path / "pids", tmp_path / "killed"
    _record_pids(app, pid_file)
    before = _children()

    @host(app).billing.on_event(EVENT_TYPE)
    def kill_the_spare(event: JSON) -> None:
        """In the first job's horse: SIGKILL the spare forked for the next job."""
        if killed_file.exists():
            return
        worker_pid, deadline = os.getppid(), time.monotonic() + 10
        while time.monotonic() < deadline:
            spares = _children(worker_pid) - before - {os.getpid()}
            if spares:
                (spare,) = spares
                os.kill(spare, signal.SIGKILL)
                killed_file.write_text(str(spare))
                return
            time.sleep(0.01)
        raise AssertionError("no spare horse was forked for the next job")

    ids = _post(app, sandbox, 2)
    build_worker(app, name="spare-killed").work(burst=True)

    killed = int(killed_file.read_text())
    pids = _pids(pid_file)
    assert sorted(pids) == ids
    assert killed not in pids.values()
    assert pids[ids[0]] != pids[ids[1]]
    statuses = event_statuses(app)
    assert statuses == {event_id: ("processed", 1) for event_id in ids}
    # The job went to a new horse at once: RQ never saw a horse die with it.
    assert "terminated unexpectedly" not in caplog.text
    assert _children() == before


def test_a_spare_runs_the_one_job_it_is_handed(tmp_path: Path) -> None:
    taken = tmp_path / "taken"

    def become_horse(hand_off: HandOff) -> None:
        taken.write_text(" ".join(hand_off))

    spare = SpareHorse.fork(lambda: None, become_horse)
    assert spare.hand(HandOff("job-1", "execution-1", "lattice"))
    assert not spare.hand(HandOff("job-2", "execution-2", "lattice")), "one job per horse"
    _, status = os.waitpid(spare.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert taken.read_text() == "job-1 execution-1 lattice"


def _exit_code_within(pid: int, seconds: float) -> int | None:
    """``pid``'s exit code once it has ended (reaped), or None if it runs ``seconds`` on."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ended, status = os.waitpid(pid, os.WNOHANG)
        if ended:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    return None


def test_a_spare_takes_its_job_while_another_child_holds_the_pipe_open(tmp_path: Path) -> None:
    """RQ's scheduler, forked from the worker while a spare waits (restarted after a Redis
    outage, say), inherits the pipe's write end and never closes it."""
    taken = tmp_path / "taken"
    spare = SpareHorse.fork(lambda: None, lambda hand_off: taken.write_text(hand_off.job_id))
    bystander = os.fork()
    if bystander == 0:
        time.sleep(60)
        os._exit(0)
    try:
        assert spare.hand(HandOff("job-1", "execution-1", "lattice"))
        assert _exit_code_within(spare.pid, 10) == 0, "the spare waited for the pipe to close"
        assert taken.read_text() == "job-1"
    finally:
        spare.discard()
        os.kill(bystander, signal.SIGKILL)
        os.waitpid(bystander, 0)


def test_a_spare_that_cannot_prepare_ends_without_its_job(tmp_path: Path) -> None:
    taken = tmp_path / "taken"

    def prepare() -> None:
        raise RuntimeError("the worker's connections could not be dropped")

    spare = SpareHorse.fork(prepare, lambda hand_off: taken.write_text("ran"))
    _, status = os.waitpid(spare.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1
    assert not spare.hand(HandOff("job-1", "execution-1", "lattice"))
    assert not taken.exists()


def test_a_discarded_spare_is_ended_and_reaped_and_takes_no_job() -> None:
    before = _children()
    spare = SpareHorse.fork(lambda: None, lambda hand_off: os._exit(3))
    assert spare.pid in _children()
    spare.discard()
    assert _children() == before
    assert not spare.hand(HandOff("job-1", "execution-1", "lattice"))
