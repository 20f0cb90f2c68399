"""Worker throughput in one run: bare RQ workers running no-op jobs next to the lattice worker.

Six rows, each a fresh worker process started with ``--burst`` on a queue of N jobs:

* bare RQ forking ``Worker`` (``rq worker``) running a no-op job;
* ``flask lattice worker`` (forking), each job a stored ``customer.subscription.updated``
  event projected under ``when-safe`` (its own snapshot: strictly newer, pinned version,
  whole object, so no Stripe read);
* bare RQ ``SimpleWorker`` running the no-op job;
* ``flask lattice worker --simple``;
* bare RQ ``worker-pool`` of two ``SimpleWorker`` processes running the no-op job;
* ``flask lattice worker --processes 2`` (the same pool of lattice workers).

Each pair (bare, lattice) runs back to back, in alternating order, for ``--rounds``
rounds, so that the machine's speed drifting between rows hits both alike; the table
gives each row's median rate and each pair's median per-round ratio. Two rates per row:
with the worker process's start (``flask lattice worker`` imports Flask, SQLAlchemy, the
Stripe SDK and the app: about 1.5 s against 0.4 s for ``rq worker``), and steady, from
the first job's start to the last job's end as RQ recorded them on the jobs. The targets
are on the steady rate, which is what a worker gives a backlog.

Targets: forking lattice ≥ 0.5× bare forking; ``--simple`` ≥ 0.5× bare ``SimpleWorker``.

    python -m bench.workers [--jobs 300] [--rounds 3] [--database-url URL] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job

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
#: Each pair's rows: the bare RQ worker, then the lattice worker.
ROW_NAMES = {
    "forking": ("bare forking", "lattice forking"),
    "simple": ("bare SimpleWorker", "lattice --simple"),
    "pool of 2": ("bare pool of 2 simple", "lattice --processes 2"),
}


@dataclass(frozen=True)
class Rate:
    """One worker run's throughput, in jobs per second."""

    #: From the worker process's start to its exit.
    with_start: float
    #: From the first job's start to the last job's end, as RQ recorded them on the jobs
    #: (``started_at``, ``ended_at``): the rate once the worker runs.
    steady: float


def _rate(jobs: list[Job], elapsed: float) -> Rate:
    first = min(job.started_at for job in jobs if job.started_at is not None)
    last = max(job.ended_at for job in jobs if job.ended_at is not None)
    return Rate(len(jobs) / elapsed, len(jobs) / (last - first).total_seconds())


def _bare(
    redis_url: str, jobs: int, simple: bool, workdir: Path, processes: int | None = None
) -> Rate:
    connection = Redis.from_url(redis_url)
    queue = Queue(BARE_QUEUE, connection=connection)
    queue.empty()  # type: ignore[no-untyped-call]
    ids = [queue.enqueue("bench.noop.noop").id for _ in range(jobs)]
    command = [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", redis_url, "-q"]
    if processes is not None:
        command[3:4] = ["worker-pool", "--num-workers", str(processes)]
    if simple:
        command += ["-w", "rq.worker.SimpleWorker"]
    started = time.perf_counter()
    with _process([*command, BARE_QUEUE], dict(os.environ), workdir / "bare.log") as worker:
        worker.wait()
    elapsed = time.perf_counter() - started
    return _rate(_finished(ids, connection), elapsed)


def _finished(ids: list[str], connection: Redis[bytes]) -> list[Job]:
    found = [job for job in Job.fetch_many(ids, connection=connection) if job is not None]
    if len(found) != len(ids) or any(job.ended_at is None for job in found):
        raise RuntimeError(f"{len(ids) - len(found)} of {len(ids)} jobs were not kept or ended")
    return found


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
             workdir: Path) -> Rate:  # fmt: skip
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
    ids = [queue.job_id(event["id"]) for event in events]
    return _rate(_finished(ids, queue.redis_connection(app)), elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
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
            pairs: dict[str, tuple[Callable[[], Rate], Callable[[], Rate]]] = {
                "forking": (
                    lambda: _bare(redis_url, options.jobs, False, workdir),
                    lambda: _lattice(app, events, [], env, workdir),
                ),
                "simple": (
                    lambda: _bare(redis_url, options.jobs, True, workdir),
                    lambda: _lattice(app, events, ["--simple"], env, workdir),
                ),
                "pool of 2": (
                    lambda: _bare(redis_url, options.jobs, True, workdir, 2),
                    lambda: _lattice(app, events, ["--processes", "2"], env, workdir),
                ),
            }
            runs: dict[str, list[tuple[Rate, Rate]]] = {name: [] for name in pairs}
            for round_number in range(options.rounds):
                for name, (bare, lattice) in pairs.items():
                    if round_number % 2 == 0:
                        bare_rate, lattice_rate = bare(), lattice()
                    else:
                        lattice_rate, bare_rate = lattice(), bare()
                    runs[name].append((bare_rate, lattice_rate))
    kind = database_url.split(":")[0]
    print(
        f"{options.jobs} jobs per worker, {kind}, median of {options.rounds} rounds; "
        "steady: first job's start to last job's end (RQ's timestamps)"
    )
    print(f"{'worker':<24}{'jobs/s with start':>19}{'jobs/s steady':>15}")
    for name, pair_runs in runs.items():
        for side, row_name in enumerate(ROW_NAMES[name]):
            with_start = statistics.median(run[side].with_start for run in pair_runs)
            steady = statistics.median(run[side].steady for run in pair_runs)
            print(f"{row_name:<24}{with_start:>19.1f}{steady:>15.1f}")
    for name in ("forking", "simple"):
        bare_name, lattice_name = ROW_NAMES[name]
        steady = statistics.median(lat.steady / bare.steady for bare, lat in runs[name])
        started = statistics.median(lat.with_start / bare.with_start for bare, lat in runs[name])
        verdict = "meets" if steady >= TARGET else "misses"
        print(
            f"{lattice_name} / {bare_name}: {steady:.2f}x steady ({verdict} the {TARGET}x "
            f"target), {started:.2f}x with the worker's start"
        )


if __name__ == "__main__":
    main()
