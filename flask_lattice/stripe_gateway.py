"""The app's Stripe client. The only module that imports ``stripe``.

:class:`StripeGateway` holds one configured ``StripeClient`` per app (pinned API version,
network retries, optional base URL for a sandbox) and offers the calls the extension
makes. Everything else calls the gateway, never ``stripe`` directly.

Every HTTP request goes through :class:`GuardedTransport`, which

* refuses, before anything is sent, a subscription create, update or preview call that does
  not say ``proration_behavior`` (when ``LATTICE_REQUIRE_EXPLICIT_PRORATION`` is on), and a
  ``pause_collection`` behavior that Stripe does not know;
* sends the :data:`~flask_lattice.signals.stripe_request` signal after each attempt, with
  the method, path, status, duration, request id and idempotency key only;
* takes a token from the :class:`ReadBudget` before each ``GET`` (each attempt, the SDK's
  retries included), so that every process of the app together stays below
  ``LATTICE_STRIPE_READ_RATE`` reads per second.

Create calls get a deterministic idempotency key derived from their inputs
(:func:`idempotency_key`), so a double submit or a concurrent request yields the same
Stripe object. Stripe errors are translated into :class:`StripeAPIError` subclasses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import stripe
from flask import current_app, has_app_context

from .config import LatticeConfig
from .errors import (
    CardDeclined,
    InvalidSignature,
    LatticeError,
    StripeAPIError,
    StripeGuardError,
    StripeNotFound,
    StripeRateLimited,
    StripeRequestError,
    StripeUnavailable,
)
from .signals import stripe_request

T = TypeVar("T")
log = logging.getLogger(__name__)

#: The Stripe API version every request is pinned to (the SDK's own, ``stripe.api_version``).
API_VERSION: str = stripe.api_version

PAUSE_BEHAVIORS = ("keep_as_draft", "mark_uncollectible", "void")

_PRORATION_CALLS = (
    ("POST", re.compile(r"/v1/subscriptions(/[^/]+(/resume)?)?")),
    ("POST", re.compile(r"/v1/subscription_items(/[^/]+)?")),
    ("DELETE", re.compile(r"/v1/subscription_items/[^/]+")),
    ("POST", re.compile(r"/v1/invoices/create_preview")),
)
_PRORATION_PARAM = re.compile(
    r"(proration_behavior|(subscription_details|schedule_details)\[proration_behavior\]"
    r"|items\[\d*\]\[proration_behavior\])"
)
_PAUSE_CALL = re.compile(r"/v1/subscriptions(/[^/]+)?")


# -- errors ---------------------------------------------------------------------------


def translate_error(error: stripe.StripeError) -> StripeAPIError:
    """The :class:`StripeAPIError` subclass for a ``stripe`` SDK error."""
    details = error.error
    kind: type[StripeAPIError]
    should_retry = (error.headers or {}).get("Stripe-Should-Retry") == "true"
    if isinstance(error, stripe.RateLimitError) or error.http_status == 429 or should_retry:
        kind = StripeRateLimited
    elif isinstance(error, stripe.CardError):
        kind = CardDeclined
    elif isinstance(error, stripe.APIConnectionError | stripe.RateLimitError | stripe.APIError):
        kind = StripeUnavailable
    elif error.code == "resource_missing" or error.http_status == 404:
        kind = StripeNotFound
    elif error.http_status == 409:
        kind = StripeUnavailable
    else:
        kind = StripeRequestError
    return kind(
        error.user_message or type(error).__name__,
        http_status=error.http_status,
        code=error.code,
        param=getattr(error, "param", None),
        request_id=error.request_id,
        decline_code=details.decline_code if details is not None else None,
    )


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise ``stripe`` SDK errors as :class:`StripeAPIError` subclasses."""
    try:
        yield
    except stripe.StripeError as error:
        raise translate_error(error) from error


# -- idempotency keys -----------------------------------------------------------------


def idempotency_key(operation: str, *inputs: Any) -> str:
    """A deterministic idempotency key for ``operation`` with ``inputs`` (JSON-able)."""
    payload = json.dumps([operation, *inputs], sort_keys=True, separators=(",", ":"), default=str)
    return f"lattice-{operation}-{hashlib.sha256(payload.encode()).hexdigest()[:40]}"


# -- guards ---------------------------------------------------------------------------


