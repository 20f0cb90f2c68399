"""Every billing form refuses a field that names a price or an amount, before Stripe is called."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_lattice.web import csrf
from tests.helpers.spine import signed_in
from tests.helpers.subscriptions import csrf_token

ROUTES = ["/billing/checkout", "/billing/subscription/swap", "/billing/subscription/quantity"]
FIELDS = ["price", "price_id", "line_items[0][price]", "amount", "unit_amount", "prices[]"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("field", FIELDS)
def test_a_price_field_is_refused_and_nothing_reaches_stripe(
    app: Flask, sandbox: Any, route: str, field: str
) -> None:
    client, _ = signed_in(app)
    before = len(sandbox.requests)
    form = {
        csrf.FIELD_NAME: csrf_token(client),
        "plan": "pro",
        "interval": "month",
        "preview": "x",
        field: "price_cheap",
    }
    response = client.post(route, data=form)
    assert response.status_code == 400, response.text
    assert "prices come from the plan catalog" in response.text
    assert len(sandbox.requests) == before
