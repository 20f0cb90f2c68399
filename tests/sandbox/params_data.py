"""Build the sandbox's request-parameter table (``sandbox/data/params.json``) from the digest.

Run ``.venv/bin/python -m tests.sandbox.params_data`` to regenerate the file after adding an
endpoint; ``test_params_data.py`` checks that the shipped file matches the digest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .schema_check import load_digest

SERVED = {
    "/v1/customers": ("get", "post"),
    "/v1/customers/search": ("get",),
    "/v1/customers/{customer}": ("get", "post", "delete"),
    "/v1/customers/{customer}/payment_methods": ("get",),
    "/v1/customers/{customer}/payment_methods/{payment_method}": ("get",),
    "/v1/products": ("get", "post"),
    "/v1/products/search": ("get",),
    "/v1/products/{id}": ("get", "post"),
    "/v1/prices": ("get", "post"),
    "/v1/prices/search": ("get",),
    "/v1/prices/{price}": ("get", "post"),
    "/v1/checkout/sessions": ("get", "post"),
    "/v1/checkout/sessions/{session}": ("get",),
    "/v1/checkout/sessions/{session}/expire": ("post",),
    "/v1/checkout/sessions/{session}/line_items": ("get",),
    "/v1/billing_portal/configurations": ("get", "post"),
    "/v1/billing_portal/configurations/{configuration}": ("get", "post"),
    "/v1/billing_portal/sessions": ("post",),
    "/v1/subscriptions": ("get", "post"),
    "/v1/subscriptions/search": ("get",),
    "/v1/subscriptions/{subscription_exposed_id}": ("get", "post", "delete"),
    "/v1/subscriptions/{subscription}/pause": ("post",),
    "/v1/subscriptions/{subscription}/resume": ("post",),
    "/v1/subscription_items": ("get",),
    "/v1/subscription_items/{item}": ("get", "post"),
    "/v1/invoices": ("get",),
    "/v1/invoices/search": ("get",),
    "/v1/invoices/create_preview": ("post",),
    "/v1/invoices/{invoice}": ("get",),
    "/v1/invoices/{invoice}/lines": ("get",),
    "/v1/invoices/{invoice}/finalize": ("post",),
    "/v1/invoices/{invoice}/pay": ("post",),
    "/v1/invoices/{invoice}/void": ("post",),
    "/v1/invoices/{invoice}/mark_uncollectible": ("post",),
    "/v1/invoiceitems": ("get",),
    "/v1/invoiceitems/{invoiceitem}": ("get",),
    "/v1/payment_intents/{intent}": ("get",),
    "/v1/payment_methods": ("get", "post"),
    "/v1/payment_methods/{payment_method}": ("get",),
    "/v1/payment_methods/{payment_method}/attach": ("post",),
    "/v1/payment_methods/{payment_method}/detach": ("post",),
    "/v1/events": ("get",),
    "/v1/events/{id}": ("get",),
    "/v1/webhook_endpoints": ("get", "post"),
    "/v1/webhook_endpoints/{webhook_endpoint}": ("get", "post", "delete"),
    "/v1/test_helpers/test_clocks": ("get", "post"),
    "/v1/test_helpers/test_clocks/{test_clock}": ("get", "delete"),
    "/v1/test_helpers/test_clocks/{test_clock}/advance": ("post",),
}
_KEEP = {"type", "properties", "items", "enum", "required", "anyOf", "additionalProperties"}
OUTPUT = Path(__file__).resolve().parents[2] / "flask_lattice" / "sandbox" / "data" / "params.json"


def _trim(schema: Any) -> Any:
    """Drop descriptions and SDK hints, keeping what request validation needs."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "x-emptyable":
            out["emptyable"] = True
        elif key not in _KEEP:
            continue
        elif key == "properties":
            out[key] = {name: _trim(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _trim(value)
        elif key == "anyOf":
            out[key] = [_trim(sub) for sub in value]
        else:
            out[key] = value
    return out


def build() -> dict[str, Any]:
    """The parameter table: ``"METHOD /v1/path"`` to its trimmed params schema."""
    paths = load_digest()["paths"]
    return {
        f"{method.upper()} {path}": _trim(paths[path][method]["params"])
        for path, methods in SERVED.items()
        for method in methods
    }


def render() -> str:
    """The table as the file's text: one endpoint per line, stable order."""
    table = build()
    lines = [f"{json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(table.items())]
    return "{\n" + ",\n".join(lines) + "\n}\n"


if __name__ == "__main__":
    OUTPUT.write_text(render(), encoding="utf-8")
