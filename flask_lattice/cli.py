"""``flask lattice …``: worker, drain, events, replay, sync, doctor, catalog push and sandbox."""

from __future__ import annotations

import functools
import os
import re
import secrets
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup
from redis.exceptions import RedisError
from rq import Worker

from .billing import catalog_push
from .billing.catalog_push import CatalogChange
from .errors import StripeAPIError
from .models import Base, EventStatus, WebhookEvent, utcnow
from .state import get_state
from .stripe_gateway import API_VERSION
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
    help="Seconds between heartbeats of a running job in a forking worker; a job whose "
    "forking worker died is retried about 10 seconds after its last heartbeat (with "
    "--simple or --processes, once the job's timeout plus 60 s has passed).",
)
@click.option(
    "--simple",
    is_flag=True,
    help="Run jobs in this process instead of a forked work horse per job: several "
    "times faster, less isolated (see the workers documentation).",
)
@click.option(
    "--processes",
    type=click.IntRange(1, 256),
    default=None,
    help="Run this many worker processes under one supervisor (RQ's worker pool). Each "
    "runs its jobs in its own process, one after another (as with --simple, which it "
    "implies); the supervisor replaces a process that dies. With --burst, exits 1 if a "
    "worker process ended with an error.",
)
def worker(
    burst: bool,
    name: str | None,
    job_monitoring_interval: int,
    simple: bool,
    processes: int | None,
) -> None:
    """Run an RQ worker for the lattice queue (with RQ's scheduler, for retries)."""
    from .webhooks.worker import build_worker, run_pool

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if processes is not None and name is not None:
        raise click.UsageError("--name names one worker; --processes names its workers itself")
    try:
        queue.redis_connection(app).ping()
    except RedisError as error:
        raise click.ClickException(
            f"Redis is not reachable ({queue.redis_location(app)}): {error}"
        ) from None
    if processes is not None:
        failed = run_pool(
            app, processes, burst=burst, job_monitoring_interval=job_monitoring_interval
        )
        if burst and failed:
            raise click.ClickException(
                f"{failed} worker process(es) ended with an error (see the log above); "
                "their jobs are retried once their heartbeats expire"
            )
        return
    built = build_worker(
        app, simple=simple, name=name, job_monitoring_interval=job_monitoring_interval
    )
    built.work(burst=burst, with_scheduler=True, logging_level="INFO")


@lattice_cli.command("drain")
def drain() -> None:
    """Enqueue stored webhook events that never reached the queue."""
    try:
        report = queue.drain()
    except RedisError as error:
        raise click.ClickException(f"Redis is not reachable: {error}") from None
    click.echo(f"enqueued {len(report.enqueued)} stored event(s)")
    for event_id, reason in report.skipped.items():
        click.echo(f"skipped {event_id}: {reason}")
    if report.skipped:
        raise click.ClickException(
            f"{len(report.skipped)} event(s) could not be enqueued; the others were. "
            "The next drain tries them again."
        )


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
@click.argument("event_ids", metavar="[EVENT_ID]...", nargs=-1)
@click.option("--failed", is_flag=True, help="Replay every failed event.")
def replay(event_ids: tuple[str, ...], failed: bool) -> None:
    """Process stored events again, now, in this process, and say what each did.

    Give one or more EVENT_IDs, or --failed for every failed event. Each event is
    reported as applied (state written), skipped (stale: newer state is already
    applied), ignored (nothing handles its type) or failed (with the error). Attempts
    keep counting across replays. Exits 1 when an event failed or is not stored.
    """
    if event_ids and failed:
        raise click.UsageError("give EVENT_IDs or --failed, not both")
    if not event_ids and not failed:
        raise click.UsageError(
            "give the EVENT_ID(s) to replay (see `flask lattice events`), "
            "or --failed to replay every failed event"
        )
    ids = list(event_ids)
    if failed:
        ids = select_for_replay()
        if not ids:
            click.echo("no failed events")
            return
    counts: dict[str, int] = {}
    for result in replay_events(ids):
        event_id = result.event_id
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
        if result.outcome == "missing":
            click.echo(f"{event_id}  not stored (see `flask lattice events`)")
            continue
        line = f"{event_id}  {result.event_type:<40} {result.outcome:<8} attempts={result.attempts}"
        if result.error:
            line += f"  error={result.error.splitlines()[-1][:200]}"
        click.echo(line)
    click.echo(", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items())))
    if counts.get("failed") or counts.get("missing"):
        sys.exit(1)


@lattice_cli.command("sync")
@click.option("--customer", "customer_id", default=None, help="Only this customer (cus_…).")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="Only customers and subscriptions created on or after this UTC date or time.",
)
def sync(customer_id: str | None, since: datetime | None) -> None:
    """Project every customer and subscription from Stripe; heals missed webhooks.

    Pages through Stripe's lists as it goes (100 objects a page), projecting each
    object in its own short transaction, with a progress bar on a terminal.
    """
    from .billing.sync import SyncReport, sync_objects

    if customer_id and since:
        raise click.UsageError("--customer and --since cannot be combined")
    report = SyncReport()
    created_since = since.replace(tzinfo=UTC) if since else None
    try:
        with click.progressbar(
            sync_objects(report, customer_id, since=created_since),
            label="syncing from Stripe",
            show_pos=True,
            item_show_func=lambda kind: kind,
        ) as progress:
            for _ in progress:
                pass
    except StripeAPIError as error:
        raise click.ClickException(
            f"Stripe: {error} (after {report.customers} customer(s) and "
            f"{report.subscriptions} subscription(s); run it again to continue)"
        ) from None
    click.echo(
        f"synced {report.customers} customer(s) and {report.subscriptions} subscription(s); "
        f"{report.changed} changed"
    )
    if report.vanished:
        click.echo(
            f"{report.vanished} stored customer(s) no longer exist in Stripe: marked deleted, "
            "their subscriptions ended"
        )


