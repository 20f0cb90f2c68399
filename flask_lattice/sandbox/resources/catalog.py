"""``/v1/products`` and ``/v1/prices``: the catalog, with lookup keys."""

from __future__ import annotations

import copy

from ..api import Router
from ..clock import MAX_INTERVAL_COUNT
from ..core import SandboxCore
from ..events import changes, emit
from ..ids import new_id
from ..objects.catalog import price as new_price
from ..objects.catalog import product as new_product
from ..search import search_page
from ..wire import JSON, StripeError, exclusive_params, invalid_param, missing_param
from . import apply_metadata, list_of

router = Router()

PRODUCT_SEARCH = frozenset({"active", "name", "metadata", "description"})
PRICE_SEARCH = frozenset({"active", "product", "lookup_key", "currency", "type", "metadata"})


def _update_product(obj: JSON, params: JSON) -> None:
    for key in ("name", "active", "description", "default_price", "url", "unit_label"):
        if key in params:
            obj[key] = params[key] if params[key] != "" else None
    apply_metadata(obj, params.get("metadata"))


@router.route("POST", "/v1/products")
def create_product(core: SandboxCore, params: JSON) -> JSON:
    """Create a product (``id`` may be chosen)."""
    if not params.get("name"):
        raise missing_param("name")
    product_id = params.get("id") or new_id("prod", 14)
    if product_id in core.store.objects.get("product", {}):
        raise StripeError(
            f"Product already exists with ID: {product_id}",
            param="id",
            code="resource_already_exists",
        )
    at = core.clock.now()
    product = new_product(product_id, at, params["name"])
    _update_product(product, {k: v for k, v in params.items() if k != "id"})
    core.store.put(product)
    emit(core, "product.created", product, at=at)
    return product


@router.route("GET", "/v1/products/{id}")
def retrieve_product(core: SandboxCore, params: JSON, id: str) -> JSON:
    """Retrieve a product."""
    return core.store.get("product", id)


@router.route("POST", "/v1/products/{id}")
def update_product(core: SandboxCore, params: JSON, id: str) -> JSON:
    """Update a product."""
    product = core.store.get("product", id)
    before = copy.deepcopy(product)
    at = core.clock.now()
    _update_product(product, params)
    previous = changes(before, product)
    if previous:
        product["updated"] = at
        emit(core, "product.updated", product, at=at, previous=previous)
    return product


@router.route("GET", "/v1/products")
def list_products(core: SandboxCore, params: JSON) -> JSON:
    """List products, filtered by ``active`` / ``ids``."""

    def keep(obj: JSON) -> bool:
        return params.get("active", obj["active"]) == obj["active"] and (
            "ids" not in params or obj["id"] in params["ids"]
        )

    return list_of(core, "product", params, "/v1/products", keep)


@router.route("GET", "/v1/products/search")
def search_products(core: SandboxCore, params: JSON) -> JSON:
    """Search products."""
    return search_page(
        core.store.searchable(core.store.all("product")),
        params,
        "/v1/products/search",
        PRODUCT_SEARCH,
    )


def _take_lookup_key(core: SandboxCore, key: str, transfer: bool, at: int) -> None:
    for other in core.store.all("price"):
        if other["lookup_key"] == key:
            if not transfer:
                raise StripeError(
                    f"A price ({other['id']}) already uses that lookup key.",
                    param="lookup_key",
                )
            before = copy.deepcopy(other)
            other["lookup_key"] = None
            emit(core, "price.updated", other, at=at, previous=changes(before, other))


