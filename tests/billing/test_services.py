"""Spine services: the price cache, the catalog check, customers and redirect checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_lattice.billable import Billable
from flask_lattice.billing.customers import get_or_create_customer
from flask_lattice.billing.prices import catalog_prices, check_catalog, format_amount, offered_price
from flask_lattice.errors import PriceUnavailable
from flask_lattice.models import Customer
from flask_lattice.state import get_state
from flask_lattice.web.safe_urls import is_safe_url, safe_url
from tests.helpers.spine import objects
from tests.helpers.support import TEST_PLANS, host


def _price(sandbox: Any, lookup_key: str) -> Any:
    return sandbox.client().v1.prices.list(params={"lookup_keys": [lookup_key]}).data[0]


def test_the_test_catalog_is_sound(app: Flask, sandbox: Any) -> None:
    with app.app_context():
        assert check_catalog() == []


def test_check_catalog_lists_every_problem(app_factory: Callable[..., Flask], sandbox: Any) -> None:
    client = sandbox.client()
    product = client.v1.products.create(params={"name": "Odd"})

    def price(**params: Any) -> str:
        created = client.v1.prices.create(
            params={"product": product.id, "currency": "usd", "unit_amount": 100, **params}
        )
        return str(created.id)

    one_time = price(lookup_key="odd_once")
    weekly = price(recurring={"interval": "week"}, lookup_key="odd_weekly")
    quarterly = price(recurring={"interval": "month", "interval_count": 3})
    client.v1.prices.update(_price(sandbox, "pro_yearly").id, params={"active": False})
    plans = [
        *TEST_PLANS,
        {
            "key": "odd",
            "name": "Odd",
            "rank": 30,
            "prices": {"month": "odd_missing", "year": "price_doesnotexist"},
        },
        {"key": "once", "name": "Once", "rank": 40, "prices": {"month": one_time}},
        {"key": "weekly", "name": "Weekly", "rank": 50, "prices": {"month": "odd_weekly"}},
        {"key": "quarter", "name": "Quarter", "rank": 60, "prices": {"month": quarterly}},
    ]
    app = app_factory(sandbox=sandbox, LATTICE_PLANS=plans)
    with app.app_context():
        problems = check_catalog()
    text = [str(problem) for problem in problems]
    assert [(p.plan, p.interval) for p in problems] == [
        ("pro", "year"),
        ("odd", "month"),
        ("odd", "year"),
        ("once", "month"),
        ("weekly", "month"),
        ("quarter", "month"),
    ]
    assert "inactive" in text[0] and text[0].startswith("LATTICE_PLANS pro.prices.year")
    assert "no Stripe price has the lookup key 'odd_missing'" in text[1]
    assert "Stripe has no price 'price_doesnotexist'" in text[2]
    assert "one-time price" in text[3]
    assert "bills every week" in text[4] and weekly in text[4]
    assert "bills every 3 months" in text[5]


def test_offered_price_refuses_an_inactive_price(app: Flask, sandbox: Any) -> None:
    sandbox.client().v1.prices.update(_price(sandbox, "pro_yearly").id, params={"active": False})
    with app.app_context():
        plan = get_state().config.plans.get("pro")
        assert offered_price(plan, "month").lookup_key == "pro_monthly"
        with pytest.raises(PriceUnavailable) as refused:
            offered_price(plan, "year")
    assert refused.value.code == 503
    page = app.test_client().get("/billing/pricing").get_data(as_text=True)
    pro = page.split('data-plan="pro"', 1)[1].split("</section>", 1)[0]
    assert "Not available right now" in pro and "$12.00" in pro
    assert 'value="year"' not in pro and 'value="month"' in pro


def test_price_ids_in_the_catalog_are_resolved_too(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    price_id = _price(sandbox, "pro_monthly").id
    plans = [{"key": "pro", "name": "Pro", "rank": 1, "prices": {"month": price_id}}]
    app = app_factory(sandbox=sandbox, LATTICE_PLANS=plans)
    with app.app_context():
        cached = catalog_prices()
        assert cached[price_id].unit_amount == 1200
        assert cached[price_id].product_name == "Pro"
        assert check_catalog() == []
    assert "$12.00" in app.test_client().get("/billing/pricing").get_data(as_text=True)


def test_stale_cache_is_served_when_stripe_is_down(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    app = app_factory(sandbox=sandbox, LATTICE_PRICE_CACHE_SECONDS=0)
    assert "$12.00" in app.test_client().get("/billing/pricing").get_data(as_text=True)
    down = app_factory(LATTICE_PRICE_CACHE_SECONDS=0)  # same database, unreachable Stripe
    page = down.test_client().get("/billing/pricing")
    assert page.status_code == 200 and "$12.00" in page.get_data(as_text=True)


def test_get_or_create_reuses_the_customer(app: Flask, sandbox: Any) -> None:
    billable = Billable("team:7", email="ops@example.com", name="Ops")
    with app.app_context():
        first = get_or_create_customer(billable).stripe_customer_id
        second = get_or_create_customer(billable).stripe_customer_id
        rows = host(app).db.session.scalars(sa.select(Customer)).all()
    assert first == second and len(rows) == 1
    assert [customer["id"] for customer in objects(sandbox, "customer")] == [first]


def test_a_deleted_customer_is_replaced(app: Flask, sandbox: Any) -> None:
    billable = Billable("team:8")
    with app.app_context():
        old = get_or_create_customer(billable)
        old_id = old.stripe_customer_id
        old.deleted = True
        host(app).db.session.commit()
        new_id = get_or_create_customer(billable).stripe_customer_id
    assert new_id != old_id and len(objects(sandbox, "customer")) == 2


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1200, "usd", "$12.00"),
        (123456, "eur", "€1,234.56"),
        (1200, "jpy", "¥1,200"),
        (1234, "kwd", "1.234 KWD"),
        (1234, "KWD", "1.234 KWD"),
        (990, "chf", "9.90 CHF"),
        (-1200, "usd", "−$12.00"),
        (-990, "chf", "−9.90 CHF"),
        (None, "usd", "custom"),
    ],
)
def test_format_amount(amount: int | None, currency: str, shown: str) -> None:
    assert format_amount(amount, currency) == shown


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/account", True),
        ("account/billing", True),
        ("http://localhost/x", True),
        ("https://localhost/x", True),
        ("http://evil.example/", False),
        ("//evil.example", False),
        ("///evil.example", False),
        ("https:/evil.example", False),
        ("/\\evil.example", False),
        ("javascript:alert(1)", False),
        ("javascript:", False),
        ("////evil.example", False),
        ("https:evil.example", False),
        ("%2F%2Fevil.example", False),
        ("%252F%252Fevil.example", False),
        ("/%5Cevil.example", False),
        ("/%09/evil.example", False),
        ("/\r\nSet-Cookie: x=1", False),
        ("/\t/evil.example", False),
        ("/notes?q=a%2Fb", True),
        (" http://evil.example", False),
        ("http://localhost.evil.example/", False),
        ("", False),
        (None, False),
    ],
)
def test_open_redirect_checks(target: str | None, safe: bool) -> None:
    app = Flask(__name__)
    with app.test_request_context("/", base_url="http://localhost"):
        assert is_safe_url(target) is safe
        expected = "http://localhost/fallback"
        assert (safe_url(target, fallback=expected) == expected) is not safe
