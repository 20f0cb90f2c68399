"""Subscription operations a billable starts from the host's settings page.

Swap plan (with a proration preview), change quantity, cancel at the period end and resume,
pause and resume payment collection. Each use case checks that the subscription belongs to
the billable (locally and against Stripe's object) and runs every guard before a request
is sent. They return what Stripe answered; the local rows change only when the webhook
for the change has been processed.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from ..access.query import LIVE_STATUSES
from ..billable import Billable
from ..errors import BillingHTTPError, LatticeError, StripeGuardError
from ..models import Subscription
from ..plans import Plan
from ..state import get_state
from ..stripe_gateway import StripeNotFound
from .checkout import sellable_plan
from .clocks import subscription_time
from .customers import find_customer
from .facade import SubscriptionsFacade
from .portal import SubscriptionNotFound, default_subscription, owned_subscription
from .prices import offered_price

#: Statuses whose subscriptions can be changed here.
#: How long a swap preview can be confirmed (seconds).
PREVIEW_MAX_AGE = 30 * 60
MAX_QUANTITY = 10_000
#: The last second a timestamp input may name: 9999-12-31T23:59:59Z.
MAX_TIMESTAMP = 253_402_300_799
_PREVIEW_SALT = "flask-lattice-swap-preview"


class OperationRefused(BillingHTTPError):
    """The request is malformed or altered (unknown plan, bad quantity or behavior)."""

    code = 400


class OperationConflict(BillingHTTPError):
    """The change cannot be made in the subscription's current state."""

    code = 409


class DowngradeRefused(OperationConflict):
    """The host's ``downgrade_guard`` refused the move to a lower plan."""


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


@dataclass(frozen=True)
class SwapPreview:
    """What a plan swap costs, as Stripe previewed it, and the token that confirms it."""

    subscription_id: str
    current_plan: Plan | None
    plan: Plan
    interval: str
    quantity: int
    currency: str
    proration_behavior: str
    proration_date: int
    due_today: int
    next_invoice_amount: int
    next_invoice_date: datetime | None
    recurring_amount: int | None
    lines: list[PreviewLine]
    token: str

    @property
    def is_downgrade(self) -> bool:
        """Whether the target plan ranks below the current one."""
        return self.current_plan is not None and self.plan.rank < self.current_plan.rank


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
    items = list(live["items"]["data"])
    item = next(
        (
            entry
            for entry in items
            if catalog.plan_for_price(entry["price"]["id"], entry["price"]["lookup_key"])
        ),
        items[0],
    )
    row = get_state().db.session.scalar(
        sa.select(Subscription).where(Subscription.stripe_subscription_id == found)
    )
    plan = catalog.plan_for_price(item["price"]["id"], item["price"]["lookup_key"])
    return Target(subscription_id=found, live=live, item=item, plan=plan, row=row)


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
    target = load_target(billable, subscription_id)
    chosen = interval or target.interval or ""
    plan = sellable_plan(plan_key, chosen)
    price = offered_price(plan, chosen)
    if price.stripe_price_id == target.price_id:
        raise OperationConflict(f"You are already on the {plan.name} plan, billed per {chosen}.")
    check_downgrade(billable, target.plan, plan)
    behavior = get_state().config.proration_behavior
    proration_date = _proration_date(target)
    quantity = int(target.item["quantity"] or 1)
    facade = SubscriptionsFacade.for_app()
    invoice = facade.preview_change(
        target.subscription_id,
        [{"id": target.item["id"], "price": price.stripe_price_id, "quantity": quantity}],
        proration_behavior=behavior,
        proration_date=proration_date,
    )
    lines = [_line(line) for line in invoice["lines"]["data"]]
    immediate = invoice["billing_reason"] == "subscription_update"
    recurring = price.unit_amount * quantity if price.unit_amount is not None else None
    if immediate:
        ends = [line["period"]["end"] for line in invoice["lines"]["data"]]
        next_date = max(ends) if ends else None
        next_amount = recurring or 0
    else:
        next_date = target.item["current_period_end"]
        next_amount = int(invoice["amount_due"])
    token = _serializer().dumps(
        {
            "sub": target.subscription_id,
            "item": target.item["id"],
            "from": target.price_id,
            "current": target.plan.key if target.plan else None,
            "price": price.stripe_price_id,
            "plan": plan.key,
            "interval": chosen,
            "quantity": quantity,
            "date": proration_date,
            "behavior": behavior,
            "nonce": secrets.token_urlsafe(12),
        }
    )
    return SwapPreview(
        subscription_id=target.subscription_id,
        current_plan=target.plan,
        plan=plan,
        interval=chosen,
        quantity=quantity,
        currency=str(invoice["currency"]),
        proration_behavior=behavior,
        proration_date=proration_date,
        due_today=int(invoice["amount_due"]) if immediate else 0,
        next_invoice_amount=next_amount,
        next_invoice_date=datetime.fromtimestamp(next_date, UTC) if next_date else None,
        recurring_amount=recurring,
        lines=lines,
        token=token,
    )


