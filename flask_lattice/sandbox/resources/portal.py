"""``/v1/billing_portal``: configurations (a default always exists) and sessions."""

from __future__ import annotations

import copy

from ..api import Router
from ..core import SandboxCore
from ..ids import new_id
from ..objects.portal import portal_configuration, portal_session
from ..wire import JSON, StripeError, missing_param
from . import apply_metadata, list_of

router = Router()

FLOWS = (
    "payment_method_update",
    "subscription_cancel",
    "subscription_pause",
    "subscription_update",
    "subscription_update_confirm",
)


def default_configuration(core: SandboxCore) -> JSON:
    """The default portal configuration, created on first use."""
    for config in core.store.all("billing_portal.configuration"):
        if config["is_default"]:
            return config
    config = portal_configuration(new_id("bpc", 24), core.clock.now(), is_default=True)
    return core.store.put(config)


def _merge(target: JSON, changes: JSON) -> None:
    """Deep-merge request params into an object's nested settings."""
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value if value != "" else None


def _configure(core: SandboxCore, config: JSON, params: JSON) -> None:
    features = copy.deepcopy(params.get("features") or {})
    update = features.get("subscription_update") or {}
    if "products" in update:
        products = []
        for index, spec in enumerate(update["products"] or []):
            product = core.store.get(
                "product",
                spec["product"],
                f"features[subscription_update][products][{index}][product]",
            )
            for price in spec.get("prices", []):
                core.store.get(
                    "price", price, f"features[subscription_update][products][{index}][prices]"
                )
            products.append(
                {
                    "adjustable_quantity": {"enabled": False, "maximum": None, "minimum": 1},
                    "prices": list(spec.get("prices", [])),
                    "product": product["id"],
                }
            )
        update["products"] = products
    _merge(config["features"], features)
    for key in ("business_profile", "login_page"):
        _merge(config[key], params.get(key) or {})
    for key in ("default_return_url", "name", "active"):
        if key in params:
            config[key] = params[key] if params[key] != "" else None
    apply_metadata(config, params.get("metadata"))


@router.route("POST", "/v1/billing_portal/configurations")
def create_configuration(core: SandboxCore, params: JSON) -> JSON:
    """Create a portal configuration."""
    default_configuration(core)
    config = portal_configuration(new_id("bpc", 24), core.clock.now(), is_default=False)
    _configure(core, config, params)
    return core.store.put(config)


@router.route("GET", "/v1/billing_portal/configurations/{configuration}")
def retrieve_configuration(core: SandboxCore, params: JSON, configuration: str) -> JSON:
    """Retrieve a portal configuration."""
    default_configuration(core)
    return core.store.get("billing_portal.configuration", configuration, "configuration")


@router.route("POST", "/v1/billing_portal/configurations/{configuration}")
def update_configuration(core: SandboxCore, params: JSON, configuration: str) -> JSON:
    """Update a portal configuration."""
    default_configuration(core)
    config = core.store.get("billing_portal.configuration", configuration, "configuration")
    _configure(core, config, params)
    config["updated"] = core.clock.now()
    return config


@router.route("GET", "/v1/billing_portal/configurations")
def list_configurations(core: SandboxCore, params: JSON) -> JSON:
    """List portal configurations (by ``active`` / ``is_default``)."""
    default_configuration(core)

    def keep(obj: JSON) -> bool:
        return all(obj[key] == params[key] for key in ("active", "is_default") if key in params)

    return list_of(
        core, "billing_portal.configuration", params, "/v1/billing_portal/configurations", keep
    )


