"""MRR: the console's figure equals a hand computation; daily snapshots and movements.

Stripe's definition (https://docs.stripe.com/billing/subscriptions/analytics): MRR counts
active and past-due subscriptions, price × quantity normalized to a month; trialing,
canceled and other statuses add nothing.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import sqlalchemy as sa
from flask import Flask

from flask_lattice import revenue
from flask_lattice.models import MrrSnapshot, Subscription, utcnow
from tests.admin.conftest import Console
from tests.admin.helpers import PREFIX
from tests.helpers.support import host


def _item(amount: int, currency: str, interval: str, quantity: int = 1, count: int = 1) -> Any:
    return {
        "id": f"si_{amount}_{interval}_{quantity}",
        "quantity": quantity,
        "price": {
            "id": f"price_{amount}_{interval}",
            "currency": currency,
            "unit_amount": amount,
            "recurring": {"interval": interval, "interval_count": count},
        },
    }


SEEDED: dict[str, tuple[str, str, list[Any]]] = {
    # id: (status, currency, items)
    "sub_monthly_x3": ("active", "usd", [_item(1200, "usd", "month", 3)]),
    "sub_yearly_past_due": ("past_due", "usd", [_item(12000, "usd", "year")]),
    "sub_quarter_plus_seats": (
        "active",
        "usd",
        [_item(9000, "usd", "month", 1, 3), _item(100, "usd", "month", 5)],
    ),
    "sub_trialing": ("trialing", "usd", [_item(4900, "usd", "month")]),
    "sub_canceled": ("canceled", "usd", [_item(4900, "usd", "month")]),
    "sub_unpaid": ("unpaid", "usd", [_item(4900, "usd", "month")]),
    "sub_weekly_eur": ("active", "eur", [_item(500, "eur", "week", 2)]),
    "sub_jpy": ("active", "jpy", [_item(1000, "jpy", "month")]),
}
# By hand, in minor units per month:
#   usd: 1200×3 = 3600; 12000/12 = 1000; 9000/3 + 100×5 = 3500  → 8100 over 3 subscriptions
#   eur: 500×2 × 52/12 = 4333.33… → 4333 over 1
#   jpy: 1000 over 1 (zero-decimal: minor units are yen)
HAND_MRR = {"usd": (8100, 3), "eur": (4333, 1), "jpy": (1000, 1)}


def _seed(app: Flask) -> None:
    with app.app_context():
        session = host(app).db.session
        for sub_id, (status, currency, items) in SEEDED.items():
            raw = {
                "id": sub_id,
                "object": "subscription",
                "status": status,
                "currency": currency,
                "items": {"object": "list", "data": items, "has_more": False},
            }
            session.add(
                Subscription(
                    stripe_subscription_id=sub_id,
                    stripe_customer_id=f"cus_{sub_id}",
                    billable_key=f"user:{sub_id}",
                    status=status,
                    raw=raw,
                )
            )
        session.commit()


def _shown_mrr(console: Console) -> dict[str, int]:
    page = console.operator.get(f"{PREFIX}/revenue").get_data(as_text=True)
    rows = re.findall(r"<td>([A-Z]{3})</td><td data-minor-units=\"(\d+)\">", page)
    return {currency.lower(): int(amount) for currency, amount in rows}


def test_console_mrr_equals_the_hand_computation(console: Console) -> None:
    _seed(console.app)
    assert _shown_mrr(console) == {currency: mrr for currency, (mrr, _) in HAND_MRR.items()}
    with console.app.app_context():
        figures = revenue.current_mrr(host(console.app).db.session)
    assert {row.currency: (row.amount, row.subscriptions) for row in figures} == HAND_MRR


def test_a_changed_subscription_is_recomputed(console: Console) -> None:
    _seed(console.app)
    assert _shown_mrr(console)["usd"] == 8100
    with console.app.app_context():
        session = host(console.app).db.session
        row = session.scalar(
            sa.select(Subscription).where(Subscription.stripe_subscription_id == "sub_trialing")
        )
        assert row is not None
        row.status = "active"
        row.raw = {**row.raw, "status": "active"}
        session.commit()
    assert _shown_mrr(console)["usd"] == 8100 + 4900


def test_daily_snapshots_record_new_expansion_contraction_and_churn(console: Console) -> None:
    app = console.app
    _seed(app)
    with app.app_context():
        session = host(app).db.session
        assert revenue.take_daily_snapshot(session, date(2026, 3, 1))
        assert not revenue.take_daily_snapshot(session, date(2026, 3, 1))  # once a day

        def change(sub_id: str, **raw: Any) -> None:
            row = session.scalar(
                sa.select(Subscription).where(Subscription.stripe_subscription_id == sub_id)
            )
            assert row is not None
            row.raw = {**row.raw, **raw}
            row.status = row.raw["status"]
            row.updated_at = utcnow()
            session.commit()

        monthly = SEEDED["sub_monthly_x3"][2][0]
        change("sub_monthly_x3", items={"data": [{**monthly, "quantity": 1}]})  # -2400
        change("sub_yearly_past_due", status="canceled")  # churn 1000
        change("sub_trialing", status="active")  # new 4900
        change("sub_jpy", items={"data": [_item(1500, "jpy", "month")]})  # +500
        assert revenue.take_daily_snapshot(session, date(2026, 3, 2))
        rows = session.scalars(sa.select(MrrSnapshot).order_by(MrrSnapshot.day)).all()
        got = {
            (row.day.isoformat(), row.currency): (
                row.mrr,
                row.new,
                row.expansion,
                row.contraction,
                row.churned,
                row.subscriptions,
            )
            for row in rows
        }
    assert got == {
        ("2026-03-01", "usd"): (8100, 8100, 0, 0, 0, 3),
        ("2026-03-01", "eur"): (4333, 4333, 0, 0, 0, 1),
        ("2026-03-01", "jpy"): (1000, 1000, 0, 0, 0, 1),
        ("2026-03-02", "usd"): (8100 - 2400 - 1000 + 4900, 4900, 0, 2400, 1000, 3),
        ("2026-03-02", "eur"): (4333, 0, 0, 0, 0, 1),
        ("2026-03-02", "jpy"): (1500, 0, 500, 0, 0, 1),
    }


def test_the_revenue_page_draws_the_snapshots(console: Console) -> None:
    app = console.app
    _seed(app)
    with app.app_context():
        session = host(app).db.session
        today = utcnow().date()
        for back in (2, 1, 0):
            session.add(
                MrrSnapshot(
                    day=date.fromordinal(today.toordinal() - back),
                    currency="usd",
                    mrr=8000 + back * 100,
                )
            )
        session.commit()
    page = console.operator.get(f"{PREFIX}/revenue").get_data(as_text=True)
    assert page.count('<svg class="lattice-mrr-chart"') == 1
    (points,) = re.findall(r'<polyline[^>]*points="([^"]+)"', page)
    assert len(points.split()) == 3


def test_the_workers_maintenance_tick_records_todays_snapshot(console: Console) -> None:
    from flask_lattice.webhooks.worker import build_worker

    app = console.app
    _seed(app)
    worker = build_worker(app, simple=True)
    worker.snapshot_revenue()
    worker.snapshot_revenue()  # a second tick the same day adds nothing
    with app.app_context():
        rows = host(app).db.session.scalars(sa.select(MrrSnapshot)).all()
    assert len({row.day for row in rows}) == 1  # one UTC day
    assert {(row.currency, row.mrr) for row in rows} == {
        (currency, mrr) for currency, (mrr, _) in HAND_MRR.items()
    }
