"""The plan catalog: plans, ranks, prices per interval and features. Pure Python.

``LATTICE_PLANS`` is a list of mappings, lowest rank first or in any order::

    LATTICE_PLANS = [
        {"key": "free", "name": "Free", "rank": 0, "features": ["notes"]},
        {
            "key": "pro",
            "name": "Pro",
            "rank": 10,
            "prices": {"month": "pro_monthly", "year": "pro_yearly"},
            "features": ["notes", "unlimited_notes", "export"],
            "trial_days": 14,
        },
    ]

A price reference is either a Stripe price id (``price_…``) or a price ``lookup_key``.
A plan without prices is free.

A paid plan is billed flat (its subscription item's quantity is always 1) unless it has
``"seats": {"min": 1, "max": 50}``: then it is billed per seat, and the quantity is the
number of seats, from ``min`` (default 1) to ``max`` (default :data:`MAX_SEATS`).

For ``flask lattice catalog push``, a price may instead be a mapping that also gives the
amount, in minor units of its currency::

    "prices": {"month": {"lookup_key": "pro_monthly", "amount": 1200, "currency": "usd"}}

The amount is only what ``catalog push`` creates in Stripe; the pricing page and Checkout
still read the amount from Stripe's price.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from .errors import ConfigurationError, UnknownPlanError

Interval = Literal["month", "year"]
INTERVALS: tuple[Interval, ...] = ("month", "year")
_PLAN_KEYS = frozenset(
    {"key", "name", "rank", "prices", "features", "trial_days", "description", "seats"}
)
#: The most seats a per-seat plan may allow (and its ``max`` when the catalog names none).
MAX_SEATS = 10_000


@dataclass(frozen=True)
class PriceAmount:
    """What ``catalog push`` creates for one price: ``unit_amount`` in minor units of
    ``currency`` (lower-case ISO code), billed every interval."""

    unit_amount: int
    currency: str = "usd"


def is_price_id(ref: str) -> bool:
    """Whether a price reference is a Stripe price id rather than a lookup key."""
    return ref.startswith("price_")


@dataclass(frozen=True)
class SeatRange:
    """How many seats a per-seat plan sells: ``minimum`` to ``maximum``, both included."""

    minimum: int = 1
    maximum: int = MAX_SEATS

    def clamp(self, seats: int) -> int:
        """``seats`` moved into the range."""
        return min(max(seats, self.minimum), self.maximum)

    def __contains__(self, seats: object) -> bool:
        return isinstance(seats, int) and self.minimum <= seats <= self.maximum


@dataclass(frozen=True)
class Plan:
    """One plan of the catalog."""

    key: str
    name: str
    rank: int
    prices: Mapping[Interval, str] = field(default_factory=dict)
    features: frozenset[str] = frozenset()
    trial_days: int | None = None
    description: str = ""
    #: The seats sold when the plan is billed per seat; ``None`` for a flat plan.
    seats: SeatRange | None = None

    @property
    def per_seat(self) -> bool:
        """Whether the subscription's quantity is a number of seats (else it is always 1)."""
        return self.seats is not None

    #: Amounts per interval for ``flask lattice catalog push`` (only for prices given as
    #: mappings with an ``amount``).
    amounts: Mapping[Interval, PriceAmount] = field(default_factory=dict)

    @property
    def is_free(self) -> bool:
        """A plan with no price is free and never goes through Checkout."""
        return not self.prices

    def price_ref(self, interval: str) -> str:
        """The price id or lookup key for ``interval``; raises ``KeyError`` when not offered."""
        return self.prices[cast(Interval, interval)]


