"""Subscription operations a billable starts from the host's settings page.

Swap plan and change seats (each with a proration preview and a signed confirm), cancel
at the period end and resume, pause and resume payment collection. Each use case checks that the subscription belongs to
the billable (locally and against Stripe's object) and runs every guard before a request
is sent. They return what Stripe answered; the local rows change only when the webhook
for the change has been processed.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from itsdangerous import BadData, SignatureExpired

from ..access.policy import LIVE_STATUSES
from ..billable import Billable
from ..errors import (
    DowngradeRefused,
    OperationConflict,
    OperationRefused,
    StripeGuardError,
    StripeNotFound,
    SubscriptionNotFound,
)
from ..models import Subscription
from ..plans import Plan
from ..signing import serializer
from ..state import get_state
from .checkout import sellable_plan
from .clocks import subscription_time
from .customers import find_customer
from .facade import SubscriptionsFacade
from .form_values import calendar_date, whole_number
from .portal import default_subscription, owned_subscription
from .prices import offered_price
from .seats import check_seats, parse_seats, swap_quantity

#: How long a swap or seat preview can be confirmed (seconds).
PREVIEW_MAX_AGE = 30 * 60
#: The last second a timestamp input may name: 9999-12-31T23:59:59Z.
MAX_TIMESTAMP = 253_402_300_799
_PREVIEW_SALT = "flask-lattice-swap-preview"
_SEATS_SALT = "flask-lattice-seats-preview"
# A confirm form's field names, where the signed preview names them otherwise.
_SHOWN_KEYS = {"subscription": "sub"}


@dataclass(frozen=True)
class Target:
    """A subscription the billable owns: Stripe's object and the item carrying the plan."""

    subscription_id: str
    live: Any
    item: Any
    plan: Plan | None
    row: Subscription | None

    @property
    def price_id(self) -> str:
        """The plan item's current price id."""
        price_id: str = self.item["price"]["id"]
        return price_id

    @property
    def interval(self) -> str | None:
        """The plan item's billing interval."""
        recurring = self.item["price"]["recurring"]
        return str(recurring["interval"]) if recurring is not None else None


@dataclass(frozen=True)
class PreviewLine:
    """One line of a preview invoice."""

    description: str
    amount: int
    proration: bool


@dataclass(frozen=True, kw_only=True)
class PricedChange:
    """The amounts of a previewed item change, in integer minor units of ``currency``
    (from Stripe's preview invoice): due now, on the next invoice (a UTC datetime) and per
    interval from then on."""

    currency: str
    due_today: int
    next_invoice_amount: int
    next_invoice_date: datetime | None
    recurring_amount: int | None
    lines: list[PreviewLine]


@dataclass(frozen=True, kw_only=True)
class ChangePreview(PricedChange):
    """A previewed change of a subscription's plan item and the signed token that confirms
    it: priced with ``proration_behavior`` as of ``proration_date`` (unix seconds)."""

    subscription_id: str
    quantity: int
    proration_behavior: str
    proration_date: int
    token: str


PreviewT = TypeVar("PreviewT", bound=ChangePreview)


@dataclass(frozen=True, kw_only=True)
class SwapPreview(ChangePreview):
    """What a plan swap costs, as Stripe previewed it, and the token that confirms it."""

    current_plan: Plan | None
    plan: Plan
    interval: str

    @property
    def is_downgrade(self) -> bool:
        """Whether the target plan ranks below the current one."""
        return self.current_plan is not None and self.plan.rank < self.current_plan.rank


@dataclass(frozen=True, kw_only=True)
class SeatPreview(ChangePreview):
    """What a seat change costs, as Stripe previewed it, and the token that confirms it.

    ``unit_amount`` is the price per seat (Stripe's ``price.unit_amount``),
    ``recurring_amount`` the new price per interval.
    """

    plan: Plan
    current_quantity: int
    unit_amount: int | None


#: Why a plan or seat change is refused while the subscription is ``past_due``.
PAST_DUE_MESSAGE = (
    "Your last payment failed. Update your payment method and pay the open invoice "
    "before changing your plan or seats."
)


