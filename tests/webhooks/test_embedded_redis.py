"""The embedded Redis: one ``redis-server`` per instance folder, gone with its starter.

Counts the ``redis-server`` processes of one instance folder (recognised by their config
file in the folder's runtime directory) before, during and after real processes use it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from textwrap import dedent

import psutil
import pytest
from redis import Redis
from rq import Worker

from flask_lattice.webhooks.embedded_redis import runtime_dir, socket_path

HOST_APP = dedent(
    """
    import os

    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from flask_lattice import LatticeBilling


    def create_app():
        instance = os.environ["ACME_INSTANCE"]
        os.makedirs(instance, exist_ok=True)
        app = Flask("acme", instance_path=instance)
        app.config.update(
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{instance}/acme.db",
            LATTICE_STRIPE_SECRET_KEY="sk_test_acme",
            LATTICE_WEBHOOK_SECRETS=["whsec_acme"],
            LATTICE_PLANS=[{"key": "pro", "name": "Pro", "rank": 10,
                            "prices": {"month": "pro_monthly"}}],
        )
        db = SQLAlchemy(app)
        LatticeBilling(app, db=db)
        with app.app_context():
            db.create_all()
        return app


    if __name__ == "__main__":  # a web-like process: use the queue, then exit
        from flask_lattice.webhooks.queue import redis_connection

        redis_connection(create_app()).ping()
        print("pinged", flush=True)
    """
)


def redis_servers(instance: Path) -> list[psutil.Process]:
    """The running ``redis-server`` processes serving ``instance``."""
    marker = str(runtime_dir(str(instance)))
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        try:
            if (
                process.info["name"] == "redis-server"
                and process.info["status"] != psutil.STATUS_ZOMBIE
                and any(marker in part for part in process.info["cmdline"] or [])
            ):
                found.append(process)
        except psutil.Error:
            continue
    return found


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def host_app(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    (tmp_path / "acme.py").write_text(HOST_APP)
    instance = tmp_path / "instance"
    env = {k: v for k, v in os.environ.items() if k != "LATTICE_REDIS_URL"}
    env.update(ACME_INSTANCE=str(instance), FLASK_APP="acme:create_app", PYTHONPATH=str(tmp_path))
    yield instance, env
    for process in redis_servers(instance):  # never leave one behind, even on failure
        process.kill()


def start_worker(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "lattice", "worker"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def workers_alive(instance: Path) -> bool:
    path = socket_path(str(instance))
    if not os.path.exists(path):
        return False
    connection = Redis(unix_socket_path=path)
    try:
        return bool(Worker.all(connection=connection))
    finally:
        connection.close()


def stop_group(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    process.wait(30)


def test_worker_and_web_process_share_one_server_which_stops_with_the_worker(
    host_app: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    instance, env = host_app
    assert redis_servers(instance) == []
    worker = start_worker(tmp_path, env)
    try:
        wait_until(lambda: workers_alive(instance), 60, "the worker to register")
        time.sleep(2)  # RQ's scheduler and command listener open their connections
        assert len(redis_servers(instance)) == 1
        run_web_process(tmp_path, env)
        assert len(redis_servers(instance)) == 1
    finally:
        stop_group(worker)
    wait_until(lambda: redis_servers(instance) == [], 15, "the server to stop")
    assert (instance / "lattice-redis.db").exists()  # saved on the way out
    assert not runtime_dir(str(instance)).exists()  # socket, config and log removed


def run_web_process(folder: Path, env: dict[str, str]) -> None:
    """Run the host's ``acme.py`` (a web process that pings the app's Redis) to its end."""
    web = subprocess.run(
        [sys.executable, str(folder / "acme.py")],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "pinged" in web.stdout


def test_server_stops_when_its_starter_is_killed(
    host_app: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    instance, env = host_app
    worker = start_worker(tmp_path, env)
    try:
        wait_until(lambda: workers_alive(instance), 60, "the worker to register")
        assert len(redis_servers(instance)) == 1
        os.kill(worker.pid, signal.SIGKILL)  # the worker only: no atexit, no cleanup
        worker.wait(30)
        wait_until(lambda: redis_servers(instance) == [], 15, "the orphaned server to stop")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)  # RQ's scheduler child, if any


def test_a_process_that_starts_the_server_stops_it_at_exit(
    host_app: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    instance, env = host_app
    run_web_process(tmp_path, env)
    assert redis_servers(instance) == []
