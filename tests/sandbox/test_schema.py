"""The digest validator itself, and the sandbox's parameter table.

(Every test using the ``recorded_sandbox`` fixture validates all objects it produced on teardown.)
"""

from __future__ import annotations

import copy

import stripe

from flask_lattice.sandbox import StripeSandbox

from . import params_data
from .conftest import Catalog, Sandbox, assert_valid, signup
from .schema_check import violations


def test_validator_catches_shape_errors(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create().to_dict()
    assert violations(customer) == []
    broken = copy.deepcopy(customer)
    broken["paid"] = True
    del broken["email"]
    broken["tax_exempt"] = "sometimes"
    broken["created"] = None
    broken["invoice_settings"]["footer"] = 3
    problems = "\n".join(violations(broken))
    for needle in (
        "$.paid: unknown field",
        "$.email: missing field",
        "not in enum",
        "$.created: null but not nullable",
        "invoice_settings.footer: expected string",
    ):
        assert needle in problems


def test_expandable_fields_accept_id_or_object(recorded_sandbox: Sandbox, catalog: Catalog) -> None:
    stripe_client = recorded_sandbox.client()
    _, sub = signup(stripe_client, recorded_sandbox.sb, catalog.pro_monthly)
    expanded = stripe_client.v1.subscriptions.retrieve(
        sub.id,
        params={
            "expand": [
                "customer",
                "latest_invoice.payments.data.payment.payment_intent",
                "default_payment_method",
                "items.data.price.product",
            ]
        },
    )
    data = expanded.last_response.data
    assert data["customer"]["object"] == "customer"
    assert violations(data) == []
    data["customer"] = {"object": "customer", "id": "cus_x"}
    assert violations(data)


def test_every_object_of_a_long_scenario_validates(
    recorded_sandbox: Sandbox, catalog: Catalog
) -> None:
    sb: StripeSandbox = recorded_sandbox.sb
    stripe_client = recorded_sandbox.client()
    _, sub = signup(stripe_client, sb, catalog.basic_monthly, trial_days=4)
    _, failing = signup(
        stripe_client,
        sb,
        catalog.pro_monthly,
        card="4000000000000341",
        trial_days=4,
        email="f@example.com",
    )
    sb.advance(days=10)
    stripe_client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": sub["items"].data[0].id, "price": catalog.pro_yearly.id}],
            "cancel_at_period_end": True,
            "metadata": {"k": "v"},
        },
    )
    stripe_client.v1.invoices.create_preview(params={"subscription": failing.id})
    stripe_client.v1.billing_portal.sessions.create(params={"customer": str(failing.customer)})
    sb.advance(days=40)
    assert len(sb.events) > 30
    assert_valid(recorded_sandbox.produced() + sb.events)


def test_params_table_matches_the_digest() -> None:
    shipped = params_data.OUTPUT.read_text(encoding="utf-8")
    assert shipped == params_data.render(), "run: .venv/bin/python -m tests.sandbox.params_data"