def check_guards(
    method: str, path: str, params: list[tuple[str, str]], *, require_proration: bool
) -> None:
    """Raise :class:`StripeGuardError` if a request must not be sent.

    ``params`` are the request's form (or query) pairs as encoded for Stripe, such as
    ``("items[0][proration_behavior]", "none")``.
    """
    method = method.upper()
    guarded = require_proration and any(
        method == verb and pattern.fullmatch(path) for verb, pattern in _PRORATION_CALLS
    )
    if guarded and not any(_PRORATION_PARAM.fullmatch(name) and value for name, value in params):
        raise StripeGuardError(
            f"{method} {path} does not say proration_behavior: pass it explicitly (at the "
            "top level, in subscription_details, or in an item), for example "
            "'create_prorations', 'always_invoice' or 'none' "
            "(LATTICE_REQUIRE_EXPLICIT_PRORATION is on)"
        )
    if method == "POST" and _PAUSE_CALL.fullmatch(path):
        _check_pause(params)


def _check_pause(params: list[tuple[str, str]]) -> None:
    pause = [(name, value) for name, value in params if name.startswith("pause_collection")]
    if not pause or pause == [("pause_collection", "")]:
        return
    behaviors = [value for name, value in pause if name == "pause_collection[behavior]"]
    if len(behaviors) != 1 or behaviors[0] not in PAUSE_BEHAVIORS:
        raise StripeGuardError(
            f"pause_collection needs a behavior of {', '.join(PAUSE_BEHAVIORS)} "
            "(or '' to resume collection)"
        )


def _form_pairs(method: str, url: str, post_data: Any) -> list[tuple[str, str]]:
    if method.upper() == "POST":
        body = post_data.decode() if isinstance(post_data, bytes) else (post_data or "")
        return parse_qsl(body if isinstance(body, str) else "", keep_blank_values=True)
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


# -- transport ------------------------------------------------------------------------


