"""Catalog prices: read from Stripe, cached in ``lattice_prices``, and checked.

The pricing page shows amounts from Stripe's prices, never amounts typed into config.
:func:`catalog_prices` serves them from the local cache and refreshes it when it is older
than ``LATTICE_PRICE_CACHE_SECONDS`` or misses a price. :func:`check_catalog` compares
``LATTICE_PLANS`` with Stripe and lists every problem (``flask lattice doctor`` runs it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from babel.numbers import format_currency, format_decimal, get_currency_symbol
from sqlalchemy.exc import IntegrityError

from ..errors import PriceUnavailable, StripeAPIError, StripeNotFound
from ..models import Price, utcnow
from ..money import minor_unit_digits
from ..plans import Plan, is_price_id
from ..state import get_state

log = logging.getLogger(__name__)

#: The locale whose currency symbols are shown (``$``, ``€``, ``£``, ``¥``…).
_DISPLAY_LOCALE = "en_US"


@dataclass(frozen=True)
class CatalogProblem:
    """One mismatch between ``LATTICE_PLANS`` and the prices in Stripe."""

    plan: str
    interval: str
    ref: str
    message: str

    def __str__(self) -> str:
        return f"LATTICE_PLANS {self.plan}.prices.{self.interval} ({self.ref}): {self.message}"


def format_amount(unit_amount: int | None, currency: str) -> str:
    """An amount in minor units for display: ``$12.00``, ``−$12.00`` (a credit), ``¥1,200``
    or ``9.90 CHF`` (a currency without a symbol of its own).

    ``unit_amount`` is in the currency's minor units, as Stripe's ``unit_amount`` and
    invoice amounts are: two digits, none for Stripe's zero-decimal currencies (``jpy``,
    ``krw``…) and three for its three-decimal ones (``kwd``…), by :mod:`flask_lattice.money`.
    ``currency`` is Stripe's lowercase ISO code. ``None`` (a custom price) is ``custom``.
    Symbols and grouping come from Babel (CLDR data).
    """
    if unit_amount is None:
        return "custom"
    code = currency.upper()
    digits = minor_unit_digits(currency)
    magnitude = Decimal(abs(unit_amount)).scaleb(-digits)
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    sign = "−" if unit_amount < 0 else ""
    symbol = get_currency_symbol(code, _DISPLAY_LOCALE)
    if symbol == code:
        return f"{sign}{format_decimal(magnitude, pattern, locale=_DISPLAY_LOCALE)} {code}"
    shown = format_currency(
        magnitude, code, "¤" + pattern, locale=_DISPLAY_LOCALE, currency_digits=False
    )
    return f"{sign}{shown}"


def catalog_prices() -> dict[str, Price]:
    """Every catalog price reference resolved to its cached price (refreshed when stale).

    A reference that Stripe does not know is absent. When Stripe cannot be reached, the
    stale cache is served.
    """
    state = get_state()
    refs = state.config.plans.price_refs
    cached = _cached(refs)
    cutoff = utcnow() - timedelta(seconds=state.config.price_cache_seconds)
    fresh = len(cached) == len(refs) and all(row.fetched_at > cutoff for row in cached.values())
    if fresh and state.config.price_cache_seconds:
        return cached
    try:
        fetched = fetch_prices(refs)
    except StripeAPIError as error:
        log.warning("could not refresh catalog prices from Stripe (%s); using the cache", error)
        return cached
    try:
        _store(fetched)
    except sa.exc.OperationalError as error:
        # The cache only saves Stripe calls: a database that cannot take the write now
        # (SQLite locked by another process, say) must not fail the page.
        state.db.session.rollback()
        log.warning("could not cache catalog prices (%s); serving them uncached", error)
        return _uncached(fetched)
    return _cached(refs)


def _uncached(fetched: dict[str, Any]) -> dict[str, Price]:
    """Fetched prices as (unsaved) ``Price`` rows, by the reference they were fetched for."""
    now = utcnow()
    rows: dict[str, Price] = {}
    for ref, price in fetched.items():
        rows[ref] = Price(stripe_price_id=price["id"])
        _copy(rows[ref], price, now)
    return rows


def offered_price(plan: Plan, interval: str) -> Price:
    """The active recurring price a plan offers for ``interval``, or :class:`PriceUnavailable`."""
    price = catalog_prices().get(plan.price_ref(interval))
    if price is None or not sellable(price, interval):
        log.error("plan %r cannot be sold for %r: run 'flask lattice doctor'", plan.key, interval)
        raise PriceUnavailable(
            f"The {plan.name} plan cannot be bought right now. Please try again later."
        )
    return price


def sellable(price: Price, interval: str) -> bool:
    """Whether a cached price can be sold as the catalog's ``interval``."""
    return price.active and price.interval == interval and price.interval_count == 1


