"""The WSGI app, and ``StripeSandbox``: the sandbox running in-process on a daemon thread."""

from __future__ import annotations

import html
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import api, flows
from .billing import ENDED, period_of
from .clock import DAY, MAX_TIMESTAMP, add_interval
from .core import SMART_RETRY_DAYS, LoggedRequest, SandboxCore, Settings
from .delivery import DEFAULT_RETRY_SCHEDULE, Delivery, Outbox
from .events import emit
from .hosted import hosted
from .ids import new_id
from .limits import RateLimiter
from .resources import (
    catalog,
    checkout,
    customers,
    invoices,
    payment_methods,
    platform,
    portal,
    subscriptions,
)
from .store import DEFAULT_SEARCH_DELAY
from .timeline import run_until
from .wire import JSON, StripeError

if TYPE_CHECKING:
    import stripe

log = logging.getLogger(__name__)

DEFAULT_API_KEY = "sk_test_sandbox_0000000000000000000000000000"
#: ``chaos=True``: each delivery is held a further random 0 to this many seconds.
CHAOS_JITTER = 0.3
ROUTERS = [
    customers.router,
    catalog.router,
    payment_methods.router,
    checkout.router,
    portal.router,
    subscriptions.router,
    invoices.router,
    platform.router,
]


class _RequestHandler(WSGIRequestHandler):
    """Logs requests at DEBUG instead of printing a line per request."""

    def log(self, type: str, message: str, *args: Any) -> None:
        log.debug(message, *args)


class CheckoutDeclined(Exception):
    """``StripeSandbox.complete_checkout`` was given a card that Checkout declined."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,20}")


def advance_target(core: SandboxCore, form: Mapping[str, str]) -> int:
    """The time ``POST /_sandbox/clock/advance`` moves to (``to``, or now plus ``seconds``).

    Like Stripe's test clocks: a whole number of seconds, forward only, before year 10000, and at
    most two billing intervals of the longest live subscription past its current period.
    """
    param = "to" if form.get("to") else "seconds"
    raw = (form.get(param) or "0").strip()
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise StripeError(f"Invalid integer: {raw}", code="parameter_invalid_integer", param=param)
    now = core.clock.now()
    target = int(raw) if param == "to" else now + int(raw)
    if target < now:
        raise StripeError("The sandbox clock only moves forward.", param=param)
    if target > MAX_TIMESTAMP:
        raise StripeError("The sandbox clock cannot move past the year 9999.", param=param)
    if target > (limit := advance_limit(core, now)):
        raise StripeError(
            "Cannot advance the sandbox clock more than two intervals of its longest live "
            f"subscription past that subscription's current period (at most to {limit}).",
            param=param,
        )
    return target


def advance_limit(core: SandboxCore, now: int) -> int:
    """The furthest the sandbox clock may move: two intervals of the longest live subscription
    (not on a test clock) past its current period end; year 9999 without one."""
    limits = []
    for sub in core.store.all("subscription"):
        if sub["test_clock"] is not None or sub["status"] in ENDED:
            continue
        recurring = sub["items"]["data"][0]["price"]["recurring"]
        start = max(now, period_of(sub)[1], sub["trial_end"] or 0)
        try:
            limits.append(
                add_interval(start, recurring["interval"], 2 * recurring["interval_count"])
            )
        except (ValueError, OverflowError):
            continue
    return min(max(limits, default=MAX_TIMESTAMP), MAX_TIMESTAMP)


def advance_sandbox(core: SandboxCore, target: int) -> None:
    """Move sandbox time to ``target``, running everything that falls due on the way."""
    with core.unit_of_work():
        run_until(core, target, None)
        core.clock.advance_to(target)
        emit(core, "test_helpers.test_clock.ready", platform.sandbox_clock(core), at=target)


def create_app(core: SandboxCore) -> Flask:
    """The sandbox's WSGI app: ``/v1`` API, hosted pages, and ``/_sandbox`` controls."""
    app = Flask(__name__)
    app.extensions["stripe_sandbox"] = core
    api.install(app, ROUTERS)
    app.register_blueprint(hosted)

    @app.get("/_sandbox/clock")
    def clock() -> Response:
        return api.json_response({"now": core.clock.now()})

    @app.post("/_sandbox/clock/advance")
    def advance() -> Response:
        try:
            with core.store.lock:
                target = advance_target(core, request.form)
        except StripeError as exc:
            return api.error_response(exc)
        advance_sandbox(core, target)
        return api.json_response({"now": core.clock.now()})

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if exc.code in (404, 405):
            return api.error_response(api.unrecognized(request.method, request.path))
        return api.error_response(
            StripeError(exc.description or "Bad request.", status=exc.code or 400)
        )

    @app.errorhandler(Exception)
    def crash(exc: Exception) -> Response:
        log.exception("sandbox error on %s %s", request.method, request.path)
        return api.error_response(
            StripeError(
                "An unexpected error occurred in the Stripe sandbox.", status=500, type="api_error"
            )
        )

    return app


