"""Checkout and portal session URLs never reach the console's payload view."""

from __future__ import annotations

from flask_lattice.admin.redact import REDACTED, redact


def test_bearer_urls_are_redacted_wherever_the_session_sits() -> None:
    checkout = {"id": "cs_1", "object": "checkout.session", "url": "https://pay/cs_1#secret"}
    portal = {"id": "bps_1", "object": "billing_portal.session", "url": "https://portal/x"}
    event = {
        "object": "event",
        "data": {"object": checkout, "previous_attributes": {"url": None}},
        "related": [portal],
    }
    shown = redact(event)
    assert shown["data"]["object"]["url"] == REDACTED
    assert shown["related"][0]["url"] == REDACTED
    assert shown["data"]["object"]["id"] == "cs_1"
    assert shown["data"]["previous_attributes"] == {"url": None}
    assert checkout["url"] == "https://pay/cs_1#secret"  # the input is not changed


def test_other_urls_are_kept() -> None:
    invoice = {"object": "invoice", "url": "https://example.com/x", "hosted_invoice_url": "h"}
    assert redact(invoice) == invoice
    assert redact({"object": {"nested": 1}, "url": "u"}) == {"object": {"nested": 1}, "url": "u"}