class PlanCatalog:
    """The validated, rank-ordered set of plans configured in ``LATTICE_PLANS``."""

    def __init__(self, plans: Iterable[Plan]) -> None:
        self._plans = sorted(plans, key=lambda plan: plan.rank)
        self._by_key = {plan.key: plan for plan in self._plans}
        self._by_price_ref = {ref: plan for plan in self._plans for ref in plan.prices.values()}

    def __iter__(self) -> Iterator[Plan]:
        return iter(self._plans)

    def __len__(self) -> int:
        return len(self._plans)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def get(self, key: str) -> Plan:
        """The plan named ``key``; raises :class:`UnknownPlanError` otherwise."""
        try:
            return self._by_key[key]
        except KeyError:
            known = ", ".join(self._by_key) or "none"
            raise UnknownPlanError(f"unknown plan {key!r} (known plans: {known})") from None

    @property
    def free_plan(self) -> Plan | None:
        """The lowest-ranked free plan, which applies when nothing is live."""
        return next((plan for plan in self._plans if plan.is_free), None)

    @property
    def paid_plans(self) -> list[Plan]:
        """Plans that have at least one price, lowest rank first."""
        return [plan for plan in self._plans if not plan.is_free]

    @property
    def price_refs(self) -> list[str]:
        """Every price id and lookup key named by the catalog."""
        return list(self._by_price_ref)

    def plan_for_price(self, price_id: str, lookup_key: str | None = None) -> Plan | None:
        """The plan that offers a Stripe price, matched by id first, then by lookup key."""
        plan = self._by_price_ref.get(price_id)
        if plan is None and lookup_key:
            plan = self._by_price_ref.get(lookup_key)
        return plan

    def plan_item(self, items: Sequence[Mapping[str, Any]]) -> tuple[Any, Plan | None]:
        """The subscription item that carries the plan, and its plan.

        ``items`` are Stripe ``subscription_item`` objects, as dicts or ``StripeObject`` s
        (``item["price"]["id"]`` and ``["lookup_key"]``). The item whose catalog plan ranks highest carries the plan; on
        a tie, the first such item. With no catalog price, the first item and ``None``;
        with no items, ``(None, None)``. The projection and the subscription operations both
        use this one rule.
        """
        best: tuple[Any, Plan | None] = (items[0], None) if items else (None, None)
        for item in items:
            price = item["price"]
            lookup_key = price["lookup_key"] if "lookup_key" in price else None  # noqa: SIM401 - a StripeObject has no .get
            plan = self.plan_for_price(price["id"], lookup_key)
            if plan is not None and (best[1] is None or plan.rank > best[1].rank):
                best = (item, plan)
        return best

    def admits(self, plan_key: str | None, required: str) -> bool:
        """Whether holding ``plan_key`` satisfies a requirement for plan ``required``."""
        needed = self.get(required)
        held = self._by_key.get(plan_key) if plan_key else None
        return held is not None and held.rank >= needed.rank

    def has_feature(self, plan_key: str | None, feature: str) -> bool:
        """Whether ``plan_key`` includes ``feature``."""
        held = self._by_key.get(plan_key) if plan_key else None
        return held is not None and feature in held.features

    @property
    def features(self) -> frozenset[str]:
        """Every feature named by any plan."""
        return frozenset().union(*(plan.features for plan in self._plans))


def parse_plans(raw: Any, *, setting: str = "LATTICE_PLANS") -> PlanCatalog:
    """Validate the raw ``LATTICE_PLANS`` value and build the catalog.

    Every problem raises :class:`ConfigurationError` naming the exact entry, such as
    ``LATTICE_PLANS[1].prices.month``.
    """
    if isinstance(raw, Mapping):
        raw = [{"key": key, **dict(spec)} for key, spec in raw.items()]
    if not isinstance(raw, list | tuple):
        raise ConfigurationError(
            f"{setting} must be a list of plan mappings, not {type(raw).__name__}"
        )
    plans = [_parse_plan(entry, f"{setting}[{index}]") for index, entry in enumerate(raw)]
    _check_unique(plans, setting)
    return PlanCatalog(plans)


def _parse_plan(entry: Any, where: str) -> Plan:
    if not isinstance(entry, Mapping):
        raise ConfigurationError(
            f"{where} must be a mapping with at least 'key', 'name' and 'rank'"
        )
    unknown = set(entry) - _PLAN_KEYS
    if unknown:
        raise ConfigurationError(
            f"{where} has unknown field(s) {sorted(unknown)}; allowed: {sorted(_PLAN_KEYS)}"
        )
    key = _required_str(entry, "key", where)
    if not key.isidentifier():
        raise ConfigurationError(f"{where}.key {key!r} must be an identifier such as 'pro'")
    rank = entry.get("rank")
    if not isinstance(rank, int) or isinstance(rank, bool):
        raise ConfigurationError(
            f"{where}.rank must be an integer (higher ranks include lower ones)"
        )
    trial_days = entry.get("trial_days")
    if trial_days is not None and (not isinstance(trial_days, int) or not 1 <= trial_days <= 730):
        raise ConfigurationError(f"{where}.trial_days must be a whole number of days from 1 to 730")
    features = entry.get("features", ())
    if isinstance(features, str) or not all(isinstance(item, str) for item in features):
        raise ConfigurationError(f"{where}.features must be a list of feature names")
    prices, amounts = _parse_prices(entry.get("prices") or {}, f"{where}.prices")
    return Plan(
        key=key,
        name=_required_str(entry, "name", where),
        rank=rank,
        prices=prices,
        features=frozenset(features),
        trial_days=trial_days,
        description=str(entry.get("description", "")),
        amounts=amounts,
        seats=_parse_seats(entry["seats"], f"{where}.seats") if "seats" in entry else None,
    )


