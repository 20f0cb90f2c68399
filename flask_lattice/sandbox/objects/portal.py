"""Billing portal configuration and session objects."""

from __future__ import annotations

from ..wire import JSON
from . import base


def portal_configuration(object_id: str, created: int, *, is_default: bool) -> JSON:
    """A portal configuration with Stripe's default features."""
    return {
        **base("billing_portal.configuration", object_id, created),
        "active": True,
        "application": None,
        "business_profile": {
            "headline": None,
            "privacy_policy_url": None,
            "terms_of_service_url": None,
        },
        "default_return_url": None,
        "features": {
            "customer_update": {"allowed_updates": ["email", "address"], "enabled": True},
            "invoice_history": {"enabled": True},
            "payment_method_update": {"enabled": True, "payment_method_configuration": None},
            "subscription_cancel": {
                "cancellation_reason": {
                    "enabled": False,
                    "feedback_options": None,
                    "options": [],
                },
                "enabled": True,
                "mode": "at_period_end",
                "proration_behavior": "none",
            },
            "subscription_pause": {
                "duration": {"interval_options": [], "type": "indefinite"},
                "enabled": False,
            },
            "subscription_update": {
                "billing_cycle_anchor": None,
                "default_allowed_updates": ["price"],
                "enabled": True,
                "products": [],
                "proration_behavior": "create_prorations",
                "schedule_at_period_end": {"conditions": []},
                "trial_update_behavior": "end_trial",
            },
        },
        "is_default": is_default,
        "login_page": {"enabled": False, "url": None},
        "metadata": {},
        "name": None,
        "updated": created,
    }


def portal_session(
    object_id: str,
    created: int,
    *,
    customer: str,
    configuration: str,
    return_url: str | None,
    flow: JSON | None,
    url: str,
) -> JSON:
    """A portal session (its ``url`` is the bearer credential)."""
    return {
        **base("billing_portal.session", object_id, created),
        "after_expiration": None,
        "configuration": configuration,
        "customer": customer,
        "customer_account": None,
        "flow": flow,
        "locale": None,
        "on_behalf_of": None,
        "return_url": return_url,
        "url": url,
    }
