"""``flask lattice doctor``: the webhook endpoints' version and events, and refused deliveries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_lattice.stripe_gateway import API_VERSION
from flask_lattice.webhooks.projection import HANDLERS
from tests.helpers.pipeline import post_event
from tests.helpers.support import TEST_WEBHOOK_SECRET


def doctor(app: Flask) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["lattice", "doctor"])
    return result.exit_code, result.output


def create_endpoint(sandbox: Any, url: str, events: list[str], version: str | None) -> str:
    params: dict[str, Any] = {"url": url, "enabled_events": events}
    if version:
        params["api_version"] = version
    endpoint_id: str = sandbox.client().v1.webhook_endpoints.create(params=params).id
    return endpoint_id


def line(output: str, check: str) -> str:
    return next(text for text in output.splitlines() if f" {check}:" in text)


def test_doctor_lists_this_apps_endpoints_and_passes_when_they_fit(
    app: Flask, sandbox: Any
) -> None:
    good = create_endpoint(sandbox, "https://app.example/billing/webhook", ["*"], API_VERSION)
    listed = create_endpoint(
        sandbox, "https://app.example/billing/webhook", sorted(HANDLERS), API_VERSION
    )
    other = create_endpoint(sandbox, "https://elsewhere.example/hooks", ["*"], None)
    _, output = doctor(app)
    assert line(output, "webhook endpoints").startswith("OK   webhook endpoints: 2 endpoint(s)")
    assert f"{good} https://app.example/billing/webhook api_version={API_VERSION}" in output
    assert f"{listed} https://app.example/billing/webhook api_version={API_VERSION}" in output
    assert other not in output


@pytest.mark.parametrize(
    ("version", "events", "problem"),
    [
        (
            None,
            ["*"],
            f"renders events in the account's default API version, not {API_VERSION}",
        ),
        ("2024-06-20", ["*"], f"renders events in 2024-06-20 API version, not {API_VERSION}"),
        (
            API_VERSION,
            sorted(set(HANDLERS) - {"invoice.paid", "customer.subscription.updated"}),
            "does not send customer.subscription.updated, invoice.paid",
        ),
    ],
    ids=["default-version", "older-version", "missing-events"],
)
def test_doctor_fails_for_an_endpoint_on_another_version_or_without_a_needed_type(
    app: Flask, sandbox: Any, version: str | None, events: list[str], problem: str
) -> None:
    endpoint = create_endpoint(sandbox, "https://app.example/billing/webhook", events, version)
    code, output = doctor(app)
    assert code == 1
    assert line(output, "webhook endpoints") == f"FAIL webhook endpoints: {endpoint} {problem}"
    assert f"api_version={API_VERSION}" in output  # the fix names the version to use


def test_an_on_event_handler_type_is_needed_too(app: Flask, sandbox: Any) -> None:
    app.extensions["lattice"].hooks.event_handlers["charge.refunded"] = [lambda event: None]
    create_endpoint(sandbox, "https://app.example/billing/webhook", sorted(HANDLERS), API_VERSION)
    code, output = doctor(app)
    assert code == 1
    assert "does not send charge.refunded" in output


def test_doctor_fails_after_deliveries_signed_with_another_secret(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(LATTICE_WEBHOOK_SECRETS=["whsec_not_the_endpoints_secret"])
    event = {"id": "evt_wrong_secret", "type": "customer.updated", "created": 1}
    for _ in range(3):
        assert post_event(app.test_client(), event, TEST_WEBHOOK_SECRET).status_code == 400
    code, output = doctor(app)
    assert code == 1
    assert line(output, "webhook refusals").startswith(
        "FAIL webhook refusals: 3 delivery(ies) refused because no signing secret matched"
    )
    assert "check LATTICE_WEBHOOK_SECRETS" in output
    assert "OK   webhook secret" in output  # a secret is configured; it is the wrong one


def test_refusals_for_other_reasons_are_reported_without_failing(app: Flask) -> None:
    client = app.test_client()
    assert client.post("/billing/webhook", data=b"{}").status_code == 400
    _, output = doctor(app)
    assert line(output, "webhook refusals") == (
        "OK   webhook refusals: refused within the last hour, by reason: header: 1"
    )
