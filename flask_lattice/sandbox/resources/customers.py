"""``/v1/customers``: create, retrieve, update, delete, list, search, payment methods."""

from __future__ import annotations

import copy

from .. import billing
from ..api import Router
from ..core import SandboxCore
from ..events import changes, emit
from ..ids import new_id
from ..objects.customers import customer as new_customer
from ..search import search_page
from ..wire import JSON, StripeError, no_such
from . import apply_metadata, list_of

router = Router()

_ADDRESS = ("city", "country", "line1", "line2", "postal_code", "state")
_SIMPLE = ("email", "name", "description", "phone", "preferred_locales", "tax_exempt")
SEARCH_FIELDS = frozenset({"created", "email", "name", "phone", "metadata"})
CLOCK_CUSTOMER_LIMIT = 3
"""Stripe's limit of customers per test clock (docs.stripe.com/billing/testing/test-clocks)."""


def get_customer(core: SandboxCore, customer_id: str, param: str = "customer") -> JSON:
    """A live customer, or Stripe's 404 (deleted customers included)."""
    return core.store.get("customer", customer_id, param)


def _apply(core: SandboxCore, customer: JSON, params: JSON, at: int) -> None:
    for key in _SIMPLE:
        if key in params:
            customer[key] = params[key] or None
    if customer["preferred_locales"] is None:
        customer["preferred_locales"] = []
    if "address" in params:
        address = params["address"]
        customer["address"] = {k: address.get(k) for k in _ADDRESS} if address else None
    apply_metadata(customer, params.get("metadata"))
    settings = params.get("invoice_settings") or {}
    if "default_payment_method" in settings:
        pm_id = settings["default_payment_method"] or None
        if pm_id:
            pm = core.store.get("payment_method", pm_id, "invoice_settings[default_payment_method]")
            if pm["customer"] != customer["id"]:
                raise no_such("payment_method", pm_id, "invoice_settings[default_payment_method]")
        customer["invoice_settings"]["default_payment_method"] = pm_id


@router.route("POST", "/v1/customers")
def create(core: SandboxCore, params: JSON) -> JSON:
    """Create a customer (optionally on a test clock, optionally with a payment method)."""
    clock = params.get("test_clock")
    if clock:
        core.store.get("test_helpers.test_clock", clock, "test_clock")
        on_clock = [c for c in core.store.all("customer") if c["test_clock"] == clock]
        if len(on_clock) >= CLOCK_CUSTOMER_LIMIT:
            raise StripeError(
                f"The test clock {clock} already has the maximum of {CLOCK_CUSTOMER_LIMIT} "
                "customers.",
                param="test_clock",
            )
    customer = new_customer(new_id("cus", 14), 0, clock)
    at = core.now_for(customer)
    customer["created"] = at
    pm = None
    if params.get("payment_method"):
        pm = billing.resolve_payment_method(core, params["payment_method"], at, "payment_method")
    _apply(core, customer, {**params, "invoice_settings": {}}, at)
    core.store.put(customer)
    emit(core, "customer.created", customer, at=at)
    if pm is not None:
        billing.attach(core, pm, customer, at)
    default = (params.get("invoice_settings") or {}).get("default_payment_method")
    if pm is not None and default == params["payment_method"]:
        default = pm["id"]
    if default:
        before = copy.deepcopy(customer)
        _apply(core, customer, {"invoice_settings": {"default_payment_method": default}}, at)
        emit(core, "customer.updated", customer, at=at, previous=changes(before, customer))
    return customer


@router.route("GET", "/v1/customers/{customer}")
def retrieve(core: SandboxCore, params: JSON, customer: str) -> JSON:
    """Retrieve a customer (a deleted one answers with ``deleted: true``)."""
    if core.store.private.get(customer, {}).get("deleted"):
        return {"id": customer, "object": "customer", "deleted": True}
    return get_customer(core, customer, "id")


@router.route("POST", "/v1/customers/{customer}")
def update(core: SandboxCore, params: JSON, customer: str) -> JSON:
    """Update a customer's fields, metadata and default payment method."""
    obj = get_customer(core, customer, "id")
    at = core.now_for(obj)
    before = copy.deepcopy(obj)
    _apply(core, obj, params, at)
    previous = changes(before, obj)
    if previous:
        emit(core, "customer.updated", obj, at=at, previous=previous)
    return obj


@router.route("DELETE", "/v1/customers/{customer}")
def delete(core: SandboxCore, params: JSON, customer: str) -> JSON:
    """Delete a customer, canceling its subscriptions."""
    obj = get_customer(core, customer, "id")
    at = core.now_for(obj)
    for sub in core.store.all("subscription"):
        if sub["customer"] == customer and sub["status"] not in ("canceled", "incomplete_expired"):
            billing.cancel(core, sub, at)
    del core.store.objects["customer"][customer]
    core.store.secret(customer)["deleted"] = True
    emit(core, "customer.deleted", obj, at=at)
    return {"id": customer, "object": "customer", "deleted": True}


@router.route("GET", "/v1/customers")
def list_customers(core: SandboxCore, params: JSON) -> JSON:
    """List customers, filtered by ``email`` / ``test_clock`` / ``created``."""

    def keep(obj: JSON) -> bool:
        return all(obj[key] == params[key] for key in ("email", "test_clock") if key in params)

    return list_of(core, "customer", params, "/v1/customers", keep)


@router.route("GET", "/v1/customers/search")
def search(core: SandboxCore, params: JSON) -> JSON:
    """Search customers by ``email``, ``name``, ``phone`` and ``metadata['k']``."""
    return search_page(
        core.store.searchable(core.store.all("customer")),
        params,
        "/v1/customers/search",
        SEARCH_FIELDS,
    )


@router.route("GET", "/v1/customers/{customer}/payment_methods")
def payment_methods(core: SandboxCore, params: JSON, customer: str) -> JSON:
    """List a customer's attached payment methods."""
    get_customer(core, customer)
    return list_of(
        core,
        "payment_method",
        params,
        f"/v1/customers/{customer}/payment_methods",
        lambda pm: pm["customer"] == customer and params.get("type", pm["type"]) == pm["type"],
    )


@router.route("GET", "/v1/customers/{customer}/payment_methods/{payment_method}")
def payment_method(core: SandboxCore, params: JSON, customer: str, payment_method: str) -> JSON:
    """Retrieve one of a customer's payment methods."""
    get_customer(core, customer)
    pm = core.store.get("payment_method", payment_method, "payment_method")
    if pm["customer"] != customer:
        raise no_such("payment_method", payment_method, "payment_method")
    return pm