# -- ownership ------------------------------------------------------------------------------


def load_target(billable: Billable, subscription_id: str | None) -> Target:
    """The billable's subscription ``subscription_id`` (default: its live one), from Stripe.

    Another billable's subscription, or one that does not exist, is a 404; a subscription
    that has ended is a 409.
    """
    customer = find_customer(billable.key)
    if customer is None:
        raise SubscriptionNotFound("You have no subscription to change.")
    if subscription_id:
        found: str | None = owned_subscription(billable, customer, subscription_id)
    else:
        found = default_subscription(billable, customer)
    if found is None:
        raise SubscriptionNotFound("You have no subscription to change.")
    try:
        live = SubscriptionsFacade.for_app().retrieve(found)
    except StripeNotFound:
        raise SubscriptionNotFound() from None
    if live["customer"] != customer.stripe_customer_id:
        raise SubscriptionNotFound()
    if live["status"] not in LIVE_STATUSES:
        raise OperationConflict(f"This subscription is {live['status']} and cannot be changed.")
    catalog = get_state().config.plans
    item, plan = catalog.plan_item(list(live["items"]["data"]))
    row = get_state().db.session.scalar(
        sa.select(Subscription).where(Subscription.stripe_subscription_id == found)
    )
    return Target(subscription_id=found, live=live, item=item, plan=plan, row=row)


def _paid_up(target: Target) -> Target:
    """``target``, unless its last payment failed (Stripe's ``past_due``): a plan or seat
    change then bills the card that just failed, and Stripe applies the change even when
    that charge fails, so it would be granted unpaid. Raises :class:`OperationConflict`
    (409); cancelling stays possible."""
    if target.live["status"] == "past_due":
        raise OperationConflict(PAST_DUE_MESSAGE)
    return target


def operation_scope(target: Target, token: str | None) -> str:
    """The idempotency scope of an operation: the form's one-time token, else local state.

    A form rendered with ``lattice_operation_token()`` makes a double click one change
    and every later click a new one. Without it, the scope is the last webhook applied to
    the local row, so an identical change repeated after that webhook is sent again.
    """
    if token:
        return f"token:{token[:64]}"
    row = target.row
    if row is None:
        return "unprojected"
    return f"state:{row.watermark_event_id}:{row.updated_at.isoformat()}"


def new_operation_token() -> str:
    """A fresh one-time token for an operation form (``lattice_operation_token()``)."""
    return secrets.token_urlsafe(16)


# -- swap plan ---------------------------------------------------------------------------------


def preview_swap(
    billable: Billable, subscription_id: str | None, plan_key: str, interval: str | None
) -> SwapPreview:
    """Preview moving the billable's subscription to ``plan_key`` at ``interval``.

    The price comes from the catalog; the proration date is fixed now and signed into the
    returned token, so :func:`confirm_swap` applies exactly the amounts shown.
    """
    target = _paid_up(load_target(billable, subscription_id))
    chosen = interval or target.interval or ""
    plan = sellable_plan(plan_key, chosen)
    price = offered_price(plan, chosen)
    if price.stripe_price_id == target.price_id:
        raise OperationConflict(f"You are already on the {plan.name} plan, billed per {chosen}.")
    check_downgrade(billable, target.plan, plan)
    quantity = swap_quantity(billable, target.plan, _quantity_of(target), plan)
    return _previewed(
        SwapPreview,
        target,
        price.stripe_price_id,
        price.unit_amount,
        quantity,
        _PREVIEW_SALT,
        {
            "from": target.price_id,
            "current": target.plan.key if target.plan else None,
            "plan": plan.key,
            "interval": chosen,
        },
        current_plan=target.plan,
        plan=plan,
        interval=chosen,
    )


