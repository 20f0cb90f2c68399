"""``/v1/subscriptions`` and ``/v1/subscription_items``."""

from __future__ import annotations

import copy
from typing import Any

from .. import billing
from ..api import Router
from ..clock import DAY, MAX_TIMESTAMP
from ..core import SandboxCore
from ..events import emit
from ..listing import paginate
from ..search import search_page
from ..timeline import renew, trial_notice
from ..wire import JSON, StripeError, exclusive_params, invalid_param, missing_param, no_such
from . import apply_metadata, check_customer_filter, list_of

router = Router()

SEARCH_FIELDS = frozenset({"created", "status", "customer", "metadata"})
_ENDED = ("canceled", "incomplete_expired")
#: How far ahead Stripe lets ``trial_end`` be (its "no more than five years in the future").
TRIAL_END_MAX = 5 * 365 * DAY


def get_subscription(core: SandboxCore, sub_id: str, param: str = "subscription") -> JSON:
    """A subscription, or Stripe's 404."""
    return core.store.get("subscription", sub_id, param)


def _items(core: SandboxCore, params: JSON) -> list[tuple[JSON, int]]:
    specs = params.get("items") or []
    if not specs:
        raise missing_param("items")
    found = []
    for index, spec in enumerate(specs):
        if not spec.get("price"):
            raise missing_param(f"items[{index}][price]")
        price = core.store.get("price", spec["price"], f"items[{index}][price]")
        quantity = int(spec.get("quantity", 1))
        billing.check_quantity(quantity, f"items[{index}][quantity]")
        found.append((price, quantity))
    return found


def check_cancel(params: JSON, at: int) -> None:
    """Stripe's rules on scheduling a cancellation: ``cancel_at`` is in the future, and is not
    sent together with ``cancel_at_period_end=true``."""
    cancel_at = params.get("cancel_at")
    if cancel_at in (None, ""):
        return
    if params.get("cancel_at_period_end"):
        raise exclusive_params("cancel_at", "cancel_at_period_end")
    if isinstance(cancel_at, int) and cancel_at <= at:
        raise invalid_param("cancel_at", "Invalid timestamp: must be in the future.")
    if isinstance(cancel_at, int) and cancel_at > MAX_TIMESTAMP:
        raise invalid_param("cancel_at", "Invalid timestamp: must be before year 10000.")


def check_proration_date(value: object, param: str) -> None:
    """``proration_date`` must be a timestamp Stripe (and a calendar) can represent."""
    if value is not None and (not isinstance(value, int) or not 0 < value <= MAX_TIMESTAMP):
        raise invalid_param(param, f"Invalid timestamp: {value}")


def check_trial_end(value: object, at: int, param: str = "trial_end") -> None:
    """A ``trial_end`` timestamp is in the future, and at most five years ahead (as on Stripe)."""
    if not isinstance(value, int):
        return
    if value <= at:
        raise invalid_param(param, "Invalid timestamp: must be in the future.")
    if value > at + TRIAL_END_MAX:
        raise invalid_param(
            param, "Invalid timestamp: can be no more than five years in the future."
        )


def _trial_end(params: JSON, at: int, prices: list[tuple[JSON, int]]) -> int | None:
    if isinstance(params.get("trial_end"), int):
        check_trial_end(params["trial_end"], at)
        return int(params["trial_end"])
    days = params.get("trial_period_days")
    if days is None and params.get("trial_from_plan"):
        days = (prices[0][0]["recurring"] or {}).get("trial_period_days")
    return at + int(days) * DAY if days else None


@router.route("POST", "/v1/subscriptions")
def create(core: SandboxCore, params: JSON) -> JSON:
    """Create a subscription and bill its first invoice."""
    if not params.get("customer"):
        raise missing_param("customer")
    customer = core.store.get("customer", params["customer"], "customer")
    at = core.now_for(customer)
    items = _items(core, params)
    check_cancel(params, at)
    pm = params.get("default_payment_method")
    if pm:
        owned = core.store.get("payment_method", pm, "default_payment_method")
        if owned["customer"] != customer["id"]:
            raise no_such("payment_method", pm, "default_payment_method")
    sub = billing.create_subscription(
        core,
        customer,
        items,
        at,
        trial_end=_trial_end(params, at, items),
        metadata=params.get("metadata") or {},
        default_payment_method=pm,
        payment_behavior=params.get("payment_behavior", "allow_incomplete"),
    )
    if params.get("cancel_at_period_end") or params.get("cancel_at"):
        _schedule_cancel(sub, params, at)
    return sub


