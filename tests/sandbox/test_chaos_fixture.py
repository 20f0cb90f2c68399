"""The suite's ``sandbox`` fixture delivers webhooks as Stripe may, unless a test opts out.

Stripe "doesn't guarantee delivery of events in the order in which they're generated" and may
send an event more than once (https://docs.stripe.com/webhooks#event-ordering).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import sandbox_seed


def test_the_sandbox_fixture_delivers_with_chaos(sandbox: Any, request: Any) -> None:
    outbox = sandbox.outbox
    assert (outbox.duplicate, outbox.shuffle) == (2, True)
    assert outbox.jitter > 0
    assert outbox.seed == sandbox_seed(request.node.nodeid)
    assert sandbox_seed(request.node.nodeid) != sandbox_seed(request.node.nodeid + "x")


@pytest.mark.ordered_delivery
def test_ordered_delivery_opts_out(sandbox: Any) -> None:
    outbox = sandbox.outbox
    assert (outbox.duplicate, outbox.shuffle, outbox.jitter, outbox.delay) == (1, False, 0.0, 0.0)
