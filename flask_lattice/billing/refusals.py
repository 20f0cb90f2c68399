"""Why a subscription operation was refused: 400 for a bad request, 409 for a bad moment."""

from __future__ import annotations

from ..errors import BillingHTTPError


class OperationRefused(BillingHTTPError):
    """The request is malformed or altered (unknown plan, bad quantity or behavior)."""

    code = 400


class OperationConflict(BillingHTTPError):
    """The change cannot be made in the subscription's current state."""

    code = 409


class DowngradeRefused(OperationConflict):
    """The host's ``downgrade_guard`` refused the move to a lower plan."""


class SeatsRefused(OperationConflict):
    """The change would leave fewer seats than the host's ``seats_in_use`` hook counts."""
