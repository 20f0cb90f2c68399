"""``/v1/payment_methods``: cards from Stripe's test numbers and tokens, attach and detach."""

from __future__ import annotations

from .. import billing
from ..api import Router
from ..cards import TEST_TOKENS, normalize, number_error
from ..core import SandboxCore
from ..events import emit
from ..wire import JSON, StripeError, missing_param
from . import list_of

router = Router()


@router.route("POST", "/v1/payment_methods")
def create(core: SandboxCore, params: JSON) -> JSON:
    """Create a card payment method from ``card[number]`` or ``card[token]``-style test tokens."""
    if params.get("type") != "card":
        raise StripeError("The sandbox only supports type=card.", param="type")
    card = params.get("card") or {}
    number = card.get("number") or TEST_TOKENS.get(
        str(card.get("token", "")).replace("tok_", "pm_card_"), ""
    )
    if not number:
        raise missing_param("card[number]")
    if error := number_error(normalize(number)):
        raise error
    email = (params.get("billing_details") or {}).get("email")
    return billing.create_card(
        core,
        number,
        core.clock.now(),
        exp_month=card.get("exp_month", 12),
        exp_year=card.get("exp_year", 2034),
        email=email,
    )


@router.route("GET", "/v1/payment_methods/{payment_method}")
def retrieve(core: SandboxCore, params: JSON, payment_method: str) -> JSON:
    """Retrieve a payment method."""
    return core.store.get("payment_method", payment_method, "payment_method")


@router.route("GET", "/v1/payment_methods")
def list_payment_methods(core: SandboxCore, params: JSON) -> JSON:
    """List payment methods (by ``customer`` and ``type``)."""

    def keep(pm: JSON) -> bool:
        return all(pm[key] == params[key] for key in ("customer", "type") if key in params)

    return list_of(core, "payment_method", params, "/v1/payment_methods", keep)


@router.route("POST", "/v1/payment_methods/{payment_method}/attach")
def attach(core: SandboxCore, params: JSON, payment_method: str) -> JSON:
    """Attach a payment method (or a ``pm_card_…`` test token) to a customer."""
    if not params.get("customer"):
        raise missing_param("customer")
    customer = core.store.get("customer", params["customer"], "customer")
    at = core.now_for(customer)
    pm = billing.resolve_payment_method(core, payment_method, at, "payment_method")
    return billing.attach(core, pm, customer, at)


@router.route("POST", "/v1/payment_methods/{payment_method}/detach")
def detach(core: SandboxCore, params: JSON, payment_method: str) -> JSON:
    """Detach a payment method from its customer."""
    pm = core.store.get("payment_method", payment_method, "payment_method")
    if not pm["customer"]:
        raise StripeError(
            "The payment method you provided is not attached to a customer so detachment is "
            "impossible.",
            param="payment_method",
        )
    customer = core.store.get("customer", pm["customer"])
    at = core.now_for(customer)
    if customer["invoice_settings"]["default_payment_method"] == pm["id"]:
        customer["invoice_settings"]["default_payment_method"] = None
    pm["customer"] = None
    emit(core, "payment_method.detached", pm, at=at, previous={"customer": customer["id"]})
    return pm
