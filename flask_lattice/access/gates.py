"""Access gating: ``requires_plan`` / ``requires_feature``, blueprint guards, helpers.

Every answer comes from the local, webhook-projected ``lattice_subscriptions`` rows:
one query per request at most (cached on ``g``), and never a Stripe call. The gates,
the helpers and the status pages all read the same :class:`~.policy.Access`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, ParamSpec, TypeVar, cast

from flask import Flask, flash, g, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import defer, lazyload

from ..billable import Billable
from ..errors import LatticeError
from ..models import Subscription, utcnow
from ..plans import Plan
from ..state import LatticeState, billable_of_request, current_billable, get_state, unauthorized
from .policy import Access, AccessPolicy, PolicyFunction, SubscriptionState, resolve
from .query import subscription_states

P = ParamSpec("P")
R = TypeVar("R")

#: Methods that are never gated (CORS preflight), as in Flask-Login's ``login_required``.
EXEMPT_METHODS = frozenset({"OPTIONS"})

_CACHE_KEY = "lattice_access"
_ROW_CACHE_KEY = "lattice_subscription_row"

# The full row of billing.subscription(): its items and the raw Stripe snapshot load on use.
_LAZY_ROW = (lazyload(Subscription.items), defer(Subscription.raw))


@dataclass(frozen=True)
class Denial:
    """Why a request was refused; what ``@billing.plan_required_handler`` receives."""

    kind: Literal["plan", "feature"]
    required: str
    current: Plan | None
    billable: Billable | None

    @property
    def error(self) -> str:
        """The machine-readable error code: ``plan_required`` or ``feature_required``."""
        return f"{self.kind}_required"

    @property
    def message(self) -> str:
        """A sentence for people, as flashed on the pricing page."""
        if self.kind == "plan":
            plan = get_state().config.plans.get(self.required)
            return f"This page needs the {plan.name} plan or higher."
        return f"This page needs a plan that includes {self.required}."


# -- what the billable may use -----------------------------------------------------------


def _built_in_policy(state: LatticeState) -> PolicyFunction:
    """The app's :class:`~.policy.AccessPolicy`, built from its settings on first use."""
    policy = state.built_in_policy
    if policy is None:
        policy = state.built_in_policy = AccessPolicy.from_config(state.config)
    return policy


def default_policy(subscription: SubscriptionState, now: datetime) -> str | None:
    """The built-in policy of the current app, for custom policies to fall back on.

    ``now`` is an aware UTC datetime; returns the plan key the row grants, or ``None``.
    """
    return _built_in_policy(get_state())(subscription, now)


def current_access() -> Access:
    """What the current billable may use: its effective plan, the subscription behind it
    and whether one grants it. Read once per request (one query), then cached on ``g``."""
    return _access(get_state(), g._get_current_object())


def _access(state: LatticeState, request_globals: Any) -> Access:
    """:func:`current_access`, for a caller that already holds the app's state and the
    request's ``g`` object: a gate resolves Flask's proxies once per check."""
    cached: Access | None = request_globals.get(_CACHE_KEY)
    if cached is None:
        cached = _load_access(state, billable_of_request(state, request_globals))
        setattr(request_globals, _CACHE_KEY, cached)
    return cached


def _load_access(state: LatticeState, billable: Billable | None) -> Access:
    if billable is None:
        return Access(plan=None, subscription=None, active=False)
    policy: PolicyFunction = state.hooks.access_policy or _built_in_policy(state)
    rows = subscription_states(billable.key, state.db.session)
    return resolve(rows, utcnow(), policy, state.config.plans)


def current_plan() -> Plan | None:
    """The billable's effective plan: the one a subscription grants, else the free plan.

    ``None`` for an anonymous request, or when nothing is live and the catalog has no free plan.
    """
    return current_access().plan


def subscription() -> Subscription | None:
    """The full local row of :attr:`~.policy.Access.subscription` (see :func:`~.policy.resolve`).

    Loaded on first call with one more query (items and ``raw`` on first use), then
    cached for the request; gates and plan checks never load it.
    """
    if _ROW_CACHE_KEY not in g:
        snapshot = current_access().subscription
        row = None
        if snapshot is not None:
            row = get_state().db.session.get(Subscription, snapshot.id, options=_LAZY_ROW)
        setattr(g, _ROW_CACHE_KEY, row)
    loaded: Subscription | None = g.get(_ROW_CACHE_KEY)
    return loaded


def has_plan(plan: str) -> bool:
    """Whether the billable holds ``plan`` or a higher-ranked plan (an unknown ``plan``
    raises :class:`~.errors.UnknownPlanError` naming the known ones)."""
    state = get_state()
    held = _access(state, g._get_current_object()).plan
    return state.config.plans.admits(held.key if held else None, plan)