def _schedule_cancel(sub: JSON, params: JSON, at: int) -> None:
    if "cancel_at_period_end" in params:
        flag = bool(params["cancel_at_period_end"])
        sub["cancel_at_period_end"] = flag
        sub["cancel_at"] = billing.period_of(sub)[1] if flag else None
        sub["canceled_at"] = at if flag else None
    if "cancel_at" in params:
        value = params["cancel_at"]
        if isinstance(value, str) and value:
            value = billing.period_of(sub)[1]
        sub["cancel_at"] = value or None
        sub["cancel_at_period_end"] = bool(value) and value == billing.period_of(sub)[1]
        sub["canceled_at"] = at if value else None
    if sub["cancel_at"] is None:
        sub["cancellation_details"].update(comment=None, feedback=None, reason=None)
    else:
        sub["cancellation_details"]["reason"] = "cancellation_requested"


@router.route("GET", "/v1/subscriptions/{subscription_exposed_id}")
def retrieve(core: SandboxCore, params: JSON, subscription_exposed_id: str) -> JSON:
    """Retrieve a subscription."""
    return get_subscription(core, subscription_exposed_id, "id")


def update_subscription(core: SandboxCore, sub: JSON, params: JSON) -> JSON:
    """Apply a subscription update (shared by the API and the hosted portal)."""
    at = core.now_for(sub)
    if sub["status"] in _ENDED and set(params) - {"metadata", "cancellation_details", "expand"}:
        raise StripeError(
            "A canceled subscription can only update its cancellation_details and metadata.",
        )
    check_cancel(params, at)
    check_proration_date(params.get("proration_date"), "proration_date")
    check_trial_end(params.get("trial_end"), at)
    if params.get("items"):  # a dry run: refuse bad items before anything changes
        billing.plan_change(core, copy.deepcopy(sub), params["items"], at, "none")
    before = copy.deepcopy(sub)
    behavior = params.get("proration_behavior", "create_prorations")
    when = params.get("proration_date", at)
    if params.get("default_payment_method"):
        pm = core.store.get(
            "payment_method", params["default_payment_method"], "default_payment_method"
        )
        if pm["customer"] != sub["customer"]:
            raise no_such("payment_method", pm["id"], "default_payment_method")
        sub["default_payment_method"] = pm["id"]
    for key in ("description",):
        if key in params:
            sub[key] = params[key] or None
    apply_metadata(sub, params.get("metadata"))
    if "cancel_at_period_end" in params or "cancel_at" in params:
        _schedule_cancel(sub, params, at)
    if "pause_collection" in params:
        pause = params["pause_collection"]
        sub["pause_collection"] = (
            {"behavior": pause["behavior"], "resumes_at": pause.get("resumes_at")}
            if pause
            else None
        )
    if "cancellation_details" in params:
        for key in ("comment", "feedback"):
            if key in params["cancellation_details"]:
                sub["cancellation_details"][key] = params["cancellation_details"][key] or None
    ended_trial = _update_trial(sub, params, at)
    if params.get("items"):
        change = billing.plan_change(core, sub, params["items"], when, behavior)
        if change.changed:
            billing.apply_plan_change(core, sub, change, at, behavior)
    billing.emit_updated(core, sub, before, at)
    if ended_trial:
        if not core.store.secret(sub["id"]).get("trial_notice_sent"):
            trial_notice(core, sub, at)
        renew(core, sub, at, now=True)
    return sub


def _update_trial(sub: JSON, params: JSON, at: int) -> bool:
    """Apply ``trial_end``; True when the trial must end now."""
    value = params.get("trial_end")
    if value is None:
        return False
    if value == "now":
        return bool(sub["status"] == "trialing")
    if not isinstance(value, int) or value <= at:
        raise invalid_param("trial_end", "Invalid timestamp: must be in the future or 'now'.")
    check_trial_end(value, at)
    sub.update(trial_end=value, trial_start=sub["trial_start"] or at, billing_cycle_anchor=value)
    if sub["status"] in ("active", "trialing"):
        sub["status"] = "trialing"
        for item in sub["items"]["data"]:
            item["current_period_end"] = value
    return False


@router.route("POST", "/v1/subscriptions/{subscription_exposed_id}")
def update(core: SandboxCore, params: JSON, subscription_exposed_id: str) -> JSON:
    """Update items (with prorations), cancellation schedule, pause_collection, trial, metadata."""
    return update_subscription(core, get_subscription(core, subscription_exposed_id, "id"), params)


@router.route("DELETE", "/v1/subscriptions/{subscription_exposed_id}")
def cancel(core: SandboxCore, params: JSON, subscription_exposed_id: str) -> JSON:
    """Cancel a subscription now (``prorate``: credit unused time; ``invoice_now``: bill it)."""
    sub = get_subscription(core, subscription_exposed_id, "id")
    details = params.get("cancellation_details") or {}
    for key in ("comment", "feedback"):
        if details.get(key):
            sub["cancellation_details"][key] = details[key]
    billing.cancel(
        core,
        sub,
        core.now_for(sub),
        prorate=bool(params.get("prorate")),
        invoice_now=bool(params.get("invoice_now")),
    )
    return sub


