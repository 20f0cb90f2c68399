"""``GET /v1/events?delivery_success=…``: whether every receiver acknowledged an event.

Stripe: "Filter events by whether all webhooks were successfully delivered. If false,
events which are still pending or have failed all delivery attempts to a webhook endpoint
will be returned." (https://docs.stripe.com/api/events/list#list_events-delivery_success)
"""

from __future__ import annotations

import pytest
import stripe

from flask_lattice.sandbox import StripeSandbox

from .conftest import Receiver


def _listed(client: stripe.StripeClient, success: bool) -> set[str]:
    page = client.v1.events.list(params={"delivery_success": success, "limit": 100})
    return {event.id for event in page.data}


def test_acknowledged_events_are_delivered_and_refused_ones_are_not(
    sb: StripeSandbox, client: stripe.StripeClient, receiver: Receiver
) -> None:
    sb.set_forward_to(receiver.url)
    client.v1.customers.create()
    assert sb.wait_for_deliveries(5)
    (delivered,) = [event["id"] for event in sb.events]
    receiver.fail_first = 100
    client.v1.customers.create()
    assert sb.wait_for_deliveries(10)
    (refused,) = [event["id"] for event in sb.events if event["id"] != delivered]
    assert _listed(client, True) == {delivered}
    assert _listed(client, False) == {refused}


def test_an_event_without_receivers_counts_as_delivered(
    sb: StripeSandbox, client: stripe.StripeClient
) -> None:
    client.v1.customers.create()
    assert _listed(client, False) == set()
    assert len(_listed(client, True)) == 1


def test_a_bad_value_is_refused(sb: StripeSandbox) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        sb.client().v1.events.list(params={"delivery_success": "maybe"})  # type: ignore[typeddict-item]