class StripeSandbox:
    """A local Stripe: ``with StripeSandbox() as sb: client = sb.client()``.

    ``forward_to`` receives every event signed with ``webhook_secret`` (like ``stripe listen``);
    endpoints registered through the webhook_endpoints API receive theirs with their own secret.

    Billing knobs (defaults are Stripe's): ``dunning_retry_days``, days from each failed renewal
    payment to the next retry (default: 8 attempts within 2 weeks, Smart Retries' recommended
    policy; ``(3, 5, 7)`` is a classic custom schedule); ``dunning_final_status``, ``canceled`` or
    ``unpaid`` after the last retry fails; ``upcoming_notice_days``, days before a renewal that
    ``invoice.upcoming`` is sent (0: never); ``finalize_delay``, seconds a renewal invoice stays a
    draft before it is finalized and charged (Stripe: 3600).
    """

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        forward_to: str | None = None,
        persist_path: str | Path | None = None,
        webhook_secret: str | None = None,
        api_key: str = DEFAULT_API_KEY,
        extra_api_keys: Sequence[str] = (),
        retry_schedule: Sequence[float] = DEFAULT_RETRY_SCHEDULE,
        delivery_timeout: float = 5.0,
        chaos: bool = False,
        duplicate: int = 1,
        shuffle: bool = False,
        delay: float = 0.0,
        jitter: float = 0.0,
        seed: int = 0,
        rate_limit: float | None = None,
        search_delay: float = DEFAULT_SEARCH_DELAY,
        dunning_retry_days: Sequence[int] = SMART_RETRY_DAYS,
        dunning_final_status: str = "canceled",
        upcoming_notice_days: int = 7,
        finalize_delay: int = 3600,
    ) -> None:
        if dunning_final_status not in ("canceled", "unpaid"):
            raise ValueError("dunning_final_status must be 'canceled' or 'unpaid'")
        if min(dunning_retry_days, default=1) <= 0 or min(upcoming_notice_days, finalize_delay) < 0:
            raise ValueError("retry days must be positive, notice days and delay not negative")
        self.api_key = api_key
        self._outbox = Outbox(
            retry_schedule=retry_schedule,
            timeout=delivery_timeout,
            duplicate=duplicate,
            shuffle=shuffle,
            delay=delay,
            jitter=jitter,
            seed=seed,
        )
        self._server: BaseWSGIServer = make_server(
            host, port, Flask(__name__), threaded=True, request_handler=_RequestHandler
        )
        self.url = f"http://{host}:{self._server.server_port}"
        self.core = SandboxCore(
            base_url=self.url,
            webhook_secret=webhook_secret or "whsec_" + new_id("sb", 32).removeprefix("sb_"),
            outbox=self._outbox,
            settings=Settings(
                dunning_retry_days=tuple(dunning_retry_days),
                dunning_final_status=dunning_final_status,
                upcoming_notice_days=upcoming_notice_days,
                finalize_delay=finalize_delay,
            ),
            persist_path=persist_path,
            api_keys=frozenset((api_key, *extra_api_keys)),
        )
        self.set_rate_limit(rate_limit)
        if chaos:
            self.set_chaos(True)
        self.core.store.search_delay = search_delay
        self.core.forward_to = forward_to
        self._server.app = create_app(self.core)
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> StripeSandbox:
        """Serve on a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="stripe-sandbox",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and delivering."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        self._outbox.stop()

    def __enter__(self) -> StripeSandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted (used by ``python -m``)."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()
            self._outbox.stop()

    # -- clients and state -------------------------------------------------------------

    @property
    def webhook_secret(self) -> str:
        """The secret ``forward_to`` deliveries are signed with."""
        return self.core.webhook_secret

    def client(self, **options: Any) -> stripe.StripeClient:
        """A ``stripe.StripeClient`` pointed at the sandbox, pinned to the SDK's API version."""
        import stripe

        settings: dict[str, Any] = {
            "base_addresses": {"api": self.url},
            "stripe_version": stripe.api_version,
            "max_network_retries": 0,
        }
        settings.update(options)
        return stripe.StripeClient(self.api_key, **settings)

    def now(self) -> int:
        """Sandbox time (unix seconds)."""
        return self.core.clock.now()

    def advance(self, days: float = 0, seconds: float = 0, *, to: int | None = None) -> int:
        """Move sandbox time forward (renewals, trial ends, dunning run); returns the new time."""
        target = to if to is not None else self.now() + int(days * DAY + seconds)
        if target < self.now():
            raise ValueError("the sandbox clock only moves forward")
        if target > MAX_TIMESTAMP:
            raise ValueError("the sandbox clock cannot move past the year 9999")
        advance_sandbox(self.core, target)
        return self.now()

    @property
    def events(self) -> list[JSON]:
        """Every event emitted so far, oldest first."""
        with self.core.store.lock:
            return list(reversed(self.core.store.all("event")))

    @property
    def requests(self) -> list[LoggedRequest]:
        """The ``/v1`` API requests received since the last :meth:`reset`, oldest first
        (the latest ``REQUEST_LOG_SIZE``; each with ``method``, ``path`` and ``params``)."""
        with self.core.store.lock:
            return list(self.core.request_log)

    def reset(self) -> None:
        """Forget all objects, events, logged requests, queued deliveries and clock offset."""
        with self.core.unit_of_work():
            self.core.store.clear()
            self.core.clock.offset = 0.0
            self.core.pending.clear()
            self.core.request_log.clear()
        self._outbox.clear()

    # -- hosted flows without a browser -------------------------------------------------

    def complete_checkout(
        self, session_id: str, card: str = "4242424242424242", email: str | None = None
    ) -> str:
        """Pay a Checkout Session through its hosted page; returns the success redirect URL.

        Raises :class:`CheckoutDeclined` (with Stripe's decline message) if the card is declined.
        """
        fields = {"card_number": card, "email": email or "customer@example.com"}
        location, body = _post_form(f"{self.url}/c/pay/{session_id}", fields)
        if location is None:
            raise CheckoutDeclined(_error_text(body))
        return location

    def update_payment_method(self, customer_id: str, card: str = "4242424242424242") -> str:
        """Give a customer a new default card, as an app does through the API.

        The card becomes the customer's ``invoice_settings.default_payment_method`` and every live
        subscription's ``default_payment_method``; open invoices are charged with it at their
        next retry. Returns the new payment method id.
        """
        customer = self.core.store.get("customer", customer_id, "customer")
        with self.core.unit_of_work():
            pm = flows.update_payment_method(self.core, customer, card, subscriptions=True)
            return str(pm["id"])

    # -- webhook delivery --------------------------------------------------------------

    def set_forward_to(self, url: str | None) -> None:
        """Deliver every event to ``url`` (None stops forwarding)."""
        self.core.forward_to = url

    @property
    def deliveries(self) -> list[Delivery]:
        """Every delivery attempt so far."""
        return list(self._outbox.log)

    @property
    def outbox(self) -> Outbox:
        """The delivery queue (knobs: ``duplicate``, ``shuffle``, ``delay``, ``retry_schedule``)."""
        return self._outbox

    def set_chaos(self, on: bool, *, seed: int | None = None) -> None:
        """Deliver as Stripe may (``on``), or in cause-and-effect order, once, at once.

        On: every event is sent twice (``duplicate=2``), each batch is shuffled, and each
        delivery waits a further random 0 to :data:`CHAOS_JITTER` seconds, so events of
        different requests overtake each other. ``seed`` restarts the randomness (see
        :meth:`Outbox.reseed`) so that a failing run can be replayed.
        """
        self._outbox.configure(
            duplicate=2 if on else 1,
            shuffle=on,
            delay=0.0,
            jitter=CHAOS_JITTER if on else 0.0,
        )
        if seed is not None:
            self._outbox.reseed(seed)

    def hold_deliveries(self) -> None:
        """Queue webhooks without sending them until :meth:`release_deliveries`."""
        self._outbox.hold()

    def release_deliveries(self) -> None:
        """Send everything held (and resume normal delivery)."""
        self._outbox.release()

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Block until every queued webhook was delivered or gave up; False on timeout."""
        return self._outbox.wait(timeout)

    # -- rate limits -------------------------------------------------------------------

    def set_rate_limit(self, per_second: float | None) -> None:
        """Answer 429 above ``per_second`` requests, globally and per endpoint (None: no limit).

        Stripe's test mode allows 25 (:data:`~flask_lattice.sandbox.limits.TEST_MODE_RATE`).
        """
        if per_second is not None and per_second <= 0:
            raise ValueError("rate_limit must be a positive number of requests per second")
        self.core.rate_limiter = RateLimiter(per_second) if per_second is not None else None

    # -- search ----------------------------------------------------------------------------

    def wait_for_search(self) -> None:
        """Block until every object created so far is visible to the search endpoints.

        Search is eventually consistent (``search_delay`` seconds, like Stripe's "usually under
        a minute"); a test that searches for what it just created waits here first.
        """
        time.sleep(self.core.store.search_lag())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _post_form(url: str, fields: dict[str, str]) -> tuple[str | None, str]:
    """POST a form without following redirects; ``(Location or None, body)``."""
    data = urllib.parse.urlencode(fields).encode()
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, data=data, timeout=30) as response:
            return None, response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            if exc.code in (302, 303):
                return exc.headers["Location"], ""
            return None, exc.read().decode()


def _error_text(page: str) -> str:
    """The text of the page's ``data-testid="error"`` element (Stripe's decline message)."""
    marker = 'data-testid="error"'
    if marker not in page:
        return "Checkout did not complete."
    fragment = page.split(marker, 1)[1].split(">", 1)[1]
    return html.unescape(fragment.split("<", 1)[0]).strip()