def confirm_swap(billable: Billable, token: str, posted: Mapping[str, str | None]) -> Any:
    """Apply the swap that ``token`` (from :func:`preview_swap`) describes.

    The form's ``plan``, ``interval`` and ``subscription`` in ``posted`` (``None`` when not
    posted) must match the preview, and the price must still be the catalog's; anything
    else is refused before Stripe is called. A double submit of the same preview is one
    change.
    """
    shown = _load_preview(token, _PREVIEW_SALT, posted)
    plan = sellable_plan(shown["plan"], shown["interval"])
    if offered_price(plan, shown["interval"]).stripe_price_id != shown["price"]:
        raise OperationConflict("The plan's price changed; preview the change again.")
    target = _paid_up(load_target(billable, shown["sub"]))
    if target.item["id"] != shown["item"] or target.price_id not in (shown["from"], shown["price"]):
        raise OperationConflict("The subscription changed since the preview; preview it again.")
    catalog = get_state().config.plans
    current = shown["current"]
    check_downgrade(billable, catalog.get(current) if current in catalog else None, plan)
    if plan.per_seat:
        check_seats(billable, plan, shown["quantity"])
    facade = SubscriptionsFacade.for_app()
    return _apply(facade.swap, shown, price_id=shown["price"], quantity=shown["quantity"])


def check_downgrade(billable: Billable, current: Plan | None, target: Plan) -> None:
    """Ask the host's ``downgrade_guard`` about a move to a lower-ranked plan.

    Raises :class:`DowngradeRefused` with the hook's message when it returns one.
    """
    guard = get_state().hooks.downgrade_guard
    if guard is None or current is None or target.rank >= current.rank:
        return
    message = guard(billable, current, target)
    if message:
        raise DowngradeRefused(str(message))


# -- seats -----------------------------------------------------------------------------------------


def preview_seats(billable: Billable, subscription_id: str | None, quantity: Any) -> SeatPreview:
    """Preview setting the seats (the plan item's quantity) of a per-seat subscription.

    ``quantity`` is the raw form value: ASCII digits within the plan's seat range, and no
    fewer than the host's ``seats_in_use``. The proration date is fixed now and signed,
    with the quantity, into the token that :func:`confirm_seats` applies.

    Raises :class:`~flask_lattice.billing.numbers.InvalidNumber` (400) for a bad number,
    :class:`OperationRefused` (400) for a flat plan, :class:`~flask_lattice.errors.SeatsRefused` (409) below the
    seats in use, and :class:`OperationConflict` (409) for the current quantity.
    """
    target, plan, seats = _seat_change(billable, subscription_id, quantity)
    current = _quantity_of(target)
    unit_amount = target.item["price"]["unit_amount"]
    return _previewed(
        SeatPreview,
        target,
        target.price_id,
        unit_amount,
        seats,
        _SEATS_SALT,
        {"from": current},
        plan=plan,
        current_quantity=current,
        unit_amount=int(unit_amount) if unit_amount is not None else None,
    )


def check_seat_change(billable: Billable, subscription_id: str | None, quantity: Any) -> int:
    """The seats ``quantity`` asks for, if :func:`preview_seats` would accept them.

    Raises what :func:`preview_seats` raises, without asking Stripe for a preview.
    """
    return _seat_change(billable, subscription_id, quantity)[2]


def _seat_change(
    billable: Billable, subscription_id: str | None, quantity: Any
) -> tuple[Target, Plan, int]:
    seats = parse_seats(quantity, "quantity")
    target = _paid_up(load_target(billable, subscription_id))
    plan = _seat_plan(target)
    check_seats(billable, plan, seats)
    if seats == _quantity_of(target):
        raise OperationConflict(f"You already have {seats} {_seats_word(seats)}.")
    return target, plan, seats


def confirm_seats(billable: Billable, token: str, posted: Mapping[str, str | None]) -> Any:
    """Apply the seat change that ``token`` (from :func:`preview_seats`) describes.

    The form's ``quantity`` or ``subscription`` in ``posted`` (``None`` when not posted)
    that differs from the preview is a 400; a subscription whose price or seats changed
    since the preview is a 409; the seats in use are checked again. A double submit of
    the same preview is one change.
    """
    shown = _load_preview(token, _SEATS_SALT, posted)
    target = _paid_up(load_target(billable, shown["sub"]))
    unchanged = (target.item["id"], target.price_id) == (shown["item"], shown["price"])
    if not unchanged or _quantity_of(target) not in (shown["from"], shown["quantity"]):
        raise OperationConflict("The subscription changed since the preview; preview it again.")
    check_seats(billable, _seat_plan(target), shown["quantity"])
    return _apply(SubscriptionsFacade.for_app().set_quantity, shown, quantity=shown["quantity"])


