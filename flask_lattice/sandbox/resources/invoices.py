"""``/v1/invoices`` (retrieve, list, search, lines, finalize, pay, void, create_preview)."""

from __future__ import annotations

from .. import billing
from ..api import Router
from ..clock import MAX_TIMESTAMP
from ..core import SandboxCore
from ..listing import paginate
from ..search import search_page
from ..wire import JSON, StripeError, exclusive_params, invalid_param, missing_param
from . import check_customer_filter, list_of
from .subscriptions import check_proration_date, check_trial_end

router = Router()

SEARCH_FIELDS = frozenset(
    {"created", "currency", "customer", "number", "status", "subscription", "total", "metadata"}
)


def _subscription_of(invoice: JSON) -> str | None:
    details = (invoice["parent"] or {}).get("subscription_details") or {}
    return details.get("subscription")


@router.route("GET", "/v1/invoices/{invoice}")
def retrieve(core: SandboxCore, params: JSON, invoice: str) -> JSON:
    """Retrieve an invoice."""
    return core.store.get("invoice", invoice)


@router.route("GET", "/v1/invoices")
def list_invoices(core: SandboxCore, params: JSON) -> JSON:
    """List invoices by ``customer``, ``subscription``, ``status``."""
    check_customer_filter(core, params)

    def keep(inv: JSON) -> bool:
        return (
            params.get("customer", inv["customer"]) == inv["customer"]
            and params.get("status", inv["status"]) == inv["status"]
            and params.get("subscription", _subscription_of(inv)) == _subscription_of(inv)
        )

    return list_of(core, "invoice", params, "/v1/invoices", keep)


@router.route("GET", "/v1/invoices/search")
def search(core: SandboxCore, params: JSON) -> JSON:
    """Search invoices by ``customer``, ``status``, ``subscription``, ``metadata['k']``."""
    items = [
        {**inv, "subscription": _subscription_of(inv)}
        for inv in core.store.searchable(core.store.all("invoice"))
    ]
    page = search_page(items, params, "/v1/invoices/search", SEARCH_FIELDS)
    page["data"] = [core.store.get("invoice", inv["id"]) for inv in page["data"]]
    return page


@router.route("GET", "/v1/invoices/{invoice}/lines")
def lines(core: SandboxCore, params: JSON, invoice: str) -> JSON:
    """List an invoice's lines."""
    obj = core.store.get("invoice", invoice)
    return paginate(obj["lines"]["data"], params, f"/v1/invoices/{invoice}/lines")


@router.route("POST", "/v1/invoices/{invoice}/finalize")
def finalize(core: SandboxCore, params: JSON, invoice: str) -> JSON:
    """Finalize a draft invoice."""
    obj = core.store.get("invoice", invoice)
    return billing.finalize(core, obj, core.now_for(obj))


@router.route("POST", "/v1/invoices/{invoice}/pay")
def pay(core: SandboxCore, params: JSON, invoice: str) -> JSON:
    """Pay an open invoice now (402 card error when the charge fails)."""
    obj = core.store.get("invoice", invoice)
    at = core.now_for(obj)
    if obj["status"] == "draft":
        billing.finalize(core, obj, at)
        if obj["status"] == "paid":
            return obj
    pm = params.get("payment_method")
    if pm:
        core.store.get("payment_method", pm, "payment_method")
    error = billing.pay(core, obj, at, pm)
    if error:
        raise error
    return obj


@router.route("POST", "/v1/invoices/{invoice}/void")
def void(core: SandboxCore, params: JSON, invoice: str) -> JSON:
    """Void an invoice."""
    obj = core.store.get("invoice", invoice)
    return billing.void(core, obj, core.now_for(obj))


@router.route("POST", "/v1/invoices/{invoice}/mark_uncollectible")
def mark_uncollectible(core: SandboxCore, params: JSON, invoice: str) -> JSON:
    """Mark an invoice uncollectible."""
    obj = core.store.get("invoice", invoice)
    return billing.mark_uncollectible(core, obj, core.now_for(obj))


@router.route("POST", "/v1/invoices/create_preview")
def create_preview(core: SandboxCore, params: JSON) -> JSON:
    """Preview the invoice a subscription change produces (plan-swap prorations)."""
    sub_id = params.get("subscription")
    if not sub_id and not params.get("customer"):
        raise missing_param("customer")
    if not sub_id:
        raise StripeError(
            "The sandbox previews changes to existing subscriptions: pass `subscription`.",
            param="subscription",
        )
    sub = core.store.get("subscription", sub_id, "subscription")
    customer_id = params.get("customer") or sub["customer"]
    if customer_id != sub["customer"]:
        raise StripeError("The subscription does not belong to that customer.", param="customer")
    customer = core.store.get("customer", customer_id, "customer")
    details = dict(params.get("subscription_details") or {})
    at = core.now_for(customer)
    _check_details(details, at)
    return billing.preview(core, customer, sub, details, at)


def _check_details(details: JSON, at: int) -> None:
    """The timestamps of ``subscription_details`` obey the rules of a subscription update;
    ``now`` (valid for ``trial_end`` and ``resume_at``) is the customer's current time."""
    prefix = "subscription_details"
    if details.get("trial_end") != "now":
        check_trial_end(details.get("trial_end"), at, f"{prefix}[trial_end]")
    for key in ("trial_end", "resume_at"):
        if details.get(key) == "now":
            details[key] = at
    check_proration_date(details.get("proration_date"), f"{prefix}[proration_date]")
    cancel_at = details.get("cancel_at")
    if isinstance(cancel_at, int) and not at < cancel_at <= MAX_TIMESTAMP:
        raise invalid_param(
            f"{prefix}[cancel_at]",
            "Invalid timestamp: must be in the future."
            if cancel_at <= at
            else "Invalid timestamp: must be before year 10000.",
        )
    if details.get("cancel_at_period_end") and cancel_at not in (None, ""):
        raise exclusive_params(f"{prefix}[cancel_at]", f"{prefix}[cancel_at_period_end]")


@router.route("GET", "/v1/invoiceitems")
def list_invoiceitems(core: SandboxCore, params: JSON) -> JSON:
    """List invoice items by ``customer``, ``invoice`` and ``pending`` (not yet on an invoice)."""

    def keep(item: JSON) -> bool:
        if "pending" in params and (item["invoice"] is None) != bool(params["pending"]):
            return False
        return all(item[key] == params[key] for key in ("customer", "invoice") if key in params)

    return list_of(core, "invoiceitem", params, "/v1/invoiceitems", keep)


@router.route("GET", "/v1/invoiceitems/{invoiceitem}")
def retrieve_invoiceitem(core: SandboxCore, params: JSON, invoiceitem: str) -> JSON:
    """Retrieve an invoice item."""
    return core.store.get("invoiceitem", invoiceitem)


@router.route("GET", "/v1/payment_intents/{intent}")
def retrieve_payment_intent(core: SandboxCore, params: JSON, intent: str) -> JSON:
    """Retrieve the payment intent behind an invoice payment."""
    return core.store.get("payment_intent", intent, "intent")
