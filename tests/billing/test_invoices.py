"""The local invoice history: ``billing.invoices()`` and ``recent_invoices``."""

from __future__ import annotations

from typing import Any

from flask import Flask

from flask_lattice.billing.invoices import recent_invoices
from tests.helpers.pipeline import deliver
from tests.helpers.subscriptions import subscribe
from tests.helpers.support import host, run_worker


def test_invoices_of_the_current_billable_newest_first(app: Flask, sandbox: Any) -> None:
    start = len(sandbox.events)
    subscriber = subscribe(app, sandbox)
    sandbox.advance(days=32)  # a renewal: a second invoice
    deliver(app.test_client(), sandbox.events[start:], sandbox.webhook_secret)
    run_worker(app)
    key = f"user:{subscriber.user_id}"
    with app.app_context():
        invoices = recent_invoices(key)
        assert [invoice.billing_reason for invoice in invoices] == [
            "subscription_cycle",
            "subscription_create",
        ]
        assert all((i.amount_paid, i.currency, i.status) == (1200, "usd", "paid") for i in invoices)
        assert [i.stripe_invoice_id for i in recent_invoices(key, limit=1)] == [
            invoices[0].stripe_invoice_id
        ]
        assert recent_invoices("user:nobody") == []
    billing = host(app).billing
    with app.test_request_context():
        from flask_login import login_user

        login_user(host(app).db.session.get(host(app).User, subscriber.user_id))
        assert [i.stripe_invoice_id for i in billing.invoices()] == [
            i.stripe_invoice_id for i in invoices
        ]
    with app.test_request_context():
        assert billing.invoices() == []  # signed out
