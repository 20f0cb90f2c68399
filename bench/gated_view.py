"""Throughput of a ``@requires_plan`` view against the same view ungated, in one run.

Both views load the user through Flask-Login's session, read the user's 20 latest notes
and render them, as a typical SaaS page does; the gated one adds the plan check (one query
on ``lattice_subscriptions``). ``--bare`` drops the notes query, leaving a view that does
nothing but load the user. Within each round the two views take turns request by
request, each request timed on its own, so that the machine's speed, which drifts by as
much as half between rounds on a shared machine, hits both alike. Prints the ratio of
gated to ungated requests per second (the median of the per-round ratios; the target is
0.9) and what the check adds to each request.

    python -m bench.gated_view [--bare] [--requests 300] [--rounds 21] [--database-url URL]

It always measures a SQLite file; with ``--database-url`` (or ``LATTICE_TEST_DATABASE_URL``
set) it measures that database too, in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, render_template
from flask.testing import FlaskClient
from flask_login import LoginManager, UserMixin, current_user, login_required
from flask_sqlalchemy import SQLAlchemy
from jinja2 import DictLoader
from sqlalchemy.orm import Mapped, mapped_column

from flask_lattice import LatticeBilling, requires_plan
from flask_lattice.models import Subscription, utcnow

PLANS = [
    {"key": "free", "name": "Free", "rank": 0, "features": ["notes"]},
    {"key": "pro", "name": "Pro", "rank": 10, "prices": {"month": "pro_monthly"}},
]
PAGE = (
    "<h1>Notes of {{ user.email }}</h1>"
    "<ul>{% for note in notes %}<li>{{ note.title }}</li>{% endfor %}</ul>"
)
TARGET = 0.9


def build_app(database_url: str, *, bare: bool = False) -> Flask:
    """A host app with one signed-up user on an active Pro subscription; Stripe unreachable."""
    app = Flask("bench_gated_view")
    app.config.update(
        SECRET_KEY="bench",
        SQLALCHEMY_DATABASE_URI=database_url,
        LATTICE_STRIPE_SECRET_KEY="sk_test_bench",
        LATTICE_STRIPE_API_BASE="http://127.0.0.1:9",
        LATTICE_WEBHOOK_SECRETS="whsec_bench",
        LATTICE_PLANS=PLANS,
    )
    db = SQLAlchemy(app)

    class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(sa.String(320))

    class Note(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "notes"
        id: Mapped[int] = mapped_column(primary_key=True)
        user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
        title: Mapped[str] = mapped_column(sa.String(200))

    login_manager = LoginManager(app)
    login_manager.user_loader(lambda user_id: db.session.get(User, int(user_id)))
    LatticeBilling(app, db=db)

    app.jinja_loader = DictLoader({"reports.html": PAGE})

    latest_notes = sa.select(Note).where(Note.user_id == sa.bindparam("user_id"))
    latest_notes = latest_notes.order_by(Note.id.desc()).limit(20)

    def reports() -> str:
        notes: Any = [] if bare else db.session.scalars(latest_notes, {"user_id": current_user.id})
        return render_template("reports.html", user=current_user, notes=notes)

    app.add_url_rule("/ungated", "ungated", login_required(reports))
    app.add_url_rule("/gated", "gated", login_required(requires_plan("pro")(reports)))

    with app.app_context():
        db.drop_all()
        db.create_all()
        user = User(email="bench@example.com")
        db.session.add(user)
        db.session.flush()
        db.session.add_all(Note(user_id=user.id, title=f"Note {n}") for n in range(50))
        now = utcnow()
        db.session.add(
            Subscription(
                stripe_subscription_id="sub_bench",
                stripe_customer_id="cus_bench",
                billable_key=f"user:{user.id}",
                status="active",
                plan_key="pro",
                current_period_start=now - timedelta(days=3),
                current_period_end=now + timedelta(days=27),
                raw={"object": "subscription", "metadata": {f"k{n}": "v" * 40 for n in range(60)}},
            )
        )
        db.session.commit()
    return app


def signed_in_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "1"
        session["_fresh"] = True
    return client


def time_round(
    client: FlaskClient, requests: int, clock: Callable[[], float], *, gated_first: bool
) -> tuple[float, float]:
    """Seconds spent in ``requests`` ungated and ``requests`` gated requests, interleaved
    one by one (each pair in alternating order): ``(ungated, gated)``."""
    spent = {"/ungated": 0.0, "/gated": 0.0}
    for number in range(requests):
        pair = (
            ("/gated", "/ungated") if (number % 2 == 0) == gated_first else ("/ungated", "/gated")
        )
        for path in pair:
            started = clock()
            client.get(path)
            spent[path] += clock() - started
    return spent["/ungated"], spent["/gated"]


def run(database_url: str, requests: int, rounds: int, *, bare: bool) -> float:
    app = build_app(database_url, bare=bare)
    client = signed_in_client(app)
    for path in ("/ungated", "/gated"):
        response = client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}: {response.text[:200]}")
    # SQLite runs inside this process, so its CPU time is the whole cost and is not skewed by
    # other processes on the machine; a database server's work needs wall-clock time.
    on_sqlite = sa.make_url(database_url).get_backend_name() == "sqlite"
    clock = time.process_time if on_sqlite else time.perf_counter
    ungated: list[float] = []
    gated: list[float] = []
    for round_number in range(rounds):
        spent = time_round(client, requests, clock, gated_first=round_number % 2 == 1)
        ungated.append(requests / spent[0])
        gated.append(requests / spent[1])
    ratio = statistics.median(g / u for g, u in zip(gated, ungated, strict=True))
    view = "bare (loads the user only)" if bare else "loads the user and 20 notes"
    print(f"database     {sa.make_url(database_url).get_backend_name()}; view {view}")
    clock_name = "CPU time" if on_sqlite else "wall-clock time"
    print(
        f"ungated view {statistics.median(ungated):9.0f} req/s ({rounds} rounds of {requests}, {clock_name})"
    )
    print(f"gated view   {statistics.median(gated):9.0f} req/s")
    added = 1e6 / statistics.median(gated) - 1e6 / statistics.median(ungated)
    print(f"check cost   {added:9.0f} µs per request (from the medians above)")
    verdict = "meets" if ratio >= TARGET else "misses"
    print(f"ratio        {ratio:9.3f} (median of per-round ratios; {verdict} target >= {TARGET})")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bare", action="store_true", help="a view without its own query")
    parser.add_argument("--requests", type=int, default=300, help="requests per view per round")
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LATTICE_TEST_DATABASE_URL"),
        help="a scratch database server to measure as well as SQLite (its users and lattice "
        "tables are recreated); default: LATTICE_TEST_DATABASE_URL, if set",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        urls = [f"sqlite:///{Path(folder) / 'bench.db'}"]
        if args.database_url:
            urls.append(args.database_url)
        for url in urls:
            run(url, args.requests, args.rounds, bare=args.bare)
            print()


if __name__ == "__main__":
    main()