# -- cancel, resume, pause ---------------------------------------------------------------------


def cancel_at_period_end(
    billable: Billable, subscription_id: str | None, token: str | None = None
) -> Any:
    """Schedule the subscription to end when the current period ends."""
    target = load_target(billable, subscription_id)
    return SubscriptionsFacade.for_app().cancel(
        target.subscription_id, at_period_end=True, scope=operation_scope(target, token)
    )


def resume(billable: Billable, subscription_id: str | None, token: str | None = None) -> Any:
    """Undo a scheduled cancel (``cancel_at_period_end`` or ``cancel_at``)."""
    target = load_target(billable, subscription_id)
    return SubscriptionsFacade.for_app().resume(
        target.subscription_id, scope=operation_scope(target, token)
    )


def pause_collection(
    billable: Billable,
    subscription_id: str | None,
    behavior: str,
    resumes_at: str | None = None,
    token: str | None = None,
) -> Any:
    """Pause payment collection with ``behavior``; the pause guard refuses anything else."""
    when = _resumes_at(resumes_at)
    target = load_target(billable, subscription_id)
    try:
        return SubscriptionsFacade.for_app().pause_collection(
            target.subscription_id, behavior, when, scope=operation_scope(target, token)
        )
    except StripeGuardError as error:
        raise OperationRefused(
            "Choose how to pause: keep_as_draft, mark_uncollectible or void."
        ) from error


def unpause(billable: Billable, subscription_id: str | None, token: str | None = None) -> Any:
    """Resume payment collection."""
    target = load_target(billable, subscription_id)
    return SubscriptionsFacade.for_app().unpause(
        target.subscription_id, scope=operation_scope(target, token)
    )


# -- helpers --------------------------------------------------------------------------------------


def _previewed(
    kind: type[PreviewT],
    target: Target,
    price_id: str,
    price_unit_amount: int | None,
    quantity: int,
    salt: str,
    shown: dict[str, Any],
    **details: Any,
) -> PreviewT:
    """Stripe's preview of the plan item at ``price_id`` × ``quantity`` as a ``kind``, with
    a token signing what was shown (``shown`` plus the subscription, item, price and
    quantity), the proration date (unix seconds), the behavior and a nonce."""
    behavior = get_state().config.proration_behavior
    proration_date = _proration_date(target)
    priced = _price_change(target, price_id, price_unit_amount, quantity, behavior, proration_date)
    signed = {
        **shown,
        "sub": target.subscription_id,
        "item": target.item["id"],
        "price": price_id,
        "quantity": quantity,
        "date": proration_date,
        "behavior": behavior,
        "nonce": secrets.token_urlsafe(12),
    }
    return kind(
        **{field.name: getattr(priced, field.name) for field in fields(PricedChange)},
        **details,
        subscription_id=target.subscription_id,
        proration_behavior=behavior,
        proration_date=proration_date,
        quantity=quantity,
        token=serializer(salt, signs="plan and seat previews").dumps(signed),
    )


def _apply(change: Callable[..., Any], shown: dict[str, Any], **item: Any) -> Any:
    """Send the previewed item change with the proration it was priced with; the preview's
    nonce scopes the idempotency key, so a double submit is one change."""
    return change(
        shown["sub"],
        item_id=shown["item"],
        **item,
        proration_behavior=shown["behavior"],
        proration_date=shown["date"],
        scope=shown["nonce"],
    )