#: Stripe retries a delivery for up to three days; pruning younger events could store
#: a late retry again as new.
PRUNE_MINIMUM = timedelta(days=3)
_DURATION = re.compile(r"(\d+)([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def _parse_age(value: str) -> timedelta:
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise click.BadParameter(f"{value!r} is not an age such as 90d, 36h or 30m")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


@lattice_cli.command("prune")
@click.option(
    "--older-than",
    "older_than",
    required=True,
    help="Age of the events to delete, such as 90d, 36h or 4320m (at least 3 days).",
)
@click.option("--dry-run", is_flag=True, help="Count them; delete nothing.")
def prune(older_than: str, dry_run: bool) -> None:
    """Delete processed (and ignored) webhook events processed longer ago than
    --older-than. Failed and waiting events are always kept."""
    age = _parse_age(older_than)
    if age < PRUNE_MINIMUM:
        raise click.BadParameter(
            "must be at least 3d: Stripe retries deliveries for up to three days",
            param_hint="--older-than",
        )
    done = (EventStatus.PROCESSED, EventStatus.IGNORED)
    condition = sa.and_(WebhookEvent.status.in_(done), WebhookEvent.processed_at < utcnow() - age)
    session = get_state().db.session
    count = session.scalar(sa.select(sa.func.count()).where(condition)) or 0
    if dry_run:
        click.echo(f"would delete {count} event(s) processed more than {older_than} ago")
        return
    session.execute(sa.delete(WebhookEvent).where(condition))
    session.commit()
    click.echo(f"deleted {count} event(s) processed more than {older_than} ago")


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


def _fails_on(
    errors: type[Exception] | tuple[type[Exception], ...], what: str, fix: str
) -> Callable[[Callable[[], Check]], Callable[[], Check]]:
    """Decorate a check so that ``errors`` raised in it give a failed check:
    ``"<what>: <the error's first line>"`` with ``fix`` (a database error also rolls the
    session back, so the next check can read)."""

    def decorate(check: Callable[[], Check]) -> Callable[[], Check]:
        @functools.wraps(check)
        def run() -> Check:
            try:
                return check()
            except errors as error:
                if isinstance(error, sa.exc.SQLAlchemyError):
                    get_state().db.session.rollback()
                first_line = (str(error).splitlines() or [type(error).__name__])[0]
                return Check(False, f"{what}: {first_line}", fix)

        return run

    return decorate


_AFTER_STRIPE = "fix the Stripe check first"
_AFTER_REDIS = "fix the Redis check first"
_reading_tables = _fails_on(
    sa.exc.SQLAlchemyError, "cannot read the tables", "fix the tables check first"
)


# Any failure means the key cannot be used.
@_fails_on(
    Exception,
    "a test call failed",
    "set LATTICE_STRIPE_SECRET_KEY (or STRIPE_SECRET_KEY) to a valid secret key",
)
def _check_stripe() -> Check:
    get_state().stripe.check_key()
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


@_fails_on(StripeAPIError, "could not read prices", _AFTER_STRIPE)
def _check_catalog() -> Check:
    from .billing.prices import check_catalog

    problems = check_catalog()
    if problems:
        return Check(
            False,
            "; ".join(str(problem) for problem in problems),
            "create or fix these prices in Stripe, or correct LATTICE_PLANS",
        )
    return Check(True, f"{len(get_state().config.plans.price_refs)} price(s) match LATTICE_PLANS")


@_fails_on(
    RedisError,
    "cannot reach Redis",
    "start Redis or fix LATTICE_REDIS_URL; webhooks are still stored meanwhile",
)
def _check_redis() -> Check:
    queue.redis_connection().ping()
    return Check(True, f"Redis answers ({queue.redis_location()})")


@_fails_on(sa.exc.SQLAlchemyError, "cannot reach the database", "check the database URL")
def _check_tables() -> Check:
    present = set(sa.inspect(get_state().db.engine).get_table_names())
    missing = sorted(set(Base.metadata.tables) - present)
    if missing:
        return Check(
            False,
            f"missing table(s): {', '.join(missing)}",
            "run db.create_all() or your migrations (flask db upgrade)",
        )
    return Check(True, f"{len(Base.metadata.tables)} lattice tables present")


@_fails_on(RedisError, "cannot list workers", _AFTER_REDIS)
def _check_workers() -> Check:
    found = Worker.all(queue=queue.queue())
    if not found:
        return Check(
            False,
            "no worker listens on the lattice queue: events are stored but not processed",
            "run `flask lattice worker` (one or more, under a process supervisor)",
        )
    # A worker killed outright stays registered until its key expires (minutes); the
    # heartbeat check below tells live ones apart.
    return Check(True, f"{len(found)} worker(s) registered")


@_fails_on(RedisError, "cannot read heartbeats", _AFTER_REDIS)
def _check_worker_heartbeat() -> Check:
    from .webhooks.worker import HEARTBEAT_GRACE, live_workers

    alive = live_workers()
    if not alive:
        limit = get_state().config.drain_interval + HEARTBEAT_GRACE
        return Check(
            False,
            f"no worker has sent a heartbeat in the last {limit:.0f} s",
            "start `flask lattice worker`, or restart the stuck one",
        )
    return Check(True, f"{len(alive)} worker(s) sent a recent heartbeat")


def _check_stuck_events() -> Check:
    from .webhooks.worker import DRAIN_MIN_AGE

    interval = get_state().config.drain_interval
    cutoff = utcnow() - timedelta(seconds=interval + DRAIN_MIN_AGE)
    stuck = (
        sa.select(WebhookEvent.id)
        .where(WebhookEvent.status == EventStatus.RECEIVED, WebhookEvent.received_at < cutoff)
        .order_by(WebhookEvent.received_at)
    )
    session = get_state().db.session
    count = session.scalar(sa.select(sa.func.count()).select_from(stuck.subquery())) or 0
    if count:
        oldest = session.scalar(stuck.limit(1))
        return Check(
            False,
            f"{count} event(s) still 'received' after more than a drain interval "
            f"({interval} s); oldest {oldest}",
            "start a worker (`flask lattice worker`) if none runs; an event whose worker "
            "died is retried once that job's heartbeat expires (up to the job timeout plus "
            "60 s with --simple or --processes); `flask lattice events --status received` "
            "lists them",
        )
    return Check(True, "no event waits longer than a drain interval")


def _check_duplicate_subscriptions() -> Check:
    from .access.policy import LIVE_STATUSES
    from .models import Subscription

    duplicated = (
        get_state()
        .db.session.execute(
            sa.select(Subscription.billable_key, sa.func.count())
            .where(Subscription.status.in_(LIVE_STATUSES), Subscription.billable_key.is_not(None))
            .group_by(Subscription.billable_key)
            .having(sa.func.count() > 1)
        )
        .all()
    )
    if duplicated:
        shown = ", ".join(f"{key} ({count})" for key, count in duplicated[:5])
        return Check(
            False,
            f"{len(duplicated)} billable(s) with more than one live subscription: {shown}",
            "cancel the extra subscriptions in Stripe (each is being charged)",
        )
    return Check(True, "no billable has more than one live subscription")


@_fails_on(StripeAPIError, "could not list customers", _AFTER_STRIPE)
@_fails_on(sa.exc.SQLAlchemyError, "cannot read stored customers", "fix the tables first")
def _check_vanished_customers() -> Check:
    from .billing.sync import missing_customer_ids

    missing = missing_customer_ids()
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        return Check(
            False,
            f"{len(missing)} stored customer(s) do not exist in Stripe ({shown}): deleted, "
            "or created with other keys",
            "run `flask lattice sync` to mark them deleted and end their subscriptions; "
            "checkout replaces them with new customers",
        )
    return Check(True, "every stored customer exists in Stripe")


@_fails_on(StripeAPIError, "could not list webhook endpoints", _AFTER_STRIPE)
def _check_webhook_endpoints() -> Check:
    """The Stripe endpoints that post to this app: pinned API version, every needed type."""
    from .webhooks.projection import handled_types

    state = get_state()
    route = f"{state.config.url_prefix}/webhook"
    endpoints = state.stripe.list_webhook_endpoints()
    ours = [item for item in endpoints if urlsplit(item["url"] or "").path.endswith(route)]
    if not ours:
        return Check(
            True,
            f"no webhook endpoint's URL ends with {route} (fine with `stripe listen`)",
        )
    needed = handled_types()
    lines: list[str] = []
    problems: list[str] = []
    for item in ours:
        enabled = list(item["enabled_events"] or [])
        lines.append(
            f"{item['id']} {item['url']} api_version={item['api_version']} "
            f"enabled_events={','.join(enabled)}"
        )
        if item["api_version"] != API_VERSION:
            version = item["api_version"] or "the account's default"
            problems.append(
                f"{item['id']} renders events in {version} API version, not {API_VERSION}"
            )
        missing = sorted(needed - set(enabled)) if "*" not in enabled else []
        if missing:
            problems.append(f"{item['id']} does not send {', '.join(missing)}")
        if item["status"] != "enabled":
            problems.append(f"{item['id']} is {item['status']}")
    listing = "".join(f"\n       {line}" for line in lines)
    if problems:
        return Check(
            False,
            "; ".join(problems) + listing,
            f"an endpoint's API version is fixed when it is created: create one with "
            f"api_version={API_VERSION} and the missing event types (or '*'), put its "
            "signing secret in LATTICE_WEBHOOK_SECRETS next to the old one, then delete "
            "the old endpoint",
        )
    return Check(
        True, f"{len(ours)} endpoint(s) on {API_VERSION} with every needed event" + listing
    )


@_fails_on(RedisError, "cannot read the rejection counters", _AFTER_REDIS)
def _check_rejections() -> Check:
    """Deliveries refused within the last hour, by reason; signature failures fail."""
    from .webhooks import rejections
    from .webhooks.envelope import Reason

    counts = rejections.recent()
    if not counts:
        return Check(True, "no delivery refused within the last hour")
    summary = ", ".join(f"{reason}: {count}" for reason, count in counts.items())
    if Reason.SIGNATURE in counts:
        return Check(
            False,
            f"{counts[Reason.SIGNATURE]} delivery(ies) refused because no signing secret "
            f"matched, the latest within the last hour (refused by reason: {summary})",
            "check LATTICE_WEBHOOK_SECRETS: it must hold the signing secret (whsec_…) of "
            "every endpoint that posts here (Dashboard → Webhooks → the endpoint → Signing "
            "secret, or the output of `stripe listen`)",
        )
    return Check(True, f"refused within the last hour, by reason: {summary}")


CHECKS: tuple[tuple[str, Callable[[], Check]], ...] = (
    ("stripe key", _check_stripe),
    ("webhook secret", _check_webhook_secret),
    ("webhook endpoints", _check_webhook_endpoints),
    ("webhook refusals", _check_rejections),
    ("catalog prices", _check_catalog),
    ("redis", _check_redis),
    ("database tables", _check_tables),
    ("workers", _check_workers),
    ("worker heartbeat", _check_worker_heartbeat),
    ("stuck events", _reading_tables(_check_stuck_events)),
    ("stored customers", _check_vanished_customers),
    ("one live subscription per billable", _reading_tables(_check_duplicate_subscriptions)),
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


# -- catalog and sandbox ----------------------------------------------------------------

catalog_cli = AppGroup("catalog", help="Products and prices in Stripe, from LATTICE_PLANS.")
lattice_cli.add_command(catalog_cli)


def _echo_catalog_changes(changes: list[CatalogChange], *, dry_run: bool) -> None:
    for change in changes:
        click.echo(f"{'would ' if dry_run else ''}{change}")
    unmanaged = catalog_push.unmanaged_prices(get_state().config.plans)
    if unmanaged:
        click.echo(f"not managed (no amount in LATTICE_PLANS): {', '.join(unmanaged)}", err=True)
    if not changes:
        click.echo("the catalog is up to date in Stripe")
    elif dry_run:
        click.echo(f"{len(changes)} change(s); run without --dry-run to make them")
    else:
        click.echo(f"{len(changes)} change(s) made")


@catalog_cli.command("push")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@click.option("--live", is_flag=True, help="Allow pushing with a live-mode key.")
def catalog_push_command(dry_run: bool, live: bool) -> None:
    """Create or update products and prices from LATTICE_PLANS, by lookup key.

    Prices need an amount in the catalog to be managed. Idempotent: a second push
    changes nothing. A changed amount makes a new price that takes over the lookup key;
    the old price is archived and existing subscriptions keep it.
    """
    state = get_state()
    if state.config.is_live and not live:
        raise click.UsageError(
            "LATTICE_STRIPE_SECRET_KEY is a live-mode key; pass --live to push to live mode"
        )
    try:
        changes = catalog_push.push(state.stripe, state.config.plans, dry_run=dry_run)
    except StripeAPIError as error:
        raise click.ClickException(f"Stripe: {error}") from None
    _echo_catalog_changes(changes, dry_run=dry_run)


def _stable_webhook_secret(instance_path: str) -> str:
    """The sandbox's signing secret kept in the instance folder (made on first use)."""
    path = os.path.join(instance_path, "lattice-sandbox-secret")
    if not os.path.exists(path):
        os.makedirs(instance_path, exist_ok=True)
        with open(path, "w") as handle:
            handle.write("whsec_" + secrets.token_hex(24))
    with open(path) as handle:
        return handle.read().strip()


@lattice_cli.command("sandbox")
@click.option("--port", default=12111, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--app-url",
    default="http://127.0.0.1:5000",
    show_default=True,
    help="Where this app serves; events go to its webhook route.",
)
@click.option(
    "--webhook-secret",
    default=None,
    help="whsec_… to sign events with (default: one kept in the instance folder).",
)
def sandbox_command(port: int, app_url: str, webhook_secret: str | None) -> None:
    """Run the local Stripe sandbox for this app until Ctrl-C.

    It forwards every event to this app's webhook route, signed with a secret that stays
    the same between runs, keeps its state in the instance folder, pushes the catalog,
    and prints the three settings that point the app at it.
    """
    from .sandbox import StripeSandbox
    from .stripe_gateway import StripeGateway

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    state = get_state()
    forward_to = f"{app_url.rstrip('/')}{state.config.url_prefix}/webhook"
    server = StripeSandbox(
        port,
        forward_to=forward_to,
        persist_path=os.path.join(app.instance_path, "lattice-sandbox.sqlite3"),
        webhook_secret=webhook_secret or _stable_webhook_secret(app.instance_path),
    )
    with server:
        changes = catalog_push.push(StripeGateway(server.client()), state.config.plans)
        _echo_catalog_changes(changes, dry_run=False)
        click.echo(
            f"\nStripe sandbox on {server.url}, forwarding events to {forward_to}\n"
            "Point the app at it (then restart the app and its worker):\n\n"
            f"  export LATTICE_STRIPE_SECRET_KEY={server.api_key}\n"
            f"  export LATTICE_STRIPE_API_BASE={server.url}\n"
            f"  export LATTICE_WEBHOOK_SECRETS={server.webhook_secret}\n\n"
            "Press Ctrl-C to stop."
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            click.echo("\nstopped")
