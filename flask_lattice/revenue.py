"""Monthly recurring revenue (MRR) from the projected subscriptions, and its daily snapshot.

Follows Stripe's definition: a subscription counts while its status is ``active`` or
``past_due`` (not ``trialing``, ``paused``, ``unpaid``, ``canceled`` or ``incomplete``).
Its MRR is the sum over its items of ``price.unit_amount × quantity``, normalized to one
month (a year is 12 months, a week 12/52 of one, a day 12/365) and divided by the price's
``recurring.interval_count``, in minor units of the price's currency, rounded to the
nearest unit per subscription. Prices come from the subscription as Stripe last confirmed
it (the projected ``raw`` object's ``items.data[].price``). Discounts and taxes are left
out.

Each subscription's MRR is cached in ``lattice_mrr_positions`` and recomputed when its
row changes (:func:`refresh_positions`). Once per UTC day the worker's maintenance tick
records ``lattice_mrr_snapshots`` (:func:`take_daily_snapshot`): the MRR per currency and
the new, expansion, contraction and churned MRR since the previous snapshot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from .models import MrrPosition, MrrSnapshot, Subscription, insert_ignoring_conflicts, utcnow

#: Statuses whose subscriptions count towards MRR (Stripe's definition).
MRR_STATUSES = ("active", "past_due")
#: Months per billing interval.
_MONTHS = {
    "month": Decimal(1),
    "year": Decimal(12),
    "week": Decimal(12) / Decimal(52),
    "day": Decimal(12) / Decimal(365),
}
_POSITIONS = cast(sa.Table, MrrPosition.__table__)
#: How far before the newest computation a page's refresh looks for changed rows: longer
#: than any transaction that could still commit an older ``updated_at``.
RECENT = timedelta(hours=1)
_BATCH = 500


def subscription_mrr(raw: Mapping[str, Any]) -> tuple[str, int]:
    """``(currency, MRR in minor units per month)`` of one Stripe subscription object.

    0 when its ``status`` does not count; items without a recurring price add nothing.
    """
    items = (raw.get("items") or {}).get("data") or []
    currency = str(raw.get("currency") or "")
    total = Decimal(0)
    for item in items:
        price = item.get("price") or {}
        recurring = price.get("recurring") or {}
        months = _MONTHS.get(str(recurring.get("interval")))
        amount = price.get("unit_amount_decimal") or price.get("unit_amount")
        if months is None or amount is None:
            continue
        currency = currency or str(price.get("currency") or "")
        count = Decimal(int(recurring.get("interval_count") or 1))
        total += Decimal(str(amount)) * int(item.get("quantity") or 1) / (months * count)
    if raw.get("status") not in MRR_STATUSES:
        return currency.lower(), 0
    return currency.lower(), int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def refresh_positions(session: Session | scoped_session[Any], *, recent_only: bool = False) -> int:
    """Recompute the MRR of every subscription whose row changed since its last
    computation; commits, and returns how many were recomputed.

    ``recent_only`` looks only at rows updated within :data:`RECENT` of the newest
    computation (an index range instead of a scan, for pages); the worker's tick looks
    at every row.
    """
    subs = cast(sa.Table, Subscription.__table__)
    query = (
        sa.select(subs.c.stripe_subscription_id, subs.c.raw, subs.c.updated_at)
        .select_from(
            subs.outerjoin(
                _POSITIONS,
                _POSITIONS.c.stripe_subscription_id == subs.c.stripe_subscription_id,
            )
        )
        .where(
            sa.or_(
                _POSITIONS.c.stripe_subscription_id.is_(None),
                _POSITIONS.c.source_updated_at < subs.c.updated_at,
            )
        )
    )
    if recent_only:
        newest = session.scalar(sa.select(sa.func.max(_POSITIONS.c.source_updated_at)))
        if newest is not None:
            query = query.where(subs.c.updated_at > newest - RECENT)
    rows = []
    for sub_id, raw, updated_at in session.execute(query):
        currency, mrr = subscription_mrr(raw or {})
        rows.append(
            {
                "stripe_subscription_id": sub_id,
                "currency": currency,
                "mrr": mrr,
                "source_updated_at": updated_at,
            }
        )
    dialect = session.get_bind().dialect.name
    for start in range(0, len(rows), _BATCH):
        _upsert(session, dialect, rows[start : start + _BATCH])
    session.commit()
    return len(rows)


def _upsert(
    session: Session | scoped_session[Any], dialect: str, rows: list[dict[str, Any]]
) -> None:
    statement: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(_POSITIONS)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(_POSITIONS)
    statement = statement.on_conflict_do_update(
        index_elements=[_POSITIONS.c.stripe_subscription_id],
        set_={
            "currency": statement.excluded.currency,
            "mrr": statement.excluded.mrr,
            "source_updated_at": statement.excluded.source_updated_at,
        },
    )
    session.execute(statement, [{**row, "baseline_mrr": 0} for row in rows])


@dataclass(frozen=True)
class CurrencyMrr:
    """MRR in one currency: ``amount`` in minor units per month over ``subscriptions``."""

    currency: str
    amount: int
    subscriptions: int


def current_mrr(session: Session | scoped_session[Any]) -> list[CurrencyMrr]:
    """MRR per currency from the cached positions (call :func:`refresh_positions` first)."""
    rows = session.execute(
        sa.select(_POSITIONS.c.currency, sa.func.sum(_POSITIONS.c.mrr), sa.func.count())
        .where(_POSITIONS.c.mrr > 0)
        .group_by(_POSITIONS.c.currency)
        .order_by(_POSITIONS.c.currency)
    )
    return [CurrencyMrr(currency, int(amount), count) for currency, amount, count in rows]


def take_daily_snapshot(session: Session | scoped_session[Any], today: date | None = None) -> bool:
    """Record today's (UTC) snapshot unless one exists; returns whether it did.

    Movements compare each subscription's MRR now with its MRR at the previous snapshot:
    from 0 is new, to 0 is churned, otherwise expansion or contraction. Safe to run from
    several workers at once: one snapshot per day and currency is kept.
    """
    day = today or utcnow().date()
    snapshots = cast(sa.Table, MrrSnapshot.__table__)
    if session.scalar(sa.select(sa.func.count()).where(snapshots.c.day == day)):
        return False
    refresh_positions(session)
    totals: dict[str, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(("mrr", "new", "expansion", "contraction", "churned", "subs"), 0)
    )
    positions = session.execute(
        sa.select(_POSITIONS.c.currency, _POSITIONS.c.mrr, _POSITIONS.c.baseline_mrr).where(
            sa.or_(_POSITIONS.c.mrr != 0, _POSITIONS.c.baseline_mrr != 0)
        )
    )
    for currency, mrr, baseline in positions:
        total = totals[currency]
        total["mrr"] += mrr
        total["subs"] += 1 if mrr > 0 else 0
        if baseline == 0:
            total["new"] += mrr
        elif mrr == 0:
            total["churned"] += baseline
        elif mrr > baseline:
            total["expansion"] += mrr - baseline
        else:
            total["contraction"] += baseline - mrr
    dialect = session.get_bind().dialect.name
    now = utcnow()
    for currency, total in totals.items():
        session.execute(
            insert_ignoring_conflicts(snapshots, dialect).values(
                day=day,
                currency=currency,
                mrr=total["mrr"],
                new=total["new"],
                expansion=total["expansion"],
                contraction=total["contraction"],
                churned=total["churned"],
                subscriptions=total["subs"],
                taken_at=now,
            )
        )
    session.execute(sa.update(_POSITIONS).values(baseline_mrr=_POSITIONS.c.mrr))
    session.commit()
    return True
