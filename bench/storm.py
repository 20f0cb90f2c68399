"""A renewal storm: N subscriptions renew in one sandbox clock advance, under Stripe's limits.

The sandbox renews every subscription at once; its events are posted to the app's webhook
route (a backlog), then K workers drain the queue (``--worker-mode processes``, the default:
one ``flask lattice worker --processes K``, the production mode; ``forking``: K forking
``flask lattice worker`` processes), and the run ends when every local subscription and invoice row matches
the sandbox and no event is waiting. The sandbox answers 429 (with
``Stripe-Should-Retry: true``) above Stripe's test-mode limits (``set_rate_limit``): 25
requests per second overall and 25 per endpoint. The app meters its own reads at
``LATTICE_STRIPE_READ_RATE`` (20/s, the test-mode default against Stripe).

Each fetch policy runs on a copy of one pre-storm database, with the same events:
``when-safe`` with 1 and 4 workers, and the old re-fetch-every-event policy
(``always-fetch``) as the baseline. Printed side by side: drain time, events, Stripe reads
per event, 429s seen, failed events, the time until every row matched Stripe and until
no event was waiting (the drain time), the seconds the bench spent comparing rows (kept
under a tenth of one core, since they take CPU from the workers), and the ratios.

    python -m bench.storm [--subscriptions 2000] [--baseline-workers 4] [--timeout 3600]
                          [--worker-mode processes|forking]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from redis import Redis
from rq import Worker
from rq.suspension import resume, suspend

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
from flask_lattice.models import Invoice, Subscription, WebhookEvent
from flask_lattice.testing import ensure_prices
from flask_lattice.webhooks import queue

#: Stripe's test-mode limits (docs.stripe.com/rate-limits): overall and per endpoint.
TEST_MODE_LIMIT = 25.0
READ_RATE = 20.0
#: Seconds between two comparisons of the local rows with Stripe, at least; and at least
#: this many times the last comparison's duration.
POLL_INTERVAL = 0.25
CHECK_SHARE = 9.0
JSON = dict[str, Any]


# -- counting Stripe requests -------------------------------------------------------------


class Counted:
    """WSGI middleware around the sandbox: counts reads (``GET /v1/…``) and 429 answers."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.reads = self.limited = 0

    def reset(self) -> None:
        """Zero the counters."""
        with self.lock:
            self.reads = self.limited = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO", "").startswith("/v1/") and environ["REQUEST_METHOD"] == "GET":
            with self.lock:
                self.reads += 1

        def counting(status: str, headers: Any, *args: Any) -> Any:
            if status.startswith("429"):
                with self.lock:
                    self.limited += 1
            return start_response(status, headers, *args)

        return self.app(environ, counting)


# -- the storm ---------------------------------------------------------------------------


def _subscribe(sandbox: Any, price_id: str, count: int) -> None:
    client = sandbox.client()
    for index in range(count):
        key = f"user:{index}"
        customer = client.v1.customers.create(params={"metadata": {"lattice_billable": key}})
        session = client.v1.checkout.sessions.create(
            params={
                "mode": "subscription",
                "customer": customer.id,
                "line_items": [{"price": price_id, "quantity": 1}],
                "success_url": "http://127.0.0.1/done",
                "client_reference_id": key,
            }
        )
        sandbox.complete_checkout(session.id)


def _stripe_state(sandbox: Any) -> tuple[dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]]]:
    """What every local row must end up as, read from the sandbox's store (no API call)."""
    store = sandbox.core.store
    with store.lock:
        subscriptions = {
            sub["id"]: (sub["status"], max(i["current_period_end"] for i in sub["items"]["data"]))
            for sub in store.all("subscription")
        }
        invoices = {inv["id"]: (inv["status"], inv["amount_paid"]) for inv in store.all("invoice")}
    return subscriptions, invoices


def _local_state(app: Flask) -> tuple[dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]]]:
    """The compared columns of every local row. It reads columns, not ORM rows: loading each
    row's ``raw`` JSON every quarter second would take CPU from the workers it measures."""
    with app.app_context():
        session = app.extensions["sqlalchemy"].session
        subscriptions = {
            stripe_id: (status, int(period_end.timestamp()) if period_end else None)
            for stripe_id, status, period_end in session.execute(
                sa.select(
                    Subscription.stripe_subscription_id,
                    Subscription.status,
                    Subscription.current_period_end,
                )
            )
        }
        invoices = {
            stripe_id: (status, amount_paid)
            for stripe_id, status, amount_paid in session.execute(
                sa.select(Invoice.stripe_invoice_id, Invoice.status, Invoice.amount_paid)
            )
        }
        session.remove()
    return subscriptions, invoices


