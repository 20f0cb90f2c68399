"""The ``/v1`` request pipeline: auth, params, idempotency, the unit of work, expand, JSON."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, Response, current_app, request

from . import params as param_schema
from .core import LoggedRequest, SandboxCore
from .idempotency import Slot
from .ids import new_id
from .listing import expand
from .wire import JSON, StripeError, decode_form

log = logging.getLogger(__name__)

Handler = Callable[..., JSON]


@dataclass
class Router:
    """Collects one resource module's endpoints: ``@router.route("POST", "/v1/customers")``."""

    routes: list[tuple[str, str, Handler]] = field(default_factory=list)

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        """Register ``handler(core, params, **path_args) -> JSON`` for ``METHOD path``."""

        def register(handler: Handler) -> Handler:
            self.routes.append((method, path, handler))
            return handler

        return register


def core() -> SandboxCore:
    """The sandbox serving the current request."""
    return current_app.extensions["stripe_sandbox"]  # type: ignore[no-any-return]


def json_response(body: JSON, status: int = 200, **headers: str) -> Response:
    """A JSON response carrying a fresh ``Request-Id``."""
    response = Response(json.dumps(body, indent=2), status=status, mimetype="application/json")
    response.headers["Request-Id"] = headers.pop("request_id", None) or new_id("req", 14)
    response.headers["Stripe-Version"] = core().api_version
    for name, value in headers.items():
        response.headers[name.replace("_", "-").title()] = value
    return response


def error_response(error: StripeError, request_id: str | None = None, **headers: str) -> Response:
    """Stripe's JSON error body with the error's status (and ``Stripe-Should-Retry`` on 429)."""
    if error.status == 429:
        headers["stripe_should_retry"] = "true"
    return json_response(error.body(), error.status, request_id=request_id or "", **headers)


def _presented_key() -> str:
    """The API key from ``Authorization: Bearer KEY`` or HTTP Basic (``KEY:``, as curl's ``-u``)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        return auth.username or ""
    return ""


def _authenticate(accepted: frozenset[str]) -> str:
    """The request's API key if it is one of ``accepted``, else Stripe's 401."""
    key = _presented_key()
    if not key:
        raise StripeError(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). "
            "See https://stripe.com/docs/api#authentication for details, or we can help at "
            "https://support.stripe.com/.",
            status=401,
        )
    if key not in accepted:
        raise StripeError(
            f"Invalid API Key provided: {_masked(key)}", status=401, code="api_key_invalid"
        )
    return key


def _masked(key: str) -> str:
    """A key as Stripe echoes it: prefix and last four characters, the rest starred."""
    prefix = key[:8] if key.startswith(("sk_", "rk_", "pk_")) else ""
    tail = key[-4:] if len(key) > len(prefix) + 4 else ""
    return prefix + "*" * max(len(key) - len(prefix) - len(tail), 1) + tail


def _param_pairs() -> list[tuple[str, str]]:
    pairs = list(request.args.items(multi=True))
    if request.method != "GET":
        pairs += list(request.form.items(multi=True))
    return pairs


def _endpoint(method: str, path: str, handler: Handler) -> Callable[..., Response]:
    key = f"{method} {path}"

    def view(**path_args: str) -> Response:
        request_id = new_id("req", 14)
        sandbox = core()
        pairs = _param_pairs()
        # deque.append is atomic: logging never waits for a request holding the store lock.
        sandbox.request_log.append(LoggedRequest(method, request.path, tuple(pairs)))
        idem = request.headers.get("Idempotency-Key") if method == "POST" else None
        echo = {"idempotency_key": idem} if idem else {}
        try:
            api_key = _authenticate(sandbox.api_keys)
            if sandbox.rate_limiter is not None:
                sandbox.rate_limiter.check(key)
            raw = decode_form(pairs)
            if not idem:
                status, body = _execute(sandbox, key, handler, raw, path_args, request_id, None)
                return json_response(body, status, request_id=request_id)
            fingerprint = {"path": request.path, "params": raw}
            cache_key = f"{api_key}:{idem}"
            if (done := sandbox.idempotency.saved(cache_key)) is not None:
                return _replay(done, fingerprint, idem, request_id)
            with sandbox.idempotency.claim(cache_key, idem, fingerprint) as slot:
                saved = slot.saved()
                if saved is not None:
                    return _replay(saved, fingerprint, idem, request_id)
                status, body = _execute(sandbox, key, handler, raw, path_args, request_id, slot)
            return json_response(body, status, request_id=request_id, **echo)
        except StripeError as exc:
            return error_response(exc, request_id, **echo)

    view.__name__ = f"{method.lower()}_{path}"
    return view


def _execute(
    sandbox: SandboxCore,
    key: str,
    handler: Handler,
    raw: JSON,
    path_args: dict[str, str],
    request_id: str,
    slot: Slot | None,
) -> tuple[int, JSON]:
    """Validate, run the handler in a unit of work, expand; ``(status, body)``.

    Validation errors (and errors raised before the endpoint changed anything) are raised, not
    returned: Stripe saves no idempotent result for them, so a corrected retry may reuse the key.
    """
    checked = param_schema.validate(key, raw)
    context = {"id": request_id, "idempotency_key": slot.idem if slot else None}
    with sandbox.unit_of_work(context, save=key.split(" ", 1)[0] != "GET"):
        emitted = len(sandbox.pending)
        try:
            result = handler(sandbox, checked, **path_args)
            status, body = 200, expand(result, checked.get("expand", []), sandbox.store.expandable)
        except StripeError as exc:
            untouched = len(sandbox.pending) == emitted
            if exc.type == "invalid_request_error" and exc.status < 500 and untouched:
                raise
            status, body = exc.status, exc.body()
        if slot is not None:
            slot.save(status, body)
        return status, body


def _replay(saved: JSON, fingerprint: JSON, idem: str, request_id: str) -> Response:
    if {"path": saved["path"], "params": saved["params"]} != fingerprint:
        raise StripeError(
            "Keys for idempotent requests can only be used with the same parameters they were "
            f"first used with. Try using a key other than '{idem}' if you meant to execute a "
            "different request.",
            type="idempotency_error",
        )
    return json_response(
        saved["body"],
        saved["status"],
        request_id=request_id,
        idempotent_replayed="true",
        idempotency_key=idem,
    )


def install(app: Flask, routers: list[Router]) -> None:
    """Add every router's endpoints to ``app``."""
    known = param_schema.known_endpoints()
    for router in routers:
        for method, path, handler in router.routes:
            if f"{method} {path}" not in known:
                raise LookupError(f"{method} {path} is missing from data/params.json")
            rule = path.replace("{", "<").replace("}", ">")
            app.add_url_rule(rule, view_func=_endpoint(method, path, handler), methods=[method])


def unrecognized(method: str, path: str) -> StripeError:
    """Stripe's 404 for a URL it does not serve."""
    return StripeError(f"Unrecognized request URL ({method}: {path}).", status=404)