@router.route("POST", "/v1/prices")
def create_price(core: SandboxCore, params: JSON) -> JSON:
    """Create a price (recurring when ``recurring[interval]`` is given)."""
    if "currency" not in params:
        raise missing_param("currency")
    at = core.clock.now()
    if params.get("product"):
        product = core.store.get("product", params["product"], "product")
    elif params.get("product_data"):
        product = create_product(core, {"name": params["product_data"].get("name")})
    else:
        raise missing_param("product")
    if "unit_amount" not in params and "unit_amount_decimal" not in params:
        raise missing_param("unit_amount")
    if "unit_amount" in params and "unit_amount_decimal" in params:
        raise exclusive_params("unit_amount", "unit_amount_decimal")
    recurring = params.get("recurring") or {}
    if recurring:
        check_recurring(recurring, "recurring")
    amount = int(params.get("unit_amount", float(params.get("unit_amount_decimal", 0))))
    price = new_price(
        new_id("price", 14),
        at,
        product=product["id"],
        currency=params["currency"].lower(),
        unit_amount=amount,
        interval=recurring.get("interval"),
        interval_count=recurring.get("interval_count", 1),
    )
    if params.get("lookup_key"):
        _take_lookup_key(core, params["lookup_key"], params.get("transfer_lookup_key", False), at)
    _update_price(price, params)
    core.store.put(price)
    emit(core, "price.created", price, at=at)
    return price


def check_recurring(recurring: JSON, prefix: str) -> None:
    """Stripe's bounds on ``recurring``: a count of at least 1, an interval of at most 3 years."""
    interval = recurring.get("interval")
    if not interval:
        raise missing_param(f"{prefix}[interval]")
    count = recurring.get("interval_count", 1)
    param = f"{prefix}[interval_count]"
    if not isinstance(count, int) or count < 1:
        raise invalid_param(param, f"Invalid {param}: must be greater than or equal to 1.")
    if count > MAX_INTERVAL_COUNT.get(interval, 0):
        raise invalid_param(
            param,
            f"Invalid {param}: the maximum billing interval is 3 years (3 years, 36 months, "
            "156 weeks or 1095 days).",
        )


def _update_price(price: JSON, params: JSON) -> None:
    for key in ("active", "lookup_key", "nickname", "tax_behavior"):
        if key in params:
            price[key] = params[key] if params[key] != "" else None
    apply_metadata(price, params.get("metadata"))


@router.route("GET", "/v1/prices/{price}")
def retrieve_price(core: SandboxCore, params: JSON, price: str) -> JSON:
    """Retrieve a price."""
    return core.store.get("price", price)


@router.route("POST", "/v1/prices/{price}")
def update_price(core: SandboxCore, params: JSON, price: str) -> JSON:
    """Update a price's ``active``, ``lookup_key`` (with ``transfer_lookup_key``), metadata."""
    obj = core.store.get("price", price)
    at = core.clock.now()
    before = copy.deepcopy(obj)
    key = params.get("lookup_key")
    if key and key != obj["lookup_key"]:
        _take_lookup_key(core, key, params.get("transfer_lookup_key", False), at)
    _update_price(obj, params)
    previous = changes(before, obj)
    if previous:
        emit(core, "price.updated", obj, at=at, previous=previous)
    return obj


@router.route("GET", "/v1/prices")
def list_prices(core: SandboxCore, params: JSON) -> JSON:
    """List prices by ``active``, ``product``, ``type``, ``currency``, ``lookup_keys[]``."""
    interval = (params.get("recurring") or {}).get("interval")

    def keep(obj: JSON) -> bool:
        return (
            all(
                obj[key] == params[key]
                for key in ("active", "product", "type", "currency")
                if key in params
            )
            and ("lookup_keys" not in params or obj["lookup_key"] in params["lookup_keys"])
            and (interval is None or (obj["recurring"] or {}).get("interval") == interval)
        )

    return list_of(core, "price", params, "/v1/prices", keep)


@router.route("GET", "/v1/prices/search")
def search_prices(core: SandboxCore, params: JSON) -> JSON:
    """Search prices."""
    return search_page(
        core.store.searchable(core.store.all("price")), params, "/v1/prices/search", PRICE_SEARCH
    )