def _flow(core: SandboxCore, customer: str, config: JSON, data: JSON) -> JSON:
    kind = data["type"]
    if kind not in FLOWS:
        raise StripeError(
            f"The sandbox does not emulate the {kind} portal flow.", param="flow_data[type]"
        )
    flow: JSON = {
        "after_completion": {
            "hosted_confirmation": None,
            "redirect": None,
            "type": "portal_homepage",
        },
        "customer_update": None,
        "subscription_cancel": None,
        "subscription_pause": None,
        "subscription_update": None,
        "subscription_update_confirm": None,
        "type": kind,
    }
    after = data.get("after_completion")
    if after:
        flow["after_completion"].update(type=after["type"])
        if after["type"] == "redirect":
            redirect = after.get("redirect") or {}
            if not redirect.get("return_url"):
                raise missing_param("flow_data[after_completion][redirect][return_url]")
            flow["after_completion"]["redirect"] = {"return_url": redirect["return_url"]}
        if after["type"] == "hosted_confirmation":
            message = (after.get("hosted_confirmation") or {}).get("custom_message")
            flow["after_completion"]["hosted_confirmation"] = {"custom_message": message}
    if kind == "payment_method_update":
        return flow
    spec = data.get(kind)
    if not spec:
        raise missing_param(f"flow_data[{kind}]")
    if not spec.get("subscription"):
        raise missing_param(f"flow_data[{kind}][subscription]")
    sub = core.store.get("subscription", spec["subscription"], f"flow_data[{kind}][subscription]")
    if sub["customer"] != customer:
        raise StripeError(
            "The subscription does not belong to this customer.",
            param=f"flow_data[{kind}][subscription]",
        )
    if sub["status"] == "canceled":
        raise StripeError(
            "You can't update a canceled subscription.", param=f"flow_data[{kind}][subscription]"
        )
    if kind == "subscription_cancel":
        flow[kind] = {"retention": None, "subscription": sub["id"]}
    elif kind == "subscription_pause":
        _check_pausable(config, sub)
        flow[kind] = {"subscription": sub["id"]}
    elif kind == "subscription_update":
        flow[kind] = {"subscription": sub["id"]}
    else:
        if not spec.get("items"):
            raise missing_param(f"flow_data[{kind}][items]")
        items = []
        for index, item in enumerate(spec["items"]):
            if not item.get("id"):
                raise missing_param(f"flow_data[{kind}][items][{index}][id]")
            if item.get("price"):
                core.store.get("price", item["price"], f"flow_data[{kind}][items][{index}][price]")
            items.append(
                {"id": item["id"], "price": item.get("price"), "quantity": item.get("quantity")}
            )
        flow[kind] = {"discounts": [], "items": items, "subscription": sub["id"]}
    return flow


def _check_pausable(config: JSON, sub: JSON) -> None:
    """A pause deep link needs the configuration's pause feature and a pausable subscription."""
    param = "flow_data[subscription_pause][subscription]"
    if not config["features"]["subscription_pause"]["enabled"]:
        raise StripeError(
            "The `subscription_pause` flow requires the `features.subscription_pause` feature "
            f"to be enabled on the portal configuration {config['id']}.",
            param="flow_data[type]",
        )
    if sub["status"] not in ("active", "trialing", "past_due"):
        raise StripeError(
            f"A subscription with status {sub['status']} cannot be paused.", param=param
        )


@router.route("POST", "/v1/billing_portal/sessions")
def create_session(core: SandboxCore, params: JSON) -> JSON:
    """Create a portal session (optionally deep-linked with ``flow_data``)."""
    if not params.get("customer"):
        raise missing_param("customer")
    customer = core.store.get("customer", params["customer"], "customer")
    config = (
        core.store.get("billing_portal.configuration", params["configuration"], "configuration")
        if params.get("configuration")
        else default_configuration(core)
    )
    flow = (
        _flow(core, customer["id"], config, params["flow_data"])
        if params.get("flow_data")
        else None
    )
    session_id = new_id("bps", 24)
    session = portal_session(
        session_id,
        core.now_for(customer),
        customer=customer["id"],
        configuration=config["id"],
        return_url=params.get("return_url") or config["default_return_url"],
        flow=flow,
        url=f"{core.base_url}/p/session/{session_id}",
    )
    return core.store.put(session)
