"""Exceptions raised by Flask-Lattice.

Programming and configuration mistakes raise :class:`LatticeError` subclasses.
Problems caused by a request raise :class:`BillingHTTPError` subclasses, which are
Werkzeug ``HTTPException`` s with a description, so Flask renders them as 4xx answers.
"""

from __future__ import annotations

from werkzeug.exceptions import HTTPException


class LatticeError(Exception):
    """Base class for errors that a developer must fix."""


class ConfigurationError(LatticeError):
    """A ``LATTICE_*`` setting is missing or invalid; the message names the key."""


class UnknownPlanError(LatticeError, KeyError):
    """A plan key that is not in the catalog was asked for."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown plan"


class StripeGuardError(LatticeError):
    """A Stripe call was refused before anything was sent (proration or pause guard)."""


class MalformedEvent(LatticeError):
    """A stored webhook event is not what its type promises (``data.object`` missing, of
    the wrong kind, or without a field the projection needs); the message says what, in
    one line, and becomes the event's ``last_error``."""


class BillingHTTPError(HTTPException):
    """Base class for request errors; ``description`` says what was wrong."""

    code = 400
