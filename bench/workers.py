"""Worker throughput in one run: bare RQ workers running no-op jobs next to the lattice worker.

Six rows, each a fresh worker process started with ``--burst`` on a queue of N jobs
(process start included):

* bare RQ forking ``Worker`` (``rq worker``) running a no-op job;
* ``flask lattice worker`` (forking), each job a stored ``customer.subscription.updated``
  event projected under ``when-safe`` (its own snapshot: strictly newer, pinned version,
  whole object, so no Stripe read);
* bare RQ ``SimpleWorker`` running the no-op job;
* ``flask lattice worker --simple``;
* bare RQ ``worker-pool`` of two ``SimpleWorker`` processes running the no-op job;
* ``flask lattice worker --processes 2`` (the same pool of lattice workers).

Targets: forking lattice ≥ 0.5× bare forking; ``--simple`` ≥ 0.5× bare ``SimpleWorker``.

    python -m bench.workers [--jobs 300] [--database-url URL] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue

from bench.webhook_ingest import (
    APP_MODULE,
    CONFIG_ENV,
    PRICES,
    WEBHOOK,
    _process,
    _redis,
    _signed,
    create_app,
    sandbox_config,
)
from flask_lattice.testing import ensure_prices

TARGET = 0.5
BARE_QUEUE = "bench-bare"


def _bare(
    redis_url: str, jobs: int, simple: bool, workdir: Path, processes: int | None = None
) -> float:
    connection = Redis.from_url(redis_url)
    queue = Queue(BARE_QUEUE, connection=connection)
    queue.empty()  # type: ignore[no-untyped-call]
    for _ in range(jobs):
        queue.enqueue("bench.noop.noop")
    command = [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", redis_url, "-q"]
    if processes is not None:
        command[3:4] = ["worker-pool", "--num-workers", str(processes)]
    if simple:
        command += ["-w", "rq.worker.SimpleWorker"]
    started = time.perf_counter()
    with _process([*command, BARE_QUEUE], dict(os.environ), workdir / "bare.log") as worker:
        worker.wait()
    return jobs / (time.perf_counter() - started)


def _stream(sandbox: Any, price_id: str, jobs: int) -> list[dict[str, Any]]:
    """``jobs`` copies of one subscription's updated event, each one second newer."""
    client = sandbox.client()
    customer = client.v1.customers.create(params={"metadata": {"lattice_billable": "user:w"}})
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price_id, "quantity": 1}],
            "success_url": "http://127.0.0.1/done",
            "client_reference_id": "user:w",
        }
    )
    sandbox.complete_checkout(session.id)
    template = next(
        e for e in reversed(sandbox.events) if e["type"] == "customer.subscription.updated"
    )
    run = f"{int(time.time() * 1000):x}"
    return [
        {**template, "id": f"evt_w_{run}_{index:06d}", "created": template["created"] + index}
        for index in range(jobs)
    ]


def _lattice(app: Any, events: list[dict[str, Any]], flags: list[str], env: dict[str, str],
             workdir: Path) -> float:  # fmt: skip
    from flask_lattice.webhooks import queue

    with app.app_context():
        db = app.extensions["sqlalchemy"]
        db.drop_all()
        db.create_all()
        queue.queue(app).empty()  # type: ignore[no-untyped-call]
    client = app.test_client()
    for body, headers in _signed(events, app.config["LATTICE_WEBHOOK_SECRETS"][0]):
        client.post(WEBHOOK, data=body, headers=headers)
    queue.flush_enqueued(app)
    command = [sys.executable, "-m", "flask", "lattice", "worker", "--burst", *flags]
    started = time.perf_counter()
    with _process(command, env, workdir / "lattice.log") as worker:
        worker.wait()
    elapsed = time.perf_counter() - started
    with app.app_context():
        from flask_lattice.models import WebhookEvent

        done = db.session.query(WebhookEvent).filter_by(status="processed").count()
    if done != len(events):
        raise RuntimeError(f"only {done} of {len(events)} events were processed ({flags})")
    return len(events) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None)
    options = parser.parse_args()

    from flask_lattice.sandbox import StripeSandbox

    with tempfile.TemporaryDirectory() as tmp, StripeSandbox() as sandbox:
        workdir = Path(tmp)
        price_ids = ensure_prices(sandbox.client(), PRICES)
        database_url = options.database_url or f"sqlite:///{workdir / 'bench.db'}"
        with _redis(options.redis_url, workdir) as redis_url:
            config = sandbox_config(
                sandbox,
                redis_url,
                SQLALCHEMY_DATABASE_URI=database_url,
                LATTICE_TRUST_WEBHOOK_PAYLOADS="when-safe",
            )
            env = {
                **os.environ,
                CONFIG_ENV: json.dumps(config),
                "FLASK_APP": f"{APP_MODULE}:create_app",
            }
            os.environ[CONFIG_ENV] = json.dumps(config)
            app = create_app()
            events = _stream(sandbox, price_ids["pro_monthly"], options.jobs)
            rates = {
                "bare forking": _bare(redis_url, options.jobs, False, workdir),
                "lattice forking": _lattice(app, events, [], env, workdir),
                "bare SimpleWorker": _bare(redis_url, options.jobs, True, workdir),
                "lattice --simple": _lattice(app, events, ["--simple"], env, workdir),
                "bare pool of 2 simple": _bare(redis_url, options.jobs, True, workdir, 2),
                "lattice --processes 2": _lattice(app, events, ["--processes", "2"], env, workdir),
            }
    kind = database_url.split(":")[0]
    print(f"{options.jobs} jobs per worker, {kind}, one worker process including its start")
    print(f"{'worker':<24}{'jobs/s':>10}")
    for name, rate in rates.items():
        print(f"{name:<24}{rate:>10.1f}")
    for lattice, bare in (
        ("lattice forking", "bare forking"),
        ("lattice --simple", "bare SimpleWorker"),
    ):
        ratio = rates[lattice] / rates[bare]
        verdict = "meets" if ratio >= TARGET else "misses"
        print(f"{lattice} / {bare}: {ratio:.2f}x ({verdict} the {TARGET}x target)")


if __name__ == "__main__":
    main()
