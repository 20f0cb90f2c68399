"""``flask lattice sandbox``: the sandbox for this app, with a stable secret and the
catalog pushed, printing the settings that point the app at it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import stripe

HOST_APP = dedent(
    """
    import os

    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from flask_lattice import LatticeBilling

    app = Flask("acme", instance_path=os.environ["ACME_INSTANCE"])
    app.config.update(
        SQLALCHEMY_DATABASE_URI="sqlite://",
        LATTICE_STRIPE_SECRET_KEY="sk_test_placeholder",
        LATTICE_REDIS_URL="redis://127.0.0.1:9",
        LATTICE_PLANS=[
            {"key": "pro", "name": "Pro", "rank": 10,
             "prices": {"month": {"lookup_key": "acme_pro_monthly", "amount": 1200}}},
        ],
    )
    LatticeBilling(app, db=SQLAlchemy(app))
    """
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_sandbox(folder: Path, port: int, *args: str) -> str:
    """Start ``flask lattice sandbox``, read its output up to "Ctrl-C", then Ctrl-C it."""
    env = {**os.environ, "FLASK_APP": "acme:app", "ACME_INSTANCE": str(folder / "instance")}
    for key in ("LATTICE_STRIPE_SECRET_KEY", "LATTICE_STRIPE_API_BASE", "LATTICE_WEBHOOK_SECRETS"):
        env.pop(key, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "lattice", "sandbox", "--port", str(port), *args],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        output = "".join(lines)
        assert "Press Ctrl-C" in output, output
        with_prices = stripe.StripeClient(
            "sk_test_sandbox_0000000000000000000000000000",
            base_addresses={"api": f"http://127.0.0.1:{port}"},
        ).v1.prices.list(params={"lookup_keys": ["acme_pro_monthly"]})
        assert [price.unit_amount for price in with_prices.data] == [1200]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
    return output


def test_sandbox_pushes_the_catalog_and_prints_stable_settings(tmp_path: Path) -> None:
    (tmp_path / "acme.py").write_text(HOST_APP)
    port = _free_port()
    first = _run_sandbox(tmp_path, port, "--app-url", "http://127.0.0.1:5001")
    assert "create price    acme_pro_monthly: $12.00 / month" in first
    assert "forwarding events to http://127.0.0.1:5001/billing/webhook" in first
    exports = dict(re.findall(r"export (LATTICE_[A-Z_]+)=(\S+)", first))
    assert exports["LATTICE_STRIPE_API_BASE"] == f"http://127.0.0.1:{port}"
    assert exports["LATTICE_STRIPE_SECRET_KEY"].startswith("sk_test_")
    assert exports["LATTICE_WEBHOOK_SECRETS"].startswith("whsec_")

    second = _run_sandbox(tmp_path, port)  # state kept in the instance folder
    assert "the catalog is up to date in Stripe" in second
    assert dict(re.findall(r"export (LATTICE_[A-Z_]+)=(\S+)", second)) == exports

    chosen = _run_sandbox(tmp_path, port, "--webhook-secret", "whsec_chosen")
    assert "export LATTICE_WEBHOOK_SECRETS=whsec_chosen" in chosen