def _post_all(app: Flask, events: Iterable[JSON], secret: str) -> None:
    client = app.test_client()
    for body, headers in _signed(list(events), secret):
        answer = client.post(WEBHOOK, data=body, headers=headers)
        if answer.status_code != 200:
            raise RuntimeError(f"the webhook route answered {answer.status_code}")


@dataclass
class Result:
    policy: str
    workers: int
    events: int
    converged: float | None  # seconds until every row matched Stripe
    drained: float | None  # seconds until no stored event was waiting
    reads: int
    limited: int
    failed: int
    checking: float  # seconds the bench spent comparing rows while the workers ran

    @property
    def seconds(self) -> float:
        """The storm's drain time (inf when it never drained)."""
        return self.drained if self.drained is not None else float("inf")


def _matches(app: Flask, expected: tuple[dict[str, Any], dict[str, Any]]) -> bool:
    subscriptions, invoices = _local_state(app)
    return subscriptions == expected[0] and all(
        invoices.get(key) == value for key, value in expected[1].items()
    )


def _pending(app: Flask) -> int:
    with app.app_context():
        session = app.extensions["sqlalchemy"].session
        count = session.scalar(
            sa.select(sa.func.count()).where(WebhookEvent.status.in_(("received", "failed")))
        )
        session.remove()
    return int(count or 0)