def _load_preview(token: str, salt: str, posted: Mapping[str, str | None]) -> dict[str, Any]:
    """What the preview ``token`` showed; refused when expired, altered, or when a posted
    form field (``plan``, ``interval``, ``quantity``, ``subscription``) says otherwise."""
    try:
        shown: dict[str, Any] = serializer(salt, signs="plan and seat previews").loads(
            token, max_age=PREVIEW_MAX_AGE
        )
    except SignatureExpired:
        raise OperationConflict("This preview has expired; preview the change again.") from None
    except BadData:
        raise OperationRefused(
            "The preview is missing or was altered; preview the change again."
        ) from None
    for name, value in posted.items():
        if value is not None and value != str(shown[_SHOWN_KEYS.get(name, name)]):
            raise OperationRefused("The form does not match the preview; preview the change again.")
    return shown


def _quantity_of(target: Target) -> int:
    """The plan item's quantity (Stripe's ``subscription_item.quantity``)."""
    return int(target.item["quantity"] or 1)


def _seat_plan(target: Target) -> Plan:
    """The target's catalog plan (a price outside the catalog cannot have its seats changed)."""
    if target.plan is None:
        raise OperationConflict("This subscription's price is not in the plan catalog.")
    return target.plan


def _seats_word(seats: int) -> str:
    return "seat" if seats == 1 else "seats"


def _price_change(
    target: Target,
    price_id: str,
    unit_amount: int | None,
    quantity: int,
    behavior: str,
    proration_date: int,
) -> PricedChange:
    """Stripe's preview of the plan item at ``price_id`` × ``quantity``, as amounts."""
    invoice = SubscriptionsFacade.for_app().preview_change(
        target.subscription_id,
        [{"id": target.item["id"], "price": price_id, "quantity": quantity}],
        proration_behavior=behavior,
        proration_date=proration_date,
    )
    lines = [_line(line) for line in invoice["lines"]["data"]]
    immediate = invoice["billing_reason"] == "subscription_update"
    recurring = int(unit_amount) * quantity if unit_amount is not None else None
    if immediate:
        ends = [line["period"]["end"] for line in invoice["lines"]["data"]]
        next_date = max(ends) if ends else None
        next_amount = recurring or 0
    else:
        next_date = target.item["current_period_end"]
        next_amount = int(invoice["amount_due"])
    return PricedChange(
        currency=str(invoice["currency"]),
        due_today=int(invoice["amount_due"]) if immediate else 0,
        next_invoice_amount=next_amount,
        next_invoice_date=datetime.fromtimestamp(next_date, UTC) if next_date else None,
        recurring_amount=recurring,
        lines=lines,
    )


def _proration_date(target: Target) -> int:
    """Now on the subscription's clock (:func:`~.clocks.subscription_time`), kept inside
    the item's current period (Stripe refuses dates outside it)."""
    item = target.item
    start, end = int(item["current_period_start"]), int(item["current_period_end"])
    now = int(subscription_time(target.live).timestamp())
    return min(max(now, start), end - 1)


def _line(line: Any) -> PreviewLine:
    parent = line["parent"]
    details = parent["subscription_item_details"] if parent is not None else None
    return PreviewLine(
        description=str(line["description"] or ""),
        amount=int(line["amount"]),
        proration=bool(details is not None and details["proration"]),
    )


def _resumes_at(value: str | None) -> int | None:
    """A ``resumes_at`` form value (``YYYY-MM-DD``, midnight UTC, or a unix time) as a
    future timestamp, no later than :data:`MAX_TIMESTAMP`. Raises :class:`InvalidDate` or
    :class:`InvalidNumber` for another form, :class:`OperationRefused` for a time out of
    range."""
    if not value:
        return None
    if value.isascii() and value.isdigit():
        when = whole_number(value, "resumes_at", low=1, high=MAX_TIMESTAMP)
    else:
        day = calendar_date(value, "resumes_at")
        when = int(datetime.combine(day, datetime.min.time(), UTC).timestamp())
    if when > MAX_TIMESTAMP:
        raise OperationRefused("resumes_at must be a date before the year 10000.")
    if when <= time.time():
        raise OperationRefused("resumes_at must be in the future.")
    return when