def confirm_swap(
    billable: Billable,
    token: str,
    *,
    plan_key: str | None = None,
    interval: str | None = None,
    subscription_id: str | None = None,
) -> Any:
    """Apply the swap that ``token`` (from :func:`preview_swap`) describes.

    The posted ``plan_key``, ``interval`` and ``subscription_id`` must match the preview,
    and the price must still be the catalog's; anything else is refused before Stripe
    is called. A double submit of the same preview is one change.
    """
    shown = _load_preview(token)
    for posted, key in ((plan_key, "plan"), (interval, "interval"), (subscription_id, "sub")):
        if posted is not None and posted != shown[key]:
            raise OperationRefused("The form does not match the preview; preview the change again.")
    plan = sellable_plan(shown["plan"], shown["interval"])
    if offered_price(plan, shown["interval"]).stripe_price_id != shown["price"]:
        raise OperationConflict("The plan's price changed; preview the change again.")
    target = load_target(billable, shown["sub"])
    if target.item["id"] != shown["item"] or target.price_id not in (shown["from"], shown["price"]):
        raise OperationConflict("The subscription changed since the preview; preview it again.")
    catalog = get_state().config.plans
    current = shown["current"]
    check_downgrade(billable, catalog.get(current) if current in catalog else None, plan)
    return SubscriptionsFacade.for_app().swap(
        target.subscription_id,
        item_id=shown["item"],
        price_id=shown["price"],
        quantity=shown["quantity"],
        proration_behavior=shown["behavior"],
        proration_date=shown["date"],
        scope=shown["nonce"],
    )


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


# -- quantity, cancel, resume, pause -------------------------------------------------------------


def change_quantity(
    billable: Billable, subscription_id: str | None, quantity: Any, token: str | None = None
) -> Any:
    """Set the plan item's quantity (seats), prorated per ``LATTICE_PRORATION_BEHAVIOR``."""
    seats = _quantity(quantity)
    target = load_target(billable, subscription_id)
    return SubscriptionsFacade.for_app().set_quantity(
        target.subscription_id,
        item_id=target.item["id"],
        quantity=seats,
        scope=operation_scope(target, token),
    )


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


def _serializer() -> URLSafeTimedSerializer:
    if not current_app.secret_key:
        raise LatticeError("set the app's SECRET_KEY: plan swap previews are signed with it")
    return URLSafeTimedSerializer(current_app.secret_key, salt=_PREVIEW_SALT)


def _load_preview(token: str) -> dict[str, Any]:
    try:
        shown: dict[str, Any] = _serializer().loads(token, max_age=PREVIEW_MAX_AGE)
    except SignatureExpired:
        raise OperationConflict("This preview has expired; preview the change again.") from None
    except BadData:
        raise OperationRefused(
            "The preview is missing or was altered; preview the change again."
        ) from None
    return shown


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


def _quantity(value: Any) -> int:
    try:
        seats = int(str(value).strip())
    except ValueError:
        seats = 0
    if not 1 <= seats <= MAX_QUANTITY:
        raise OperationRefused(f"The quantity must be a whole number from 1 to {MAX_QUANTITY}.")
    return seats


def _resumes_at(value: str | None) -> int | None:
    """A ``resumes_at`` form value (``YYYY-MM-DD`` or a unix time) as a future timestamp,
    no later than :data:`MAX_TIMESTAMP` (anything else is :class:`OperationRefused`)."""
    if not value:
        return None
    try:
        when = (
            int(value)
            if value.isdigit()
            else int(datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp())
        )
    except ValueError:
        raise OperationRefused("resumes_at must be a date (YYYY-MM-DD) or a unix time.") from None
    if when > MAX_TIMESTAMP:
        raise OperationRefused("resumes_at must be a date before the year 10000.")
    if when <= time.time():
        raise OperationRefused("resumes_at must be in the future.")
    return when
