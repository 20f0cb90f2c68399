"""An event rendered in another API version is re-fetched, never projected from its payload.

Issue #15: with ``LATTICE_TRUST_WEBHOOK_PAYLOADS``, a ``customer.subscription.updated``
in an older API version's shape (the period on the subscription, not on its items) set
the local period to NULL. That is what a Dashboard endpoint on the account's default
version delivers. Since 2025-03-31.basil the period lives on the subscription items:
https://docs.stripe.com/changelog/basil/2025-03-31/deprecate-subscription-current-period-start-and-end
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from flask import Flask

from flask_lattice.stripe_gateway import API_VERSION
from tests.helpers.pipeline import event_statuses, post_event, signup
from tests.helpers.support import run_worker, subscription_row


def old_shape(subscription: dict[str, Any]) -> dict[str, Any]:
    """The subscription as an API version before basil renders it: period on the top level."""
    shaped = copy.deepcopy(subscription)
    item = shaped["items"]["data"][0]
    for field in ("current_period_start", "current_period_end"):
        shaped[field] = item.pop(field)
    return shaped


def an_update(event_id: str, created: int, api_version: str | None, obj: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": "customer.subscription.updated",
        "created": created,
        "livemode": False,
        "api_version": api_version,
        "data": {"object": obj},
    }


def test_a_trusted_payload_of_another_version_is_refetched(
    app_factory: Callable[..., Flask], sandbox: Any
) -> None:
    app = app_factory(sandbox=sandbox, LATTICE_TRUST_WEBHOOK_PAYLOADS="always-trust")
    client = app.test_client()
    ids = signup(sandbox, "user:versions")
    live = sandbox.client().v1.subscriptions.retrieve(ids["subscription"]).to_dict(for_json=True)
    item = live["items"]["data"][0]
    created = max(event["created"] for event in sandbox.events) + 10
    shaped = old_shape(live)

    for index, version in enumerate(("2024-06-20", None)):
        event_id = f"evt_version_{index}"
        event = an_update(event_id, created + index, version, shaped)
        assert post_event(client, event, sandbox.webhook_secret).status_code == 200
        run_worker(app)
        assert event_statuses(app)[event_id] == ("processed", 1)
        row = subscription_row(app, ids["subscription"])
        assert int(row.current_period_start.timestamp()) == item["current_period_start"]
        assert int(row.current_period_end.timestamp()) == item["current_period_end"]
        assert row.watermark_event_id == event_id

    # The same snapshot labelled with the pinned version is trusted as sent: this is
    # what the version check prevents for the others.
    event = an_update("evt_version_pinned", created + 5, API_VERSION, shaped)
    assert post_event(client, event, sandbox.webhook_secret).status_code == 200
    run_worker(app)
    row = subscription_row(app, ids["subscription"])
    assert (row.current_period_start, row.current_period_end) == (None, None)