class GuardedTransport(stripe.HTTPClient):
    """An SDK HTTP client that checks the guards and signals every request.

    It delegates the actual I/O to the SDK's default client; the SDK's retry loop
    (``max_network_retries``) runs around it, so each attempt is signalled.
    """

    name = "flask-lattice"

    def __init__(
        self,
        inner: stripe.HTTPClient,
        *,
        require_proration: bool,
        read_budget: ReadBudget | None = None,
    ) -> None:
        super().__init__()
        self._inner = inner
        self._require_proration = require_proration
        self.read_budget = read_budget

    def request(  # type: ignore[override]
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[Any, int, Mapping[str, str]]:
        """Send one request through the default client."""
        return self._send(self._inner.request, method, url, headers, post_data)

    def request_stream(  # type: ignore[override]
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[Any, int, Mapping[str, str]]:
        """Send one streaming request through the default client."""
        return self._send(self._inner.request_stream, method, url, headers, post_data)

    def close(self) -> None:
        """Close the underlying client."""
        self._inner.close()  # type: ignore[no-untyped-call]

    def _send(
        self,
        send: Callable[..., tuple[Any, int, Mapping[str, str]]],
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any,
    ) -> tuple[Any, int, Mapping[str, str]]:
        path = urlsplit(url).path
        check_guards(
            method,
            path,
            _form_pairs(method, url, post_data),
            require_proration=self._require_proration,
        )
        if self.read_budget is not None and method.upper() == "GET":
            self.read_budget.take()
        started = time.perf_counter()
        status: int = 0
        response_headers: Mapping[str, str] = {}
        try:
            content, status, response_headers = send(method, url, headers, post_data)
            return content, status, response_headers
        finally:
            _signal_request(
                method=method.upper(),
                path=path,
                status=status,
                duration=time.perf_counter() - started,
                request_id=response_headers.get("Request-Id"),
                idempotency_key=(headers or {}).get("Idempotency-Key"),
            )


def _signal_request(**details: Any) -> None:
    sender = current_app._get_current_object() if has_app_context() else None  # type: ignore[attr-defined]
    stripe_request.send(sender, **details)


class _RedactResponseBodies(logging.Filter):
    """Keeps Stripe response bodies, which hold Checkout and portal URLs, out of the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        # The SDK logs ``body=… message='API response body'`` (logfmt, keys sorted).
        if isinstance(record.msg, str) and record.msg.endswith("message='API response body'"):
            record.msg, record.args = "body=<redacted> message='API response body'", None
        return True


def _install_log_redaction() -> None:
    logger = logging.getLogger("stripe")
    if not any(isinstance(item, _RedactResponseBodies) for item in logger.filters):
        logger.addFilter(_RedactResponseBodies())


# -- read budget ----------------------------------------------------------------------

#: A token bucket in one Redis hash. Reserves a token, even one not yet refilled, and
#: returns how long the caller must wait for it (seconds, as a string); refuses (returns
#: -1) a reservation that would wait longer than ARGV[3] seconds.
_BUCKET_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate) - 1
local wait = 0
if tokens < 0 then wait = -tokens / rate end
if wait > max_wait then return '-1' end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(wait)
"""


class ReadBudget:
    """One token bucket for Stripe reads, shared by every process through Redis.

    ``rate`` is reads per second (``LATTICE_STRIPE_READ_RATE``); the bucket holds at most
    one second's worth. ``connect`` returns the Redis client (called per read, inside the
    app context). :meth:`take` waits for a token; when the wait would exceed ``max_wait``
    seconds it raises :class:`StripeRateLimited` instead, so a job can reschedule itself
    rather than hold a worker. When Redis cannot be reached the read goes ahead unmetered
    (Stripe's own 429 remains the backstop).
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        rate: float,
        *,
        key: str = "lattice:stripe-read-budget",
        max_wait: float = 10.0,
    ) -> None:
        self.connect = connect
        self.rate = rate
        self.key = key
        self.max_wait = max_wait

    def take(self) -> None:
        """Wait for one read token; raises :class:`StripeRateLimited` if the wait is too long."""
        try:
            redis = self.connect()
            reply = redis.eval(
                _BUCKET_SCRIPT, 1, self.key, self.rate, max(self.rate, 1.0), self.max_wait
            )
        except Exception:  # metering must never stop a read
            log.warning("Stripe read budget unavailable; reading unmetered", exc_info=True)
            return
        wait = float(reply)
        if wait < 0:
            raise StripeRateLimited(
                f"the Stripe read budget ({self.rate:g}/s) is exhausted for more than "
                f"{self.max_wait:g} s; retry later",
                http_status=None,
            )
        if wait > 0:
            time.sleep(wait)


# -- gateway --------------------------------------------------------------------------


class StripeGateway:
    """One configured ``StripeClient`` per app, and the calls the extension makes.

    Methods return the SDK's ``StripeObject`` s (read them with ``obj["field"]``) and
    raise :class:`StripeAPIError` subclasses or :class:`StripeGuardError`. ``client``
    is the raw ``StripeClient`` for calls not covered here; the guards and the signal
    apply to it too, but idempotency keys and error translation do not.
    """

    def __init__(
        self, client: stripe.StripeClient, transport: GuardedTransport | None = None
    ) -> None:
        self.client = client
        self._transport = transport

    @classmethod
    def from_config(cls, config: LatticeConfig) -> StripeGateway:
        """Build the client from validated settings (pinned API version, retries, base URL)."""
        _install_log_redaction()
        base = {"api": config.stripe_api_base} if config.stripe_api_base else None
        transport = GuardedTransport(
            stripe.new_default_http_client(),
            require_proration=config.require_explicit_proration,
        )
        return cls(
            stripe.StripeClient(
                config.stripe_secret_key,
                stripe_version=API_VERSION,
                base_addresses=base,  # type: ignore[arg-type]
                max_network_retries=config.stripe_max_network_retries,
                http_client=transport,
            ),
            transport,
        )

    def meter_reads(self, budget: ReadBudget) -> None:
        """Take a token from ``budget`` before every read (a gateway built by
        :meth:`from_config`; raises ``LatticeError`` for one built on a bare client)."""
        if self._transport is None:
            raise LatticeError("only a gateway built from the app's config can meter reads")
        self._transport.read_budget = budget

    @property
    def v1(self) -> Any:
        """The client's v1 services (``client.v1``)."""
        return self.client.v1

    def _call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with translated():
            return func(*args, **kwargs)

    @staticmethod
    def _options(operation: str, params: Mapping[str, Any], scope: str) -> dict[str, Any]:
        return {"idempotency_key": idempotency_key(operation, params, scope)}

    # customers

    def create_customer(self, params: Mapping[str, Any], *, scope: str = "") -> Any:
        """Create a customer; ``scope`` separates otherwise identical creates."""
        options = self._options("customer", params, scope)
        return self._call(self.v1.customers.create, dict(params), options)

    def retrieve_customer(self, customer_id: str) -> Any:
        """Retrieve a customer (a deleted one has ``deleted`` set)."""
        return self._call(self.v1.customers.retrieve, customer_id)

    # checkout and portal

    def create_checkout_session(self, params: Mapping[str, Any], *, scope: str = "") -> Any:
        """Create a Checkout Session; the same params and scope give the same session."""
        options = self._options("checkout", params, scope)
        return self._call(self.v1.checkout.sessions.create, dict(params), options)

    def retrieve_checkout_session(self, session_id: str, *, expand: list[str] | None = None) -> Any:
        """Retrieve a Checkout Session."""
        params = {"expand": expand} if expand else None
        return self._call(self.v1.checkout.sessions.retrieve, session_id, params)

    def expire_checkout_session(self, session_id: str) -> Any:
        """Expire an open Checkout Session (Stripe refuses one that is not ``open``)."""
        return self._call(self.v1.checkout.sessions.expire, session_id)

    def create_portal_session(self, params: Mapping[str, Any], *, scope: str = "") -> Any:
        """Create a customer portal session. Its ``url`` is a bearer credential."""
        options = self._options("portal", params, scope)
        return self._call(self.v1.billing_portal.sessions.create, dict(params), options)

    # subscriptions

    def create_subscription(self, params: Mapping[str, Any], *, scope: str = "") -> Any:
        """Create a subscription directly (needs ``proration_behavior`` under the guard)."""
        options = self._options("subscription", params, scope)
        return self._call(self.v1.subscriptions.create, dict(params), options)

    def retrieve_subscription(
        self, subscription_id: str, *, expand: list[str] | None = None
    ) -> Any:
        """Retrieve a subscription."""
        params = {"expand": expand} if expand else None
        return self._call(self.v1.subscriptions.retrieve, subscription_id, params)

    def list_subscriptions(self, customer_id: str, *, status: str = "all") -> list[Any]:
        """Every subscription of a customer (``status="all"`` includes canceled ones)."""
        params = {"customer": customer_id, "status": status, "limit": 100}
        with translated():
            page = self.v1.subscriptions.list(params)
            return list(page.auto_paging_iter())

    def iter_customers(self, *, created_gte: int | None = None) -> Iterator[Any]:
        """Every customer of the account (deleted ones excluded), newest first, or those
        created at or after ``created_gte`` (unix seconds). Pages of 100 are fetched as the
        iteration reaches them."""
        params: dict[str, Any] = {"limit": 100}
        if created_gte is not None:
            params["created"] = {"gte": created_gte}
        with translated():
            yield from self.v1.customers.list(params).auto_paging_iter()

    def iter_subscriptions(self, *, created_gte: int | None = None) -> Iterator[Any]:
        """Every subscription of the account, canceled ones included, newest first (or
        those created at or after ``created_gte``, unix seconds), a page of 100 at a time."""
        params: dict[str, Any] = {"status": "all", "limit": 100}
        if created_gte is not None:
            params["created"] = {"gte": created_gte}
        with translated():
            yield from self.v1.subscriptions.list(params).auto_paging_iter()

    def list_subscription_page(self, params: Mapping[str, Any]) -> Any:
        """One page of ``GET /v1/subscriptions`` with ``params`` (``data``, ``has_more``)."""
        return self._call(self.v1.subscriptions.list, dict(params))

    def search_subscription_page(self, params: Mapping[str, Any]) -> Any:
        """One page of ``GET /v1/subscriptions/search`` (eventually consistent)."""
        return self._call(self.v1.subscriptions.search, dict(params))

    def stream_subscriptions(self, params: Mapping[str, Any], *, search: bool) -> Iterator[Any]:
        """Every subscription of a list (or, with ``search``, of a search) with ``params``,
        fetching page after page as the caller iterates; a failed page raises
        :class:`~flask_lattice.errors.StripeAPIError` from the iteration."""
        call = self.v1.subscriptions.search if search else self.v1.subscriptions.list
        with translated():
            yield from call(dict(params)).auto_paging_iter()

    def list_subscription_items(self, subscription_id: str) -> list[Any]:
        """Every item of a subscription (a subscription object embeds only the first 10)."""
        params = {"subscription": subscription_id, "limit": 100}
        with translated():
            return list(self.v1.subscription_items.list(params).auto_paging_iter())

    def update_subscription(
        self,
        subscription_id: str,
        params: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> Any:
        """Update a subscription (needs ``proration_behavior`` under the guard)."""
        options = {"idempotency_key": idempotency_key} if idempotency_key else {}
        return self._call(self.v1.subscriptions.update, subscription_id, dict(params), options)

    def cancel_subscription(
        self,
        subscription_id: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Any:
        """Cancel a subscription now (``DELETE``); use an update for a period-end cancel."""
        options = {"idempotency_key": idempotency_key} if idempotency_key else {}
        return self._call(
            self.v1.subscriptions.cancel, subscription_id, dict(params or {}), options
        )

    def check_key(self) -> None:
        """One cheap authenticated read (``GET /v1/customers?limit=1``): raises
        :class:`~flask_lattice.errors.StripeAPIError` when the key or the API base is wrong."""
        self._call(self.v1.customers.list, {"limit": 1})

    def preview_invoice(self, params: Mapping[str, Any]) -> Any:
        """Preview the next invoice (needs ``proration_behavior`` under the guard)."""
        return self._call(self.v1.invoices.create_preview, dict(params))

    # invoices, prices, events

    def retrieve_invoice(self, invoice_id: str) -> Any:
        """Retrieve an invoice."""
        return self._call(self.v1.invoices.retrieve, invoice_id)

    def list_prices(self, *, lookup_keys: list[str]) -> list[Any]:
        """Prices (active or not) holding any of ``lookup_keys``, with their products."""
        found: list[Any] = []
        for start in range(0, len(lookup_keys), 10):
            params = {
                "lookup_keys": lookup_keys[start : start + 10],
                "limit": 100,
                "expand": ["data.product"],
            }
            found.extend(self._call(self.v1.prices.list, params)["data"])
        return found

    def list_products(self) -> list[Any]:
        """Every product, active or archived (all pages)."""
        with translated():
            page = self.v1.products.list({"limit": 100})
            return list(page.auto_paging_iter())

    def create_product(self, params: Mapping[str, Any], *, scope: str = "") -> Any:
        """Create a product; ``scope`` separates otherwise identical creates."""
        options = self._options("product", params, scope)
        return self._call(self.v1.products.create, dict(params), options)

    def update_product(self, product_id: str, params: Mapping[str, Any]) -> Any:
        """Update a product's name, ``active`` flag or metadata."""
        return self._call(self.v1.products.update, product_id, dict(params))

    def create_price(self, params: Mapping[str, Any], *, scope: str = "") -> Any:
        """Create a price; ``scope`` separates otherwise identical creates."""
        options = self._options("price", params, scope)
        return self._call(self.v1.prices.create, dict(params), options)

    def update_price(self, price_id: str, params: Mapping[str, Any]) -> Any:
        """Update a price's ``active`` flag, lookup key or metadata (amounts never change)."""
        return self._call(self.v1.prices.update, price_id, dict(params))

    def retrieve_price(self, price_id: str) -> Any:
        """Retrieve a price with its product."""
        return self._call(self.v1.prices.retrieve, price_id, {"expand": ["product"]})

    def retrieve_test_clock(self, clock_id: str) -> Any:
        """Retrieve a test clock (``frozen_time`` is its current time)."""
        return self._call(self.v1.test_helpers.test_clocks.retrieve, clock_id)

    def list_webhook_endpoints(self) -> list[Any]:
        """Every webhook endpoint of the account (``url``, ``api_version``, ``enabled_events``,
        ``status``); ``api_version`` is ``None`` for one on the account's default version."""
        with translated():
            page = self.v1.webhook_endpoints.list({"limit": 100})
            return list(page.auto_paging_iter())

    def list_undelivered_events(self, created_gte: int) -> list[dict[str, Any]]:
        """Every event created at or after ``created_gte`` (unix seconds) that some webhook
        endpoint has not acknowledged (``GET /v1/events?delivery_success=false``), as plain
        JSON dicts, newest first. Stripe keeps events for 30 days."""
        params = {"delivery_success": False, "created": {"gte": created_gte}, "limit": 100}
        with translated():
            page = self.v1.events.list(params)
            return [event.to_dict(for_json=True) for event in page.auto_paging_iter()]


# -- webhook signatures (used by webhooks/route.py) -------------------------------------


def verify_signature(payload: bytes, header: str, secret: str) -> None:
    """Verify the HMAC of ``header`` over the raw ``payload`` with the SDK, for one secret.

    Only the signature is checked here: the route checks the header's syntax and the
    timestamp's tolerance, in both directions, itself
    (:mod:`flask_lattice.webhooks.envelope`). Raises :class:`InvalidSignature` when no
    ``v1`` signature matches, and for anything the SDK cannot compare (it raises
    ``TypeError`` on non-ASCII signatures, ``UnicodeDecodeError`` on a non-UTF-8 body).
    """
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None)
    except stripe.SignatureVerificationError as error:
        raise InvalidSignature(str(error.user_message or error)) from None
    except UnicodeDecodeError:
        raise InvalidSignature("the body is not UTF-8") from None
    except TypeError:
        raise InvalidSignature("the signatures are not ASCII") from None