def _parse_seats(raw: Any, where: str) -> SeatRange:
    if not isinstance(raw, Mapping) or set(raw) - {"min", "max"}:
        raise ConfigurationError(
            f"{where} must be a mapping such as {{'min': 1, 'max': 50}} (keys 'min' and 'max')"
        )
    bounds = {"min": raw.get("min", 1), "max": raw.get("max", MAX_SEATS)}
    for name, value in bounds.items():
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SEATS:
            raise ConfigurationError(
                f"{where}.{name} must be a whole number of seats from 1 to {MAX_SEATS} "
                f"(got {value!r})"
            )
    if bounds["min"] > bounds["max"]:
        raise ConfigurationError(
            f"{where}.min ({bounds['min']}) must not be more than {where}.max ({bounds['max']})"
        )
    return SeatRange(minimum=bounds["min"], maximum=bounds["max"])


def _parse_prices(raw: Any, where: str) -> tuple[dict[Interval, str], dict[Interval, PriceAmount]]:
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{where} must map an interval ('month', 'year') to a price")
    prices: dict[Interval, str] = {}
    amounts: dict[Interval, PriceAmount] = {}
    for interval, ref in raw.items():
        if interval not in INTERVALS:
            raise ConfigurationError(
                f"{where} has interval {interval!r}; use 'month' or 'year' as Stripe names them"
            )
        if isinstance(ref, Mapping):
            key = cast(Interval, interval)
            prices[key], amounts[key] = _parse_priced(ref, f"{where}.{interval}")
            continue
        if not isinstance(ref, str) or not ref.strip():
            raise ConfigurationError(f"{where}.{interval} must be a price id or a lookup key")
        prices[cast(Interval, interval)] = ref.strip()
    return prices, amounts


def _parse_priced(raw: Mapping[str, Any], where: str) -> tuple[str, PriceAmount]:
    unknown = set(raw) - {"lookup_key", "amount", "currency"}
    if unknown:
        raise ConfigurationError(
            f"{where} has unknown field(s) {sorted(unknown)}; allowed: amount, currency, lookup_key"
        )
    lookup_key = raw.get("lookup_key")
    if not isinstance(lookup_key, str) or not lookup_key.strip() or is_price_id(lookup_key):
        raise ConfigurationError(
            f"{where}.lookup_key is required: the lookup key catalog push gives the price"
        )
    amount = raw.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise ConfigurationError(
            f"{where}.amount must be a whole number of minor units (1200 for $12.00)"
        )
    currency = raw.get("currency", "usd")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise ConfigurationError(f"{where}.currency must be a three-letter ISO code such as 'usd'")
    return lookup_key.strip(), PriceAmount(amount, currency.lower())


def _required_str(entry: Mapping[str, Any], name: str, where: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{where}.{name} is required and must be a non-empty string")
    return value.strip()


def _check_unique(plans: list[Plan], setting: str) -> None:
    seen_keys: set[str] = set()
    seen_refs: dict[str, str] = {}
    for plan in plans:
        if plan.key in seen_keys:
            raise ConfigurationError(f"{setting} names plan {plan.key!r} twice")
        seen_keys.add(plan.key)
        for ref in plan.prices.values():
            if ref in seen_refs:
                raise ConfigurationError(
                    f"{setting}: price {ref!r} is used by both {seen_refs[ref]!r} and {plan.key!r}"
                )
            seen_refs[ref] = plan.key
    for index, plan in enumerate(plans):
        if plan.is_free and plan.per_seat:
            raise ConfigurationError(
                f"{setting}[{index}].seats: the {plan.key!r} plan is free, so it has no seats "
                "to sell; give it 'prices' or remove 'seats'"
            )
    if plans and not any(not plan.is_free for plan in plans):
        raise ConfigurationError(f"{setting} has no paid plan: give at least one plan 'prices'")
