"""``flask lattice …``: worker, drain, events, replay, sync and doctor."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup
from redis.exceptions import RedisError
from rq import Worker

from .errors import StripeAPIError
from .models import Base, EventStatus, WebhookEvent
from .state import get_state
from .webhooks import queue
from .webhooks.replay import replay as replay_events
from .webhooks.replay import select_for_replay

lattice_cli = AppGroup("lattice", help="Flask-Lattice billing commands.")

EVENT_STATUSES = [status.value for status in EventStatus]


@lattice_cli.command("worker")
@click.option("--burst", is_flag=True, help="Quit once the queue is empty.")
@click.option("--name", default=None, help="Worker name (unique among running workers).")
@click.option(
    "--job-monitoring-interval",
    default=10,
    show_default=True,
    type=click.IntRange(1, 600),
    help="Seconds between heartbeats of a running job; a job whose worker died is "
    "retried about 10 seconds after its last heartbeat.",
)
@click.option(
    "--simple",
    is_flag=True,
    help="Run jobs in this process instead of a forked work horse per job: several "
    "times faster, less isolated (see the workers documentation).",
)
def worker(burst: bool, name: str | None, job_monitoring_interval: int, simple: bool) -> None:
    """Run an RQ worker for the lattice queue (with RQ's scheduler, for retries)."""
    from .webhooks.worker import build_worker

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    built = build_worker(
        app, simple=simple, name=name, job_monitoring_interval=job_monitoring_interval
    )
    built.work(burst=burst, with_scheduler=True, logging_level="INFO")


@lattice_cli.command("drain")
def drain() -> None:
    """Enqueue stored webhook events that never reached the queue."""
    try:
        enqueued = queue.drain()
    except RedisError as error:
        raise click.ClickException(f"Redis is not reachable: {error}") from None
    click.echo(f"enqueued {len(enqueued)} stored event(s)")


@lattice_cli.command("events")
@click.option("--status", type=click.Choice(EVENT_STATUSES), default=None, help="Only this status.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
def events(status: str | None, limit: int) -> None:
    """List stored webhook events, newest first."""
    query = sa.select(WebhookEvent).order_by(WebhookEvent.received_at.desc()).limit(limit)
    if status:
        query = query.where(WebhookEvent.status == status)
    rows = get_state().db.session.scalars(query).all()
    for row in rows:
        line = (
            f"{row.id}  {row.type:<40} {row.status:<9} attempts={row.attempts}  "
            f"received={row.received_at:%Y-%m-%d %H:%M:%S}"
        )
        if row.last_error:
            line += f"  error={row.last_error.splitlines()[-1][:120]}"
        click.echo(line)
    if not rows:
        click.echo("no events")


@lattice_cli.command("replay")
@click.argument("event_id", required=False)
@click.option("--failed", is_flag=True, help="Replay every failed event.")
def replay(event_id: str | None, failed: bool) -> None:
    """Process a stored event again (EVENT_ID), or every failed one (--failed)."""
    if bool(event_id) == failed:
        raise click.UsageError("give an EVENT_ID or --failed, not both")
    ids = select_for_replay(event_id=event_id)
    if event_id and not ids:
        raise click.ClickException(f"no stored event {event_id}")
    try:
        replay_events(ids)
    except RedisError as error:
        raise click.ClickException(
            f"Redis is not reachable ({error}); the events are marked for processing and "
            "the next drain enqueues them"
        ) from None
    click.echo(f"enqueued {len(ids)} event(s) for processing")


@lattice_cli.command("sync")
@click.option("--customer", "customer_id", default=None, help="Only this customer (cus_…).")
def sync(customer_id: str | None) -> None:
    """Project every customer and subscription from Stripe; heals missed webhooks."""
    from .billing.sync import sync as run_sync

    try:
        report = run_sync(customer_id)
    except StripeAPIError as error:
        raise click.ClickException(f"Stripe: {error}") from None
    click.echo(
        f"synced {report.customers} customer(s) and {report.subscriptions} subscription(s); "
        f"{report.changed} changed"
    )


@lattice_cli.command("recover")
def recover() -> None:
    """Store the events Stripe could not deliver in the last 30 days; running it twice
    adds nothing."""
    from .webhooks.recover import recover_undelivered

    try:
        report = recover_undelivered()
    except StripeAPIError as error:
        raise click.ClickException(f"Stripe: {error}") from None
    click.echo(f"stored {len(report.stored)} of {report.listed} undelivered event(s)")


# -- doctor -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One doctor check: whether it passed, what was found, and what to do if not."""

    ok: bool
    detail: str
    fix: str = ""


def _check_stripe() -> Check:
    try:
        get_state().stripe.v1.customers.list({"limit": 1})
    except Exception as error:  # any failure means the key cannot be used
        return Check(
            False,
            f"a test call failed: {error}",
            "set LATTICE_STRIPE_SECRET_KEY (or STRIPE_SECRET_KEY) to a valid secret key",
        )
    mode = "live" if get_state().config.is_live else "test"
    return Check(True, f"the {mode}-mode key works")


def _check_webhook_secret() -> Check:
    secrets = get_state().config.webhook_secrets
    if not secrets:
        return Check(
            False,
            "no signing secret: every webhook delivery will be refused",
            "set LATTICE_WEBHOOK_SECRETS to the endpoint's whsec_… secret "
            "(Dashboard → Webhooks, or the output of `stripe listen`)",
        )
    return Check(True, f"{len(secrets)} signing secret(s) configured")


def _check_catalog() -> Check:
    from .billing.prices import check_catalog

    try:
        problems = check_catalog()
    except StripeAPIError as error:
        return Check(False, f"could not read prices: {error}", "fix the Stripe check first")
    if problems:
        return Check(
            False,
            "; ".join(str(problem) for problem in problems),
            "create or fix these prices in Stripe, or correct LATTICE_PLANS",
        )
    return Check(True, f"{len(get_state().config.plans.price_refs)} price(s) match LATTICE_PLANS")


def _check_redis() -> Check:
    try:
        queue.redis_connection().ping()
    except RedisError as error:
        return Check(
            False,
            f"cannot reach Redis: {error}",
            "start Redis or fix LATTICE_REDIS_URL; webhooks are still stored meanwhile",
        )
    return Check(True, "Redis answers")


def _check_tables() -> Check:
    engine = get_state().db.engine
    try:
        present = set(sa.inspect(engine).get_table_names())
    except sa.exc.SQLAlchemyError as error:
        return Check(False, f"cannot reach the database: {error}", "check the database URL")
    missing = sorted(set(Base.metadata.tables) - present)
    if missing:
        return Check(
            False,
            f"missing table(s): {', '.join(missing)}",
            "run db.create_all() or your migrations (flask db upgrade)",
        )
    return Check(True, f"{len(Base.metadata.tables)} lattice tables present")


def _check_workers() -> Check:
    try:
        found = Worker.all(queue=queue.queue())
    except RedisError as error:
        return Check(False, f"cannot list workers: {error}", "fix the Redis check first")
    if not found:
        return Check(
            False,
            "no worker listens on the lattice queue: events are stored but not processed",
            "run `flask lattice worker` (one or more, under a process supervisor)",
        )
    return Check(True, f"{len(found)} worker(s) alive")


CHECKS: tuple[tuple[str, Callable[[], Check]], ...] = (
    ("stripe key", _check_stripe),
    ("webhook secret", _check_webhook_secret),
    ("catalog prices", _check_catalog),
    ("redis", _check_redis),
    ("database tables", _check_tables),
    ("workers", _check_workers),
)


@lattice_cli.command("doctor")
def doctor() -> None:
    """Check the billing setup and say what is wrong and what to do."""
    failed = 0
    for name, run in CHECKS:
        result = run()
        click.echo(f"{'OK' if result.ok else 'FAIL':<5}{name}: {result.detail}")
        if not result.ok:
            failed += 1
            click.echo(f"     → {result.fix}")
    if failed:
        click.echo(f"{failed} check(s) failed")
        sys.exit(1)
    click.echo("all checks passed")