def _run(
    name: str,
    policy: str,
    workers: int,
    storm: list[JSON],
    expected: tuple[dict[str, Any], dict[str, Any]],
    limiter: Counted,
    base: dict[str, Any],
    workdir: Path,
    timeout: float,
    mode: str,
) -> Result:
    database = workdir / f"{name}.db"
    shutil.copy(workdir / "prestorm.db", database)
    Redis.from_url(base["LATTICE_REDIS_URL"]).flushdb()
    config = {
        **base,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
        "LATTICE_TRUST_WEBHOOK_PAYLOADS": policy,
    }
    env = {**os.environ, CONFIG_ENV: json.dumps(config), "FLASK_APP": f"{APP_MODULE}:create_app"}
    os.environ[CONFIG_ENV] = json.dumps(config)
    app = create_app()
    # The storm is received first (a backlog, as on the first of the month); the workers
    # start suspended and the clock starts when they are resumed.
    _post_all(app, storm, base["LATTICE_WEBHOOK_SECRETS"][0])
    queue.flush_enqueued(app)
    connection = Redis.from_url(base["LATTICE_REDIS_URL"])
    suspend(connection)
    command = [sys.executable, "-m", "flask", "lattice", "worker"]
    if mode == "processes":
        pool = [*command, "--processes", str(workers)]
        processes = [_process(pool, env, workdir / f"{name}-pool.log")]
    else:
        processes = [_process(command, env, workdir / f"{name}-{n}.log") for n in range(workers)]
    for process in processes:
        process.__enter__()
    try:
        while len(Worker.all(connection=connection)) < workers:
            time.sleep(0.1)
        time.sleep(2)  # each worker warms up before it looks at the queue
        limiter.reset()
        started = time.perf_counter()
        resume(connection)
        deadline = started + timeout
        converged = drained = None
        checking = 0.0  # seconds this process spent comparing rows, taken from the workers
        while time.perf_counter() < deadline and drained is None:
            now = time.perf_counter() - started
            if converged is None and _matches(app, expected):
                converged = now
            if converged is not None and _pending(app) == 0:
                drained = time.perf_counter() - started
            check = time.perf_counter() - started - now
            checking += check
            # On a 2-core machine a comparison of every row takes CPU from the workers:
            # keep the comparisons under a tenth of one core.
            time.sleep(max(POLL_INTERVAL, CHECK_SHARE * check))
    finally:
        for process in processes:
            process.__exit__(None, None, None)
        if logs := os.environ.get("STORM_LOGS"):
            for log in workdir.glob(f"{name}-*.log"):
                shutil.copy(log, Path(logs) / log.name)
    with app.app_context():
        session = app.extensions["sqlalchemy"].session
        failed = session.scalar(sa.select(sa.func.count()).where(WebhookEvent.status == "failed"))
    return Result(policy, workers, len(storm), converged, drained, limiter.reads,
                  limiter.limited, int(failed or 0), checking)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=2000)
    parser.add_argument("--baseline-workers", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument(
        "--worker-mode",
        choices=("processes", "forking"),
        default="processes",
        help="K workers as one `flask lattice worker --processes K` (default), or as K "
        "forking `flask lattice worker` processes",
    )
    options = parser.parse_args()

    from flask_lattice.sandbox import StripeSandbox

    with tempfile.TemporaryDirectory() as tmp, StripeSandbox() as sandbox:
        workdir = Path(tmp)
        limiter = Counted(sandbox._server.app)
        sandbox._server.app = limiter
        price_ids = ensure_prices(sandbox.client(), PRICES)
        print(f"subscribing {options.subscriptions} customers ...", flush=True)
        _subscribe(sandbox, price_ids["pro_monthly"], options.subscriptions)
        with _redis(options.redis_url, workdir) as redis_url:
            base = sandbox_config(
                sandbox,
                redis_url,
                LATTICE_STRIPE_READ_RATE=READ_RATE,
                LATTICE_JOB_RETRY_INTERVALS=[1, 2, 5, 10, 30],
            )
            _prestorm(sandbox, base, workdir)
            start = len(sandbox.events)
            sandbox.advance(days=32)
            storm = sandbox.events[start:]
            expected = _stripe_state(sandbox)
            print(f"storm: {len(storm)} events for {options.subscriptions} renewals", flush=True)
            sandbox.set_rate_limit(TEST_MODE_LIMIT)
            runs = [
                ("safe-1", "when-safe", 1),
                ("safe-4", "when-safe", 4),
                ("fetch", "always-fetch", options.baseline_workers),
            ]
            results = []
            for name, policy, workers in runs:
                print(f"running {policy} with {workers} worker(s) ...", flush=True)
                results.append(
                    _run(
                        name,
                        policy,
                        workers,
                        storm,
                        expected,
                        limiter,
                        base,
                        workdir,
                        options.timeout,
                        options.worker_mode,
                    )
                )
    _report(options.subscriptions, options.worker_mode, results)


def _prestorm(sandbox: Any, base: dict[str, Any], workdir: Path) -> None:
    """Project the signups into the database every run starts from."""
    from flask_lattice.webhooks.worker import build_worker

    config = {**base, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'prestorm.db'}"}
    os.environ[CONFIG_ENV] = json.dumps(config)
    app = create_app()
    with app.app_context():
        app.extensions["sqlalchemy"].create_all()
    _post_all(app, sandbox.events, sandbox.webhook_secret)
    build_worker(app, simple=True).work(burst=True, logging_level="WARNING")
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def _report(subscriptions: int, mode: str, results: list[Result]) -> None:
    print(f"\nrenewal storm: {subscriptions} subscriptions, sandbox at Stripe's test-mode limits "
          f"({TEST_MODE_LIMIT:g}/s overall and per endpoint), reads metered at {READ_RATE:g}/s, "
          f"workers: {mode}")  # fmt: skip
    print(f"{'policy':<14}{'workers':>8}{'events':>8}{'rows match s':>14}{'drained s':>11}"
          f"{'events/s':>10}{'reads/event':>13}{'429s':>7}{'failed':>8}{'checks s':>10}")  # fmt: skip
    for r in results:
        match = f"{r.converged:.1f}" if r.converged is not None else "NEVER"
        print(f"{r.policy:<14}{r.workers:>8}{r.events:>8}{match:>14}{r.seconds:>11.1f}"
              f"{r.events / r.seconds:>10.1f}{r.reads / r.events:>13.2f}{r.limited:>7}"
              f"{r.failed:>8}{r.checking:>10.1f}")  # fmt: skip
    baseline = results[-1]
    for r in results[:-1]:
        print(f"{r.policy} x{r.workers} / always-fetch x{baseline.workers}: drain time "
              f"{r.seconds / baseline.seconds:.2f}, reads per event "
              f"{r.reads / max(baseline.reads, 1):.2f}")  # fmt: skip
    safe4 = next(r for r in results if r.policy == "when-safe" and r.workers == 4)
    checks = {
        "every row converged": all(r.converged is not None for r in results),
        "0 failed events": all(r.failed == 0 for r in results),
        "<= 0.2 Stripe reads per event under when-safe": all(
            r.reads / r.events <= 0.2 for r in results if r.policy == "when-safe"
        ),
        "when-safe x4 drain <= 1/10 of always-fetch": safe4.seconds * 10 <= baseline.seconds,
    }
    for check, ok in checks.items():
        print(f"{'met' if ok else 'MISSED'}: {check}")


if __name__ == "__main__":
    main()
