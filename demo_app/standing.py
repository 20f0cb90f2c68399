"""Where the signed-in user stands for the pricing and billing pages: the price they pay,
whether a trial still applies to them, and a checkout Stripe has completed but the worker
has not projected yet. Local state only (the projection and the webhook inbox)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import g
from flask_login import current_user

from flask_lattice import CheckoutSession, Price, Subscription, WebhookEvent, projection_revision

from .extensions import billing, db

_PRICE = "quillnote_current_price"


def billable_key() -> str | None:
    """The extension's key for the signed-in user (``user:<id>``), or None when signed out."""
    if not current_user.is_authenticated:
        return None
    return f"user:{current_user.get_id()}"


def revision() -> str:
    """The user's billing revision, as ``status.json`` reports it ('' when signed out)."""
    key = billable_key()
    return projection_revision(key) if key is not None else ""


def current_price() -> Price | None:
    """The catalog price of the user's subscription (its first item), if one is projected.

    Cached for the request; ``interval`` is Stripe's ``price.recurring.interval``.
    """
    if _PRICE not in g:
        subscription = billing.subscription()
        price = None
        if subscription is not None and subscription.price_ids:
            price = db.session.scalar(
                sa.select(Price).where(Price.stripe_price_id == subscription.price_ids[0])
            )
        setattr(g, _PRICE, price)
    cached: Price | None = g.get(_PRICE)
    return cached


def current_interval() -> str | None:
    """``month`` or ``year`` for a live subscription, else None."""
    subscription = billing.subscription()
    if subscription is None or subscription.status in ("canceled", "incomplete_expired"):
        return None
    price = current_price()
    return price.interval if price is not None else None


def trial_applies() -> bool:
    """Whether a plan's free trial would apply: the extension gives it only to a customer
    who never had a subscription, so a visitor or a user with no subscription row at all."""
    key = billable_key()
    if key is None:
        return True
    had = db.session.scalar(
        sa.select(sa.func.count(Subscription.id)).where(Subscription.billable_key == key)
    )
    return not had


def pending_checkout() -> str | None:
    """The plan key of a Checkout Stripe reported complete (``checkout.session.completed``
    is in the inbox, for a session the app recorded for this user) whose subscription is not
    projected yet; None otherwise."""
    key = billable_key()
    if key is None:
        return None
    events = db.session.scalars(
        sa.select(WebhookEvent.payload)
        .where(WebhookEvent.type == "checkout.session.completed")
        .where(WebhookEvent.payload.contains(f'"{key}"'))
        .order_by(WebhookEvent.created.desc())
        .limit(5)
    )
    for payload in events:
        session = json.loads(payload)["data"]["object"]
        recorded = db.session.scalar(
            sa.select(CheckoutSession).where(
                CheckoutSession.stripe_session_id == session.get("id"),
                CheckoutSession.billable_key == key,
            )
        )
        if recorded is None:
            continue
        subscription_id = session.get("subscription")
        if isinstance(subscription_id, dict):
            subscription_id = subscription_id.get("id")
        projected = db.session.scalar(
            sa.select(sa.func.count(Subscription.id)).where(
                Subscription.stripe_subscription_id == subscription_id
            )
        )
        return None if projected else recorded.plan_key
    return None
