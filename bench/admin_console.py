"""Server time of each operations-console page against the plain ``/billing/pricing`` page.

Seeds one database with ``--events`` webhook events (default 100,000) and
``--subscriptions`` subscriptions (default 10,000, each with an item, a customer and an
invoice), 90 days of MRR snapshots and the MRR positions the worker's tick keeps, then
times every console page and the pricing page in alternating rounds in the same run.
Prints each page's median server time and its ratio to the pricing page; exits 1 when
any page is slower than ``--limit`` (default 5) times the pricing page.

    python -m bench.admin_console [--events 100000] [--subscriptions 10000]
                                  [--rounds 15] [--database-url URL]

It measures a SQLite file unless ``--database-url`` (or ``LATTICE_TEST_DATABASE_URL``) is
given.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_login import LoginManager, UserMixin, current_user
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

from flask_lattice import LatticeBilling
from flask_lattice.models import (
    Customer,
    Invoice,
    MrrSnapshot,
    Price,
    Subscription,
    SubscriptionItem,
    WebhookEvent,
    utcnow,
)
from flask_lattice.revenue import refresh_positions

PLANS = [
    {"key": "free", "name": "Free", "rank": 0},
    {"key": "pro", "name": "Pro", "rank": 10, "prices": {"month": "pro_monthly"}},
    {"key": "team", "name": "Team", "rank": 20, "prices": {"month": "team_monthly"}},
]
STATUSES = ("active",) * 14 + ("trialing", "past_due", "canceled", "unpaid")
EVENT_TYPES = (
    "customer.subscription.updated",
    "invoice.paid",
    "invoice.payment_failed",
    "checkout.session.completed",
    "customer.updated",
)
BATCH = 5000


def build_app(database_url: str) -> Flask:
    """A host app whose user 1 is an operator; Stripe unreachable (prices are cached)."""
    app = Flask("bench_admin_console")
    app.config.update(
        SECRET_KEY="bench",
        SQLALCHEMY_DATABASE_URI=database_url,
        LATTICE_STRIPE_SECRET_KEY="sk_test_bench",
        LATTICE_STRIPE_API_BASE="http://127.0.0.1:9",
        LATTICE_STRIPE_MAX_NETWORK_RETRIES=0,
        LATTICE_WEBHOOK_SECRETS="whsec_bench",
        LATTICE_PLANS=PLANS,
        LATTICE_PRICE_CACHE_SECONDS=7 * 86400,
    )
    db = SQLAlchemy(app)

    class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(sa.String(320))

    login_manager = LoginManager(app)
    login_manager.user_loader(lambda user_id: db.session.get(User, int(user_id)))
    billing = LatticeBilling(app, db=db)
    billing.admin_required(lambda: bool(current_user.is_authenticated and current_user.id == 1))
    with app.app_context():
        db.drop_all()
        db.create_all()
        db.session.add(User(email="ops@example.com"))
        db.session.commit()
    return app


def _insert(connection: sa.Connection, model: Any, rows: list[dict[str, Any]]) -> None:
    table = cast(sa.Table, model.__table__)
    for start in range(0, len(rows), BATCH):
        connection.execute(sa.insert(table), rows[start : start + BATCH])


def seed(app: Flask, events: int, subscriptions: int) -> None:
    """Fill the lattice tables (bulk inserts), then let the MRR positions catch up."""
    now = utcnow()
    with app.app_context(), app.extensions["sqlalchemy"].engine.begin() as connection:
        _insert(
            connection,
            Price,
            [
                {
                    "stripe_price_id": f"price_{key}",
                    "lookup_key": f"{key}_monthly",
                    "product_name": key.title(),
                    "currency": "usd",
                    "unit_amount": amount,
                    "interval": "month",
                    "interval_count": 1,
                    "active": True,
                    "fetched_at": now,
                }
                for key, amount in (("pro", 1200), ("team", 4900))
            ],
        )
        customers, subs, items, invoices = [], [], [], []
        for n in range(subscriptions):
            status = STATUSES[n % len(STATUSES)]
            plan, amount = ("team", 4900) if n % 4 == 0 else ("pro", 1200)
            quantity = 1 + n % 3
            changed = now - timedelta(minutes=n * 43200 // max(1, subscriptions))
            customers.append(
                {
                    "billable_key": f"user:{n + 100}",
                    "stripe_customer_id": f"cus_{n:06d}",
                    "email": f"u{n}@example.com",
                    "livemode": False,
                    "deleted": False,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            subs.append(
                {
                    "id": n + 1,
                    "stripe_subscription_id": f"sub_{n:06d}",
                    "stripe_customer_id": f"cus_{n:06d}",
                    "billable_key": f"user:{n + 100}",
                    "status": status,
                    "plan_key": plan,
                    "price_ids": [f"price_{plan}"],
                    "quantity": quantity,
                    "current_period_start": now - timedelta(days=n % 30),
                    "current_period_end": now + timedelta(days=30 - n % 30),
                    "cancel_at_period_end": n % 50 == 0,
                    "livemode": False,
                    "trial_end": now + timedelta(days=n % 20) if status == "trialing" else None,
                    # Rows were last written over the past month, as webhooks came in.
                    "created_at": now - timedelta(days=60),
                    "updated_at": changed,
                    "raw": {
                        "id": f"sub_{n:06d}",
                        "object": "subscription",
                        "status": status,
                        "currency": "usd",
                        "items": {
                            "data": [
                                {
                                    "id": f"si_{n:06d}",
                                    "quantity": quantity,
                                    "price": {
                                        "id": f"price_{plan}",
                                        "currency": "usd",
                                        "unit_amount": amount,
                                        "recurring": {"interval": "month", "interval_count": 1},
                                    },
                                }
                            ]
                        },
                    },
                }
            )
            items.append(
                {
                    "stripe_item_id": f"si_{n:06d}",
                    "subscription_id": n + 1,
                    "price_id": f"price_{plan}",
                    "lookup_key": f"{plan}_monthly",
                    "quantity": quantity,
                }
            )
            invoices.append(
                {
                    "stripe_invoice_id": f"in_{n:06d}",
                    "stripe_customer_id": f"cus_{n:06d}",
                    "stripe_subscription_id": f"sub_{n:06d}",
                    "billable_key": f"user:{n + 100}",
                    "status": "paid",
                    "currency": "usd",
                    "amount_due": amount * quantity,
                    "amount_paid": amount * quantity,
                    "total": amount * quantity,
                    "stripe_created": now - timedelta(days=n % 30),
                    "created_at": now,
                    "updated_at": now,
                }
            )
        _insert(connection, Customer, customers)
        _insert(connection, Subscription, subs)
        _insert(connection, SubscriptionItem, items)
        _insert(connection, Invoice, invoices)
        rows = []
        for n in range(events):
            sub = f"sub_{n % max(1, subscriptions):06d}"
            event_id = f"evt_{n:08d}"
            failed = n % 200 == 0
            rows.append(
                {
                    "id": event_id,
                    "type": EVENT_TYPES[n % len(EVENT_TYPES)],
                    "created": now - timedelta(seconds=30 * (events - n)),
                    "received_at": now - timedelta(seconds=30 * (events - n)),
                    "object_id": sub,
                    "livemode": False,
                    "api_version": "2026-10-28.endive",
                    "payload": json.dumps(
                        {
                            "id": event_id,
                            "object": "event",
                            "data": {"object": {"id": sub, "object": "subscription"}},
                        }
                    ),
                    "status": "failed" if failed else "processed",
                    "attempts": 4 if failed else 1,
                    "last_error": "RuntimeError: bench" if failed else None,
                    "processed_at": None if failed else now,
                }
            )
        _insert(connection, WebhookEvent, rows)
        _insert(
            connection,
            MrrSnapshot,
            [
                {
                    "day": (now - timedelta(days=back)).date(),
                    "currency": "usd",
                    "mrr": 1_000_000 + back * 1000,
                    "new": 1000,
                    "expansion": 100,
                    "contraction": 50,
                    "churned": 200,
                    "subscriptions": subscriptions,
                    "taken_at": now,
                }
                for back in range(90)
            ],
        )
    with app.app_context():
        refresh_positions(app.extensions["lattice"].db.session)
        engine = app.extensions["sqlalchemy"].engine
        if engine.dialect.name == "postgresql":  # what autovacuum does on a live database
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(sa.text("VACUUM ANALYZE"))


def pages(subscriptions: int) -> dict[str, str]:
    """The console pages to time, by name."""
    some_sub = f"sub_{subscriptions // 2:06d}"
    return {
        "overview": "/billing/admin/",
        "inbox": "/billing/admin/events",
        "inbox failed": "/billing/admin/events?status=failed",
        "inbox by type": "/billing/admin/events?type=invoice.paid",
        "inbox by object": f"/billing/admin/events?object={some_sub}",
        "inbox by date": "/billing/admin/events?since=2000-01-01&until=2100-01-01",
        "event": "/billing/admin/events/evt_00000200",
        "timeline": f"/billing/admin/objects/{some_sub}",
        "failed and stuck": "/billing/admin/failed",
        "subscriptions": "/billing/admin/subscriptions",
        "subscriptions filtered": "/billing/admin/subscriptions?status=active&plan=pro",
        "billable": f"/billing/admin/billables/user:{subscriptions // 2 + 100}",
        "revenue": "/billing/admin/revenue",
        "audit": "/billing/admin/audit",
    }


def timed(client: FlaskClient, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    return elapsed


def measure(database_url: str, events: int, subscriptions: int, rounds: int, limit: float) -> bool:
    app = build_app(database_url)
    started = time.perf_counter()
    seed(app, events, subscriptions)
    print(
        f"seeded {events} events and {subscriptions} subscriptions "
        f"in {time.perf_counter() - started:.1f}s ({sa.make_url(database_url).get_dialect().name})"
    )
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "1"
        session["_fresh"] = True
    targets = {"pricing": "/billing/pricing", **pages(subscriptions)}
    samples: dict[str, list[float]] = {name: [] for name in targets}
    for url in targets.values():
        timed(client, url)  # warm caches and compiled statements
    for _ in range(rounds):
        for name, url in targets.items():
            samples[name].append(timed(client, url))
    base = statistics.median(samples["pricing"])
    ok = True
    print(f"{'page':<24}{'median ms':>10}{'× pricing':>11}")
    for name in targets:
        median = statistics.median(samples[name])
        ratio = median / base
        flag = "" if ratio <= limit else f"  over {limit:g}×"
        ok = ok and ratio <= limit
        print(f"{name:<24}{median * 1000:>10.2f}{ratio:>11.2f}{flag}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--limit", type=float, default=5.0)
    parser.add_argument("--database-url", default=os.environ.get("LATTICE_TEST_DATABASE_URL"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        ok = measure(url, args.events, args.subscriptions, args.rounds, args.limit)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
