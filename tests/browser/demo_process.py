"""The demo's runner (``python -m demo_app``, what ``make demo`` runs) as a test subprocess."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90.0
STOP_TIMEOUT = 40.0
#: Variables that would switch the demo away from its offline defaults.
_MODE_VARIABLES = ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "REDIS_URL", "DATABASE_URL")


def free_port() -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class DemoProcess:
    """A running ``python -m demo_app``; its console output is collected as it comes."""

    def __init__(
        self, process: subprocess.Popen[str], port: int, sandbox_port: int, instance_path: Path
    ) -> None:
        self.process = process
        self.database = instance_path / "quillnote.db"
        self.url = f"http://127.0.0.1:{port}"
        self.sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        """Everything the runner printed so far."""
        return "\n".join(self.lines)

    @property
    def worker_pid(self) -> int:
        """The worker process's id, as the runner's banner reports it."""
        found = re.search(r"RQ worker, pid (\d+)", self.output)
        assert found, f"the runner did not report its worker:\n{self.output}"
        return int(found.group(1))

    def database_write_locked(self) -> bool:
        """Whether a process holds the demo's SQLite database write lock right now."""
        connection = sqlite3.connect(self.database, timeout=0)
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return True
        finally:
            connection.close()
        return False

    def wait_until_serving(self) -> None:
        """Block until the web app answers, or fail with the runner's output."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the demo exited early:\n{self.output}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                    if response.status == 200 and "Press Ctrl-C" in self.output:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.process.kill()
        raise AssertionError(f"the demo did not start in {START_TIMEOUT}s:\n{self.output}")

    def stop(self) -> int:
        """Ctrl-C the runner and wait for it; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(
                    f"the demo did not stop within {STOP_TIMEOUT}s:\n{self.output}"
                ) from None
        self._reader.join(5)
        return self.process.returncode


def start_demo(
    instance_path: Path, *, redis_url: str | None = None, chaos_seed: int | None = None
) -> DemoProcess:
    """Run the demo on free ports with its data in ``instance_path``; wait until it serves.

    ``chaos_seed``: the sandbox delivers webhooks shuffled, duplicated and delayed, seeded by it.
    """
    environ = {key: value for key, value in os.environ.items() if key not in _MODE_VARIABLES}
    environ["PYTHONUNBUFFERED"] = "1"
    if redis_url:
        environ["REDIS_URL"] = redis_url
    port, sandbox_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "demo_app",
            "--port",
            str(port),
            "--sandbox-port",
            str(sandbox_port),
            "--instance-path",
            str(instance_path),
            *(["--sandbox-chaos", str(chaos_seed)] if chaos_seed is not None else []),
        ],
        cwd=REPO,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    demo = DemoProcess(process, port, sandbox_port, instance_path)
    demo.wait_until_serving()
    return demo