def has_feature(feature: str) -> bool:
    """Whether the billable's plan includes ``feature`` (an unknown ``feature`` raises
    :class:`~.errors.LatticeError` naming the known ones)."""
    held = current_plan()
    if held is not None and feature in held.features:
        return True
    _check_feature(feature)
    return False


def _check_feature(feature: str) -> None:
    known = get_state().config.plans.features
    if feature not in known:
        raise LatticeError(
            f"unknown feature {feature!r}: no plan in LATTICE_PLANS lists it "
            f"(known features: {', '.join(sorted(known)) or 'none'})"
        )


# -- gates ---------------------------------------------------------------------------------


def requires_plan(plan: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Admit only billables on ``plan`` (a key of ``LATTICE_PLANS``) or a higher-ranked plan::

        @app.get("/reports")
        @login_required
        @requires_plan("pro")
        def reports(): ...

    Reads only the local projection (one query per request, cached on ``g``). Anonymous
    requests get Flask-Login's ``unauthorized()``; refused ones get the
    ``@billing.plan_required_handler`` answer (by default a 402 JSON body for API calls, a
    flash and a redirect to the pricing page for browsers). An unknown plan key raises
    :class:`~flask_lattice.errors.UnknownPlanError` on the first request.
    """
    _check_name(plan, "requires_plan", "plan")
    return _gate(functools.partial(_plan_denial, plan))


def requires_feature(feature: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Admit only billables whose plan includes ``feature``."""
    _check_name(feature, "requires_feature", "feature")
    return _gate(functools.partial(_feature_denial, feature))


def plan_required(plan: str) -> Callable[[], ResponseReturnValue | None]:
    """A ``before_request`` guard for a whole blueprint: ``bp.before_request(plan_required("pro"))``."""
    _check_name(plan, "plan_required", "plan")
    return functools.partial(_refusal, functools.partial(_plan_denial, plan))


def feature_required(feature: str) -> Callable[[], ResponseReturnValue | None]:
    """A ``before_request`` guard for a whole blueprint, by feature."""
    _check_name(feature, "feature_required", "feature")
    return functools.partial(_refusal, functools.partial(_feature_denial, feature))


def _check_name(name: object, decorator: str, what: str) -> None:
    if callable(name):
        raise LatticeError(f"use @{decorator}('…') with a {what} name, not bare @{decorator}")
    if not isinstance(name, str) or not name.strip():
        raise LatticeError(f"{decorator}() needs a non-empty {what} name, got {name!r}")


def _plan_denial(plan: str) -> Denial | None:
    return None if has_plan(plan) else _denied("plan", plan)


def _feature_denial(feature: str) -> Denial | None:
    return None if has_feature(feature) else _denied("feature", feature)


def _denied(kind: Literal["plan", "feature"], required: str) -> Denial:
    """Anonymous requests hold no plan, so they always end up here (with no billable)."""
    return Denial(kind, required, current_plan(), current_billable())


def _refusal(check: Callable[[], Denial | None]) -> ResponseReturnValue | None:
    """``None`` to let the request through, else the response that refuses it."""
    if request.method in EXEMPT_METHODS:
        return None
    denial = check()
    if denial is None:
        return None
    if denial.billable is None:
        return unauthorized()
    handler = get_state().hooks.plan_required_handler or default_denial_response
    response: ResponseReturnValue = handler(denial)
    return response


def _gate(check: Callable[[], Denial | None]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def gated_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                refusal = _refusal(check)
                if refusal is not None:
                    return refusal
                return await view(*args, **kwargs)

            return cast(Callable[P, R], gated_async)

        @functools.wraps(view)
        def gated(*args: P.args, **kwargs: P.kwargs) -> R:
            refusal = _refusal(check)
            if refusal is not None:
                return cast(R, refusal)
            return view(*args, **kwargs)

        return gated

    return decorate


# -- denial responses ----------------------------------------------------------------------


def wants_json() -> bool:
    """Whether the request is an API call: a JSON body, or an Accept preferring JSON."""
    if request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def default_denial_response(denial: Denial) -> ResponseReturnValue:
    """402 with a JSON body for API calls; otherwise a flash and a redirect to pricing."""
    if wants_json():
        body = {
            "error": denial.error,
            "required": denial.required,
            "current": denial.current.key if denial.current else None,
        }
        return jsonify(body), 402
    flash(denial.message, "warning")
    next_url = request.full_path if request.query_string else request.path
    return redirect(url_for("lattice.pricing", next=next_url))


# -- templates -------------------------------------------------------------------------------


def install_template_helpers(app: Flask) -> None:
    """Register the Jinja globals ``lattice_current_plan()``, ``lattice_has_plan()``,
    ``lattice_has_feature()``, ``lattice_subscription()`` and ``lattice_plans``."""
    app.jinja_env.globals.update(
        lattice_current_plan=current_plan,
        lattice_has_plan=has_plan,
        lattice_has_feature=has_feature,
        lattice_subscription=subscription,
        lattice_plans=get_state(app).config.plans,
    )
