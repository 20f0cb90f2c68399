"""Per-app state kept in ``app.extensions["lattice"]``, and how adapters reach it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from flask import Flask, abort, current_app, g
from flask.typing import ResponseReturnValue
from flask_login import current_user

from .billable import Billable, billable_from_user
from .config import LatticeConfig
from .errors import LatticeError

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy
    from redis import Redis

    from .stripe_gateway import StripeGateway

EXTENSION_KEY = "lattice"
#: Where :func:`current_billable` keeps the request's billable on ``g``.
_BILLABLE_KEY = "lattice_billable"
_UNRESOLVED = object()

BillableLoader = Callable[[], Billable | None]
EventHandler = Callable[[dict[str, Any]], None]


@dataclass(eq=False)
class Hooks:
    """Callables a host registers on :class:`~flask_lattice.LatticeBilling` with decorators."""

    billable_loader: BillableLoader | None = None
    access_policy: Callable[..., Any] | None = None
    plan_required_handler: Callable[..., Any] | None = None
    downgrade_guard: Callable[..., Any] | None = None
    seats_in_use: Callable[[Billable], int] | None = None
    checkout_owner: Callable[[dict[str, Any]], str | None] | None = None
    admin_required: Callable[[], bool] | None = None
    event_handlers: dict[str, list[EventHandler]] = field(default_factory=dict)


@dataclass(eq=False)
class LatticeState:
    """Everything Flask-Lattice keeps for one app."""

    config: LatticeConfig
    db: SQLAlchemy
    hooks: Hooks
    stripe: StripeGateway
    redis: Redis[bytes] | None = None
    #: The built-in access policy (``AccessPolicy``), built from ``config`` by the access
    #: gates on first use: ``(subscription state, now) -> plan key or None``.
    built_in_policy: Callable[[Any, datetime], str | None] | None = None


def get_state(app: Flask | None = None) -> LatticeState:
    """The lattice state of ``app`` (default: the current app)."""
    target = app if app is not None else current_app
    try:
        state: LatticeState = target.extensions[EXTENSION_KEY]
    except KeyError:
        raise LatticeError(
            f"Flask-Lattice is not initialised on app {target.name!r}: "
            "call LatticeBilling(app, db=db) or billing.init_app(app)"
        ) from None
    return state


def current_billable() -> Billable | None:
    """Who is billed in this request: the host's ``billable_loader``, else Flask-Login's user.

    Resolved once per request and cached on ``g``.
    """
    return billable_of_request(get_state(), g._get_current_object())


def billable_of_request(state: LatticeState, request_globals: Any) -> Billable | None:
    """:func:`current_billable`, for a caller that already holds the app's state and the
    request's ``g`` object (each use of Flask's proxies costs more than a cached answer)."""
    billable = request_globals.get(_BILLABLE_KEY, _UNRESOLVED)
    if billable is _UNRESOLVED:
        loader = state.hooks.billable_loader
        if loader is None:
            billable = billable_from_user(current_user._get_current_object())
        else:
            billable = loader()
        setattr(request_globals, _BILLABLE_KEY, billable)
    return cast(Billable | None, billable)


def unauthorized() -> ResponseReturnValue:
    """What an anonymous request gets: Flask-Login's ``login_manager.unauthorized()`` (its
    login redirect, or its 401), or a plain 401 when the app has no Flask-Login.

    The one answer for every route and gate that needs a billable.
    """
    login_manager = getattr(current_app, "login_manager", None)
    if login_manager is None:
        abort(401, description="Sign in to continue.")
    response: ResponseReturnValue = login_manager.unauthorized()
    return response
