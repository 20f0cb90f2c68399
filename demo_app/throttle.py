"""The sign-in throttle: a few failed sign-ins per minute per account and per address.

Flask-Limiter counts failures only (a sign-in that succeeds costs nothing) in a moving
one-minute window, and refuses further attempts with 429 before the password is checked.
Counts live in the app's Redis (``LATTICE_REDIS_URL``, as the webhook queue), so every
web process shares them; without a Redis URL they are kept per process, in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar, cast

from flask import Flask, Response, render_template, request
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

from .presentation import error_page

#: Failed sign-ins allowed for one account (email address), per minute, from anywhere.
PER_ACCOUNT = "5 per minute"
#: Failed sign-ins allowed from one client address, per minute, whatever the account.
PER_ADDRESS = "10 per minute"
TOO_MANY = "Too many failed sign-ins. Wait a minute, then try again."

limiter = Limiter(
    key_func=get_remote_address,
    strategy="moving-window",
    key_prefix="quillnote",
    swallow_errors=True,  # Redis down: sign-in still works, counted in memory meanwhile
    in_memory_fallback_enabled=True,
)

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])


def storage_uri(redis_url: str | None) -> str:
    """Flask-Limiter's storage for the app's Redis URL (``unix://`` is ``redis+unix://``)."""
    if not redis_url:
        return "memory://"
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url.removeprefix("unix://")
    return redis_url


def _account_key() -> str:
    return "account:" + request.form.get("email", "").strip().lower()


def _failed(response: Response) -> bool:
    return response.status_code == 400


def throttle_sign_in(view: F) -> F:
    """Limit failed POSTs to ``view`` per account and per client address."""
    limited = limiter.limit(
        PER_ACCOUNT, key_func=_account_key, methods=["POST"], deduct_when=_failed
    )(view)
    return cast(F, limiter.limit(PER_ADDRESS, methods=["POST"], deduct_when=_failed)(limited))


def too_many_attempts(error: RateLimitExceeded) -> ResponseReturnValue:
    """429: the sign-in form again, with the email kept and when to try again."""
    if request.endpoint != "auth.login":
        return error_page(error)
    page = render_template("auth/login.html", error=TOO_MANY, form=request.form)
    current = limiter.current_limit
    wait = max(1, current.reset_at - int(time.time())) if current is not None else 60
    return page, 429, {"Retry-After": str(wait)}


def init_app(app: Flask) -> None:
    """Point the limiter at the app's Redis and answer its refusals with the sign-in form."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", storage_uri(app.config.get("LATTICE_REDIS_URL")))
    limiter.init_app(app)
    app.register_error_handler(RateLimitExceeded, too_many_attempts)
