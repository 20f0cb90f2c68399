"""``/v1/checkout/sessions``: subscription-mode Checkout with a hosted payment page."""

from __future__ import annotations

from ..api import Router
from ..billing import check_customer_currency, check_prices, product_name
from ..clock import DAY
from ..core import SandboxCore
from ..events import emit
from ..ids import new_id
from ..listing import envelope, paginate
from ..objects.checkout import checkout_item, checkout_session
from ..wire import JSON, StripeError, exclusive_params, invalid_param, missing_param
from . import list_of

router = Router()

EXPIRES_MIN = 30 * 60
EXPIRES_MAX = DAY
TRIAL_END_MIN = 2 * DAY


def _line_items(core: SandboxCore, params: JSON) -> list[JSON]:
    specs = params.get("line_items") or []
    if not specs:
        raise missing_param("line_items")
    items = []
    for index, spec in enumerate(specs):
        if not spec.get("price"):
            raise missing_param(f"line_items[{index}][price]")
        price = core.store.get("price", spec["price"], f"line_items[{index}][price]")
        if not price["active"]:
            raise StripeError(
                f"The price specified ({price['id']}) is inactive.",
                param=f"line_items[{index}][price]",
            )
        if not price["recurring"]:
            raise StripeError(
                "You must specify at least one recurring price in `subscription` mode.",
                param=f"line_items[{index}][price]",
            )
        if spec.get("quantity") in (None, ""):
            raise StripeError(
                f"Quantity is required. Add `quantity` to `line_items[{index}]`.",
                code="parameter_missing",
                param=f"line_items[{index}][quantity]",
            )
        quantity = int(spec["quantity"])
        if quantity < 1:
            raise invalid_param(
                f"line_items[{index}][quantity]",
                "This value must be greater than or equal to 1.",
            )
        items.append(checkout_item(new_id("li"), price, quantity, product_name(core, price)))
    check_prices([item["price"] for item in items], "line_items")
    return items


@router.route("POST", "/v1/checkout/sessions")
def create(core: SandboxCore, params: JSON) -> JSON:
    """Create a subscription-mode Checkout Session."""
    if params.get("mode") != "subscription":
        raise StripeError("The sandbox emulates Checkout in mode=subscription only.", param="mode")
    if params.get("customer") and params.get("customer_email"):
        raise exclusive_params("customer", "customer_email")
    customer = (
        core.store.get("customer", params["customer"], "customer")
        if params.get("customer")
        else None
    )
    items = _line_items(core, params)
    if customer is not None:
        check_customer_currency(core, customer, items[0]["currency"], "line_items")
    at = core.now_for(customer)
    sub_data = params.get("subscription_data") or {}
    _check_times(params, sub_data, at)
    session_id = new_id("cs_test", 58)
    amount = sum(item["amount_total"] for item in items)
    session = checkout_session(
        session_id,
        at,
        mode="subscription",
        currency=items[0]["currency"],
        amount=amount,
        url=f"{core.base_url}/c/pay/{session_id}",
    )
    trial = sub_data.get("trial_period_days") or sub_data.get("trial_end")
    for key in ("cancel_url", "success_url", "client_reference_id", "customer_email", "locale"):
        session[key] = params.get(key) or None
    session.update(
        customer=customer["id"] if customer else None,
        allow_promotion_codes=params.get("allow_promotion_codes", False),
        metadata=dict(params.get("metadata") or {}),
        amount_total=0 if trial else amount,
    )
    if params.get("expires_at"):
        session["expires_at"] = params["expires_at"]
    core.store.put(session)
    core.store.secret(session_id).update(
        line_items=items,
        trial_days=sub_data.get("trial_period_days"),
        trial_end=sub_data.get("trial_end"),
        subscription_metadata=dict(sub_data.get("metadata") or {}),
    )
    return _with_line_items(core, session, params)


def _check_times(params: JSON, sub_data: JSON, at: int) -> None:
    """Stripe's bounds on a new session's ``expires_at`` and ``subscription_data`` trial.

    ``expires_at``: 30 minutes to 24 hours after creation; ``trial_period_days``: at least 1;
    ``trial_end``: at least 48 hours ahead (only one of the two).
    """
    expires_at = params.get("expires_at")
    if expires_at is not None and not at + EXPIRES_MIN <= expires_at <= at + EXPIRES_MAX:
        raise invalid_param(
            "expires_at",
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation."
            if expires_at > at
            else "The `expires_at` timestamp must be at least 30 minutes from Checkout Session "
            "creation.",
        )
    days, trial_end = sub_data.get("trial_period_days"), sub_data.get("trial_end")
    if days is not None and trial_end is not None:
        raise exclusive_params(
            "subscription_data[trial_end]", "subscription_data[trial_period_days]"
        )
    if days is not None and days < 1:
        raise invalid_param(
            "subscription_data[trial_period_days]",
            "The `subscription_data[trial_period_days]` parameter must be at least 1.",
        )
    if trial_end is not None and trial_end < at + TRIAL_END_MIN:
        raise invalid_param(
            "subscription_data[trial_end]",
            "The `subscription_data[trial_end]` timestamp must be at least 48 hours in the future.",
        )


def _with_line_items(core: SandboxCore, session: JSON, params: JSON) -> JSON:
    if "line_items" not in [path.split(".")[0] for path in params.get("expand", [])]:
        return session
    items = core.store.secret(session["id"])["line_items"]
    url = f"/v1/checkout/sessions/{session['id']}/line_items"
    return {**session, "line_items": envelope(items, url)}


@router.route("GET", "/v1/checkout/sessions/{session}")
def retrieve(core: SandboxCore, params: JSON, session: str) -> JSON:
    """Retrieve a Checkout Session (``expand[]=line_items`` works)."""
    return _with_line_items(core, core.store.get("checkout.session", session, "session"), params)


@router.route("GET", "/v1/checkout/sessions")
def list_sessions(core: SandboxCore, params: JSON) -> JSON:
    """List Checkout Sessions by ``customer``, ``status``, ``subscription``."""

    def keep(obj: JSON) -> bool:
        return all(
            obj[key] == params[key]
            for key in ("customer", "status", "subscription")
            if key in params
        )

    return list_of(core, "checkout.session", params, "/v1/checkout/sessions", keep)


@router.route("POST", "/v1/checkout/sessions/{session}/expire")
def expire(core: SandboxCore, params: JSON, session: str) -> JSON:
    """Expire an open Checkout Session."""
    obj = core.store.get("checkout.session", session, "session")
    if obj["status"] != "open":
        raise StripeError(
            f"Only Checkout Sessions with a status of `open` can be expired. This session has a "
            f"status of `{obj['status']}`.",
            param="session",
        )
    obj.update(status="expired", url=None)
    emit(
        core,
        "checkout.session.expired",
        obj,
        at=core.now_for(core.store.find(obj["customer"] or "")),
    )
    return obj


@router.route("GET", "/v1/checkout/sessions/{session}/line_items")
def line_items(core: SandboxCore, params: JSON, session: str) -> JSON:
    """List a Checkout Session's line items."""
    core.store.get("checkout.session", session, "session")
    items = core.store.secret(session)["line_items"]
    return paginate(items, params, f"/v1/checkout/sessions/{session}/line_items")
