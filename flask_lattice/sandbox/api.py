"""The ``/v1`` request pipeline: auth, params, idempotency, the unit of work, expand, JSON."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, Response, current_app, request

from . import params as param_schema
from .core import LoggedRequest, SandboxCore
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


def error_response(error: StripeError, request_id: str | None = None) -> Response:
    """Stripe's JSON error body with the error's status."""
    return json_response(error.body(), error.status, request_id=request_id or "")


def _authenticate() -> str:
    header = request.headers.get("Authorization", "")
    key = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    if not key:
        raise StripeError(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            status=401,
            type="authentication_error",
        )
    if not key.startswith(("sk_test_", "rk_test_")):
        raise StripeError(
            f"Invalid API Key provided: {key[:8]}{'*' * 8}",
            status=401,
            type="authentication_error",
            code="api_key_invalid" if key.startswith("sk_live_") else None,
        )
    return key


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
        with sandbox.store.lock:
            sandbox.request_log.append(LoggedRequest(method, request.path, tuple(pairs)))
        try:
            api_key = _authenticate()
            raw = decode_form(pairs)
            idem = request.headers.get("Idempotency-Key") if method == "POST" else None
            cache_key = f"{api_key}:{idem}"
            fingerprint = {"path": request.path, "params": raw}
            context = {"id": request_id, "idempotency_key": idem}
            with sandbox.unit_of_work(context, save=method != "GET"):
                saved = sandbox.store.idempotency.get(cache_key) if idem else None
                if saved is not None:
                    return _replay(saved, fingerprint, idem or "")
                status, body = _run(sandbox, key, handler, raw, path_args)
                if idem:
                    sandbox.store.idempotency[cache_key] = {
                        **fingerprint,
                        "status": status,
                        "body": body,
                    }
            return json_response(body, status, request_id=request_id)
        except StripeError as exc:
            return error_response(exc, request_id)

    view.__name__ = f"{method.lower()}_{path}"
    return view


def _run(
    sandbox: SandboxCore, key: str, handler: Handler, raw: JSON, path_args: dict[str, str]
) -> tuple[int, JSON]:
    try:
        checked = param_schema.validate(key, raw)
        result = handler(sandbox, checked, **path_args)
        return 200, expand(result, checked.get("expand", []), sandbox.store.find)
    except StripeError as exc:
        return exc.status, exc.body()


def _replay(saved: JSON, fingerprint: JSON, idem: str) -> Response:
    if {"path": saved["path"], "params": saved["params"]} != fingerprint:
        raise StripeError(
            "Keys for idempotent requests can only be used with the same parameters they were "
            f"first used with. Try using a key other than '{idem}' if you meant to execute a "
            "different request.",
            type="idempotency_error",
        )
    return json_response(saved["body"], saved["status"], idempotent_replayed="true")


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
