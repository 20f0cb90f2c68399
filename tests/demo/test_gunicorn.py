"""Quillnote under gunicorn with two workers, booting on an empty PostgreSQL database.

Both workers build the app, and so create the schema, at the same moment; the schema must
be created once, behind a lock, or one of them fails to boot (it did in 3 of 10 starts).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.error import URLError
from urllib.parse import quote
from urllib.request import urlopen

import pytest
import sqlalchemy as sa

from tests.conftest import PG_URL, _missing_backend

BOOTS = 10
WORKERS = 2
#: A deadline for a boot to settle, not a measurement: the test never asserts a duration.
BOOT_DEADLINE = 120.0
READY_CONFIG = Path(__file__).resolve().parents[1] / "helpers" / "gunicorn_ready.py"


@pytest.fixture
def postgres_url() -> str:
    """The test PostgreSQL server (each boot makes its own schema in it)."""
    if not PG_URL:
        _missing_backend("PostgreSQL", "LATTICE_TEST_DATABASE_URL")
    assert PG_URL is not None
    return PG_URL


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _get(url: str) -> int | None:
    try:
        with urlopen(url, timeout=10) as response:
            status: int = response.status
            return status
    except (URLError, OSError):
        return None


def _boot_once(pg_url: str, workdir: Path) -> tuple[bool, str]:
    """Start gunicorn on a new, empty schema; whether both workers booted and / answered."""
    schema = f"quillnote_boot_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in pg_url else "?"
    ready = workdir / schema
    ready.mkdir()
    port = _free_port()
    env = dict(
        os.environ,
        DATABASE_URL=f"{pg_url}{separator}options={quote(f'-csearch_path={schema}')}",
        QUILLNOTE_INSTANCE_PATH=str(workdir / "instance"),
        SECRET_KEY="boot-test",
        QUILLNOTE_TEST_READY_DIR=str(ready),
    )
    log = workdir / f"{schema}.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn",
                "--workers", str(WORKERS),
                "--bind", f"127.0.0.1:{port}",
                "--config", str(READY_CONFIG),
                "demo_app:create_app()",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + BOOT_DEADLINE
        while len(list(ready.iterdir())) < WORKERS and server.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        booted = len(list(ready.iterdir())) == WORKERS and server.poll() is None
        served = booted and _get(f"http://127.0.0.1:{port}/") == 200
        alive = server.poll() is None
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return booted and served and alive, log.read_text(errors="replace")


def test_two_gunicorn_workers_boot_on_an_empty_database_every_time(
    postgres_url: str, tmp_path: Path
) -> None:
    for boot in range(1, BOOTS + 1):
        ok, log = _boot_once(postgres_url, tmp_path)
        assert ok, f"boot {boot} of {BOOTS} failed:\n{log[-4000:]}"