@router.route("POST", "/v1/subscriptions/{subscription}/pause")
def pause(core: SandboxCore, params: JSON, subscription: str) -> JSON:
    """Pause a subscription (status ``paused``; no invoices until resumed)."""
    return pause_subscription(core, get_subscription(core, subscription))


def pause_subscription(core: SandboxCore, sub: JSON) -> JSON:
    """Move ``sub`` to ``paused`` (``customer.subscription.paused`` and ``.updated``)."""
    if sub["status"] not in ("active", "trialing", "past_due"):
        raise StripeError(f"A subscription with status {sub['status']} cannot be paused.")
    at = core.now_for(sub)
    before = copy.deepcopy(sub)
    sub["status"] = "paused"
    sub["status_details"] = None
    emit(core, "customer.subscription.paused", sub, at=at)
    billing.emit_updated(core, sub, before, at)
    return sub


@router.route("POST", "/v1/subscriptions/{subscription}/resume")
def resume(core: SandboxCore, params: JSON, subscription: str) -> JSON:
    """Resume a paused subscription.

    ``billing_cycle_anchor[type]=now`` (the default) starts a new period now and invoices it;
    ``unchanged`` keeps the anchor and bills the rest of the current period as a proration
    (unless ``proration_behavior=none``).
    """
    sub = get_subscription(core, subscription)
    if sub["status"] != "paused":
        raise StripeError("Only paused subscriptions can be resumed.", param="subscription")
    at = core.now_for(sub)
    before = copy.deepcopy(sub)
    sub["status"] = "active"
    emit(core, "customer.subscription.resumed", sub, at=at)
    anchor = (params.get("billing_cycle_anchor") or {}).get("type", "now")
    if anchor == "now":
        billing.emit_updated(core, sub, before, at)
        renew(core, sub, at, reset_anchor=True, now=True)
        return sub
    billing.resume_unchanged(core, sub, at, params.get("proration_behavior", "create_prorations"))
    billing.emit_updated(core, sub, before, at)
    return sub


@router.route("GET", "/v1/subscriptions")
def list_subscriptions(core: SandboxCore, params: JSON) -> JSON:
    """List subscriptions by ``customer``, ``status`` (default: not canceled), ``price``."""
    check_customer_filter(core, params)
    status = params.get("status")

    def keep(sub: JSON) -> bool:
        if status is None and sub["status"] in _ENDED:
            return False
        if status not in (None, "all", sub["status"]):
            return False
        prices = {item["price"]["id"] for item in sub["items"]["data"]}
        return (
            params.get("customer", sub["customer"]) == sub["customer"]
            and params.get("price", next(iter(prices))) in prices
            and params.get("test_clock", sub["test_clock"]) == sub["test_clock"]
        )

    return list_of(core, "subscription", params, "/v1/subscriptions", keep)


@router.route("GET", "/v1/subscriptions/search")
def search(core: SandboxCore, params: JSON) -> JSON:
    """Search subscriptions by ``status``, ``customer`` and ``metadata['k']``."""
    return search_page(
        core.store.searchable(core.store.all("subscription")),
        params,
        "/v1/subscriptions/search",
        SEARCH_FIELDS,
    )


def _item(core: SandboxCore, item_id: str) -> JSON:
    item = core.store.subscription_item(item_id)
    if item is None:
        raise no_such("subscription_item", item_id)
    return item


@router.route("GET", "/v1/subscription_items")
def list_items(core: SandboxCore, params: JSON) -> JSON:
    """List a subscription's items."""
    if not params.get("subscription"):
        raise missing_param("subscription")
    sub = get_subscription(core, params["subscription"])
    url = f"/v1/subscription_items?subscription={sub['id']}"
    return paginate(sub["items"]["data"], params, url)


@router.route("GET", "/v1/subscription_items/{item}")
def retrieve_item(core: SandboxCore, params: JSON, item: str) -> JSON:
    """Retrieve a subscription item."""
    return _item(core, item)


@router.route("POST", "/v1/subscription_items/{item}")
def update_item(core: SandboxCore, params: JSON, item: str) -> JSON:
    """Change an item's price or quantity (prorating like a subscription update)."""
    obj = _item(core, item)
    sub = get_subscription(core, obj["subscription"])
    spec: dict[str, Any] = {"id": item}
    spec.update({key: params[key] for key in ("price", "quantity") if key in params})
    update_params: JSON = {
        key: params[key] for key in ("proration_behavior", "proration_date") if key in params
    }
    apply_metadata(obj, params.get("metadata"))
    update_subscription(core, sub, {**update_params, "items": [spec]})
    return _item(core, item)