def fetch_prices(refs: list[str]) -> dict[str, Any]:
    """The Stripe price (with its product) for each reference that Stripe knows."""
    gateway = get_state().stripe
    found: dict[str, Any] = {}
    lookup_keys = [ref for ref in refs if not is_price_id(ref)]
    if lookup_keys:
        for price in gateway.list_prices(lookup_keys=lookup_keys):
            found[price["lookup_key"]] = price
    for ref in refs:
        if is_price_id(ref):
            try:
                found[ref] = gateway.retrieve_price(ref)
            except StripeNotFound:
                continue
    return found


def check_catalog() -> list[CatalogProblem]:
    """Compare every plan's prices with Stripe; an empty list means the catalog is sound.

    Reports missing prices or lookup keys, inactive prices or products, one-time prices,
    and prices whose billing interval differs from the catalog's. Reads Stripe only.
    """
    catalog = get_state().config.plans
    fetched = fetch_prices(catalog.price_refs)
    problems: list[CatalogProblem] = []
    for plan in catalog.paid_plans:
        for interval, ref in plan.prices.items():
            for message in _price_problems(ref, interval, fetched.get(ref)):
                problems.append(CatalogProblem(plan.key, interval, ref, message))
    return problems


def _price_problems(ref: str, interval: str, price: Any) -> list[str]:
    if price is None:
        if is_price_id(ref):
            return [f"Stripe has no price {ref!r}"]
        return [f"no Stripe price has the lookup key {ref!r}"]
    problems = []
    if not price["active"]:
        problems.append(f"price {price['id']} is inactive (archived)")
    product = price["product"]
    if not isinstance(product, str) and not product["active"]:
        problems.append(f"product {product['id']} of price {price['id']} is inactive (archived)")
    recurring = price["recurring"]
    if price["type"] != "recurring" or recurring is None:
        problems.append(f"price {price['id']} is a one-time price; plans need recurring prices")
    elif recurring["interval"] != interval or recurring["interval_count"] != 1:
        count = recurring["interval_count"]
        every = recurring["interval"] if count == 1 else f"{count} {recurring['interval']}s"
        problems.append(
            f"price {price['id']} bills every {every}, but the catalog offers it as '{interval}'"
        )
    return problems


def _cached(refs: list[str]) -> dict[str, Price]:
    session = get_state().db.session
    ids = [ref for ref in refs if is_price_id(ref)]
    keys = [ref for ref in refs if not is_price_id(ref)]
    rows = session.scalars(
        sa.select(Price).where(sa.or_(Price.stripe_price_id.in_(ids), Price.lookup_key.in_(keys)))
    ).all()
    resolved: dict[str, Price] = {}
    for row in rows:
        if row.stripe_price_id in ids:
            resolved[row.stripe_price_id] = row
        if row.lookup_key in keys:
            resolved[row.lookup_key] = row
    return resolved


def _store(fetched: dict[str, Any]) -> None:
    """Upsert the fetched prices; a lookup key moves to the price that now holds it."""
    session = get_state().db.session
    now = utcnow()
    prices = {price["id"]: price for price in fetched.values()}
    held_keys = [price["lookup_key"] for price in prices.values() if price["lookup_key"]]
    try:
        session.execute(
            sa.update(Price)
            .where(Price.lookup_key.in_(held_keys), Price.stripe_price_id.not_in(list(prices)))
            .values(lookup_key=None)
        )
        for price_id, price in prices.items():
            row = session.scalar(sa.select(Price).where(Price.stripe_price_id == price_id))
            if row is None:
                row = Price(stripe_price_id=price_id)
                session.add(row)
            _copy(row, price, now)
        session.commit()
    except IntegrityError:
        # A concurrent refresh stored the same prices first; its rows are as good.
        session.rollback()


def _copy(row: Price, price: Any, now: Any) -> None:
    product = price["product"]
    recurring = price["recurring"]
    row.lookup_key = price["lookup_key"]
    row.product_id = product if isinstance(product, str) else product["id"]
    row.product_name = None if isinstance(product, str) else product["name"]
    row.currency = price["currency"]
    row.unit_amount = price["unit_amount"]
    row.interval = recurring["interval"] if recurring is not None else None
    row.interval_count = recurring["interval_count"] if recurring is not None else 1
    row.active = bool(price["active"]) and (isinstance(product, str) or bool(product["active"]))
    row.fetched_at = now
