"""Every exception Flask-Lattice raises, under one root: :class:`LatticeError`.

Three families sit under the root:

* **Programming and configuration mistakes** (:class:`ConfigurationError`,
  :class:`UnknownPlanError`, :class:`StripeGuardError`): a developer must fix the code or
  the ``LATTICE_*`` settings. Raised in a request, they are 500s.
* **Stripe call failures** (:class:`StripeAPIError` and its subclasses): what Stripe (or the
  network) answered, translated from the ``stripe`` SDK's errors by the Stripe gateway. They
  carry Stripe's ``code``, ``param``, ``decline_code`` and request id, never a secret.
* **Request errors** (:class:`BillingHTTPError` and its subclasses): a request the extension
  cannot serve. They are Werkzeug ``HTTPException`` s with a ``description`` that says what
  was wrong, so Flask renders them as 4xx (or 503) answers, and a host can register an
  error handler for the whole family or for one class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


class LatticeError(Exception):
    """The root of every Flask-Lattice exception."""


# -- programming and configuration mistakes ----------------------------------------------


class ConfigurationError(LatticeError):
    """A setting is missing or invalid (a ``LATTICE_*`` key, or the app's ``SECRET_KEY``);
    the message names the key."""


class UnknownPlanError(ConfigurationError, KeyError):
    """A plan key that is not in the catalog (``LATTICE_PLANS``) was asked for."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown plan"


class StripeGuardError(LatticeError):
    """A Stripe call was refused before anything was sent (proration or pause guard)."""


# -- Stripe call failures ------------------------------------------------------------------


class StripeAPIError(LatticeError):
    """A Stripe call failed. Carries what Stripe said, never the request's secrets.

    ``http_status`` is Stripe's HTTP status (``None`` when Stripe was not reached); ``code``,
    ``param`` and ``decline_code`` are the fields of Stripe's ``error`` object;
    ``request_id`` is Stripe's ``Request-Id`` header, for Stripe's support.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        decline_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.param = param
        self.request_id = request_id
        self.decline_code = decline_code


class StripeNotFound(StripeAPIError):
    """The object does not exist (``resource_missing``, or HTTP 404)."""


class CardDeclined(StripeAPIError):
    """The card was declined or could not be charged (Stripe's ``card_error``)."""


class StripeUnavailable(StripeAPIError):
    """Stripe could not be reached or answered 409, 429 or 5xx: retry later."""


class StripeRateLimited(StripeUnavailable):
    """Stripe answered 429 (rate limit) or said ``Stripe-Should-Retry: true``: the call may
    succeed later unchanged. Webhook jobs reschedule themselves on it (see :doc:`workers`)."""


class StripeRequestError(StripeAPIError):
    """Stripe refused the request (invalid params, authentication, permission, idempotency)."""


class InvalidSignature(LatticeError, ValueError):
    """A webhook body's ``Stripe-Signature`` does not verify; the message says why."""


class MalformedEvent(LatticeError):
    """A stored webhook event is not what its type promises (``data.object`` missing, of
    the wrong kind, or without a field the projection needs); the message says what, in
    one line, and becomes the event's ``last_error``."""


# -- request errors --------------------------------------------------------------------------


class BillingHTTPError(LatticeError, HTTPException):
    """A request the extension cannot serve; ``description`` says what was wrong (400)."""

    code = 400


class CSRFTokenError(BillingHTTPError):
    """A form arrived without a valid CSRF token (400)."""


class WebhookRejected(BillingHTTPError):
    """A delivery that is not a verified, well-formed Stripe event (400); nothing was stored."""


class CheckoutRefused(BillingHTTPError):
    """The request does not name a plan and interval that can be bought (400)."""


class PortalRefused(BillingHTTPError):
    """The portal cannot be opened for this request: unknown flow, nothing to manage (400)."""


class OperationRefused(BillingHTTPError):
    """A subscription change is malformed or altered: unknown plan, bad quantity (400)."""


class InvalidNumber(BillingHTTPError):
    """A numeric form or query field is not a whole number in its allowed range (400); the
    description names the field."""


class InvalidDate(BillingHTTPError):
    """A date form or query field is not a date written ``YYYY-MM-DD`` (400); the
    description names the field."""


class OperationConflict(BillingHTTPError):
    """The change cannot be made in the subscription's current state (409)."""

    code = 409


class DowngradeRefused(OperationConflict):
    """The host's ``@billing.downgrade_guard`` refused a downgrade (409)."""


class SeatsRefused(OperationConflict):
    """A seat count below what the host's ``@billing.seats_in_use`` hook counts (409)."""


class PaymentFailed(BillingHTTPError):
    """Stripe declined the card (402)."""

    code = 402


class BillingObjectNotFound(BillingHTTPError):
    """No such billing object for this billable: a Checkout Session or subscription (404)."""

    code = 404


class SubscriptionNotFound(BillingObjectNotFound):
    """The named subscription does not exist or belongs to another billable (404)."""

    description = "No such subscription."


class BillingUnavailable(BillingHTTPError):
    """Stripe could not be reached or refused the call; nothing was changed (503)."""

    code = 503


class DatabaseBusy(BillingUnavailable):
    """The database stayed locked past the wait it allows: SQLite's busy timeout, a
    PostgreSQL lock or statement timeout, a deadlock, or no free pooled connection. The
    request's transaction was rolled back, so nothing of it was written locally (503, with
    a ``Retry-After`` header in seconds)."""

    description = "Billing is busy right now. Please try again in a moment."
    #: Seconds after which trying again makes sense (the ``Retry-After`` header).
    retry_after = 5

    def get_headers(
        self,
        environ: WSGIEnvironment | None = None,
        scope: dict[str, Any] | None = None,
    ) -> list[tuple[str, str]]:
        """Werkzeug's headers plus ``Retry-After``."""
        return [*super().get_headers(environ, scope), ("Retry-After", str(self.retry_after))]


class PriceUnavailable(BillingUnavailable):
    """The plan's price cannot be offered right now: missing, inactive or mismatched (503)."""
