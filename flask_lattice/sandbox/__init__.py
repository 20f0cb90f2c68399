"""A local, stateful Stripe API for tests and offline development.

``with StripeSandbox() as sb: client = sb.client()`` gives a ``stripe.StripeClient`` that talks to
it. See ``docs/sandbox.md``.
"""

from __future__ import annotations

from .delivery import Delivery
from .server import CheckoutDeclined, StripeSandbox

__all__ = ["CheckoutDeclined", "Delivery", "StripeSandbox"]
