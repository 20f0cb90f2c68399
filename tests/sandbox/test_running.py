"""Running the sandbox: persistence across restarts, reset, and the command line."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from flask_lattice.sandbox import StripeSandbox


def test_state_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.db"
    with StripeSandbox(persist_path=path) as sb:
        customer = sb.client().v1.customers.create(params={"email": "keep@example.com"})
        sb.advance(days=2)
        now = sb.now()
    with StripeSandbox(persist_path=path) as again:
        assert again.client().v1.customers.retrieve(customer.id).email == "keep@example.com"
        assert again.now() >= now
        again.reset()
        assert again.client().v1.customers.list().data == []
        assert again.events == []


def test_command_prints_url_and_secret() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flask_lattice.sandbox",
            "--port",
            "0",
            "--webhook-secret",
            "whsec_cli",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Stripe sandbox listening on http://127.0.0.1:")
        url = first.rsplit(" ", 1)[-1].strip()
        lines = [process.stdout.readline() for _ in range(2)]
        assert "whsec_cli" in lines[1]
        for _ in range(50):
            try:
                assert requests.get(f"{url}/_sandbox/clock", timeout=1).json()["now"] > 0
                break
            except requests.ConnectionError:
                time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=5)


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        StripeSandbox(dunning_final_status="gone")
