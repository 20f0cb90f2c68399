"""Hosted pages: Checkout (``/c/pay/…``), the customer portal (``/p/session/…``), invoices."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from . import billing, cards, flows
from .api import core
from .clock import format_date
from .resources.subscriptions import pause_subscription, update_subscription
from .wire import JSON, StripeError

hosted = Blueprint("hosted", __name__, template_folder="templates")


@hosted.app_template_filter("money")
def money(amount: int | None, currency: str = "usd") -> str:
    """``1999 usd`` → ``$19.99``; zero-decimal currencies in whole units (``500 jpy`` →
    ``¥500``), three-decimal ones with three decimals (``1234 kwd`` → ``KWD 1.234``)."""
    return billing.format_money(amount, currency)


@hosted.app_template_filter("date")
def date(timestamp: int | None) -> str:
    """A unix timestamp as ``Jan 5, 2026``."""
    return format_date(timestamp) if timestamp else "—"


def _find(kind: str, object_id: str) -> JSON:
    obj = core().store.objects.get(kind, {}).get(object_id)
    if obj is None:
        abort(404)
    return obj


# -- Checkout ------------------------------------------------------------------------------


def _checkout_page(session: JSON, error: str | None = None, status: int = 200) -> BaseResponse:
    sandbox = core()
    secret = sandbox.store.secret(session["id"])
    customer = sandbox.store.find(session["customer"] or "")
    html = render_template(
        "sandbox/checkout.html",
        session=session,
        items=secret["line_items"],
        trial_days=secret.get("trial_days"),
        trial_end=secret.get("trial_end"),
        email=(customer or {}).get("email") or session["customer_email"],
        error=error,
        test_cards=_TEST_CARDS,
    )
    return BaseResponse(html, status=status, mimetype="text/html")


_TEST_CARDS = [
    ("4242 4242 4242 4242", "succeeds"),
    ("4000 0000 0000 0341", "saves, then every charge fails"),
    ("4000 0000 0000 9995", "declined: insufficient funds"),
    ("4000 0000 0000 0002", "declined"),
]


@hosted.get("/c/pay/<session_id>")
def checkout_page(session_id: str) -> BaseResponse:
    """The payment page for a Checkout Session."""
    with core().store.lock:
        session = _find("checkout.session", session_id)
        if session["status"] == "complete":
            return redirect(flows.success_redirect(core(), session), 303)
        return _checkout_page(session)


@hosted.post("/c/pay/<session_id>")
def checkout_pay(session_id: str) -> BaseResponse:
    """Pay: 303 to ``success_url`` or the page again with the decline message."""
    sandbox = core()
    with sandbox.unit_of_work():
        session = _find("checkout.session", session_id)
        try:
            flows.complete_checkout(
                sandbox,
                session,
                request.form.get("card_number", ""),
                request.form.get("email", "").strip() or None,
            )
        except StripeError as exc:
            return _checkout_page(session, exc.message, 402)
    return redirect(flows.success_redirect(sandbox, session), 303)


@hosted.get("/c/done/<session_id>")
def checkout_done(session_id: str) -> str:
    """Shown after paying a session that has no ``success_url``."""
    return render_template(
        "sandbox/message.html",
        title="Payment complete",
        message="Thanks! Your subscription is active.",
        link=None,
    )


# -- Portal --------------------------------------------------------------------------------


def _portal_state(session: JSON) -> dict[str, Any]:
    sandbox = core()
    config = _find("billing_portal.configuration", session["configuration"])
    customer = sandbox.store.objects.get("customer", {}).get(session["customer"]) or abort(404)
    subs = [
        sub
        for sub in sandbox.store.all("subscription")
        if sub["customer"] == customer["id"]
        and sub["status"] not in ("canceled", "incomplete_expired")
    ]
    invoices = [
        inv
        for inv in sandbox.store.all("invoice")
        if inv["customer"] == customer["id"] and inv["status"] != "draft"
    ]
    pm_id = customer["invoice_settings"]["default_payment_method"] or next(
        (sub["default_payment_method"] for sub in subs if sub["default_payment_method"]), None
    )
    return {
        "session": session,
        "config": config,
        "customer": customer,
        "subscriptions": subs,
        "invoices": invoices,
        "payment_method": sandbox.store.find(pm_id) if pm_id else None,
        "plans": lambda sub: _plan_choices(config, sub["currency"]),
        "product_name": lambda price: billing.product_name(sandbox, price),
    }


def _plan_choices(config: JSON, currency: str) -> list[JSON]:
    """Prices the customer may switch to: the configuration's, else every active recurring one;
    only those in the subscription's ``currency`` (a subscription cannot change currency)."""
    sandbox = core()
    configured = config["features"]["subscription_update"]["products"] or []
    if configured:
        ids = [price_id for product in configured for price_id in product["prices"]]
        prices = [sandbox.store.objects["price"][price_id] for price_id in ids]
    else:
        prices = [
            price
            for price in reversed(sandbox.store.all("price"))
            if price["active"]
            and price["recurring"]
            and sandbox.store.objects.get("product", {}).get(price["product"], {}).get("active")
        ]
    return [price for price in prices if price["currency"] == currency]


def _portal(session_id: str, step: str | None = None, **extra: Any) -> BaseResponse:
    session = _find("billing_portal.session", session_id)
    state = _portal_state(session)
    flow = session["flow"]
    step = step or request.args.get("step") or (flow["type"] if flow else "home")
    html = render_template("sandbox/portal.html", step=step, flow=flow, **state, **extra)
    return BaseResponse(html, status=402 if extra.get("error") else 200, mimetype="text/html")


def _after(session: JSON, notice: str) -> BaseResponse:
    """Where to go once an action succeeded: the flow's redirect, else the portal home."""
    flow = session["flow"]
    if flow and flow["after_completion"]["type"] == "redirect":
        return redirect(flow["after_completion"]["redirect"]["return_url"], 303)
    if flow and flow["after_completion"]["type"] == "hosted_confirmation":
        message = flow["after_completion"]["hosted_confirmation"]["custom_message"] or notice
        return redirect(
            url_for("hosted.portal", session_id=session["id"], step="done", notice=message), 303
        )
    return redirect(
        url_for("hosted.portal", session_id=session["id"], step="home", notice=notice), 303
    )


def _subscription(session: JSON) -> JSON:
    sub = _find("subscription", request.form.get("subscription", ""))
    if sub["customer"] != session["customer"]:
        abort(404)
    return sub


@hosted.get("/p/session/<session_id>")
def portal(session_id: str) -> BaseResponse:
    """The portal home, or the step a ``flow_data`` deep link opens on."""
    with core().store.lock:
        return _portal(session_id, notice=request.args.get("notice"))


@hosted.post("/p/session/<session_id>/payment_method")
def portal_payment_method(session_id: str) -> BaseResponse:
    """Save a new default card for the customer, then pay the latest open invoice with it."""
    sandbox = core()
    with sandbox.unit_of_work():
        session = _find("billing_portal.session", session_id)
        customer = _find("customer", session["customer"])
        try:
            pm = flows.update_payment_method(sandbox, customer, request.form.get("card_number", ""))
            flows.pay_latest_open_invoice(sandbox, customer, pm)
        except StripeError as exc:
            return _portal(session_id, "payment_method_update", error=exc.message)
    return _after(session, "Payment method updated.")


@hosted.post("/p/session/<session_id>/cancel")
def portal_cancel(session_id: str) -> BaseResponse:
    """Cancel (at period end or at once, per the configuration)."""
    sandbox = core()
    with sandbox.unit_of_work():
        session = _find("billing_portal.session", session_id)
        sub = _subscription(session)
        config = _find("billing_portal.configuration", session["configuration"])
        if config["features"]["subscription_cancel"]["mode"] == "immediately":
            billing.cancel(sandbox, sub, sandbox.now_for(sub))
            notice = "Your subscription has been canceled."
        else:
            update_subscription(sandbox, sub, {"cancel_at_period_end": True})
            notice = f"Your plan will be canceled on {date(sub['cancel_at'])}."
    return _after(session, notice)


@hosted.post("/p/session/<session_id>/pause")
def portal_pause(session_id: str) -> BaseResponse:
    """Pause the subscription (status ``paused``; no invoices until it is resumed)."""
    sandbox = core()
    with sandbox.unit_of_work():
        session = _find("billing_portal.session", session_id)
        sub = _subscription(session)
        config = _find("billing_portal.configuration", session["configuration"])
        if not config["features"]["subscription_pause"]["enabled"]:
            abort(403)
        try:
            pause_subscription(sandbox, sub)
        except StripeError as exc:
            return _portal(session_id, "subscription_pause", error=exc.message)
    return _after(session, "Your subscription is paused.")


@hosted.post("/p/session/<session_id>/renew")
def portal_renew(session_id: str) -> BaseResponse:
    """Don't cancel: clear a scheduled cancellation."""
    sandbox = core()
    with sandbox.unit_of_work():
        session = _find("billing_portal.session", session_id)
        sub = _subscription(session)
        update_subscription(sandbox, sub, {"cancel_at_period_end": False})
    return _after(session, "Your plan will renew.")


@hosted.post("/p/session/<session_id>/switch")
def portal_switch(session_id: str) -> BaseResponse:
    """Switch the subscription's (first) item to another price."""
    sandbox = core()
    with sandbox.unit_of_work():
        session = _find("billing_portal.session", session_id)
        sub = _subscription(session)
        config = _find("billing_portal.configuration", session["configuration"])
        price_id = request.form.get("price", "")
        if price_id not in {price["id"] for price in _plan_choices(config, sub["currency"])}:
            return _portal(session_id, "subscription_update", error="That plan is not available.")
        behavior = config["features"]["subscription_update"]["proration_behavior"]
        item = sub["items"]["data"][0]
        try:
            update_subscription(
                sandbox,
                sub,
                {
                    "items": [{"id": item["id"], "price": price_id}],
                    "proration_behavior": behavior,
                },
            )
        except StripeError as exc:
            return _portal(session_id, "subscription_update", error=exc.message)
    return _after(session, "Your plan has been updated.")


@hosted.post("/p/session/<session_id>/confirm_update")
def portal_confirm_update(session_id: str) -> BaseResponse:
    """Confirm the change a ``subscription_update_confirm`` deep link proposed."""
    sandbox = core()
    with sandbox.unit_of_work():
        session = _find("billing_portal.session", session_id)
        flow = session["flow"] or abort(400)
        spec = flow["subscription_update_confirm"] or abort(400)
        sub = _find("subscription", spec["subscription"])
        config = _find("billing_portal.configuration", session["configuration"])
        items = [
            {key: value for key, value in item.items() if value is not None}
            for item in spec["items"]
        ]
        try:
            update_subscription(
                sandbox,
                sub,
                {
                    "items": items,
                    "proration_behavior": config["features"]["subscription_update"][
                        "proration_behavior"
                    ],
                },
            )
        except StripeError as exc:
            return _portal(session_id, "subscription_update_confirm", error=exc.message)
    return _after(session, "Your plan has been updated.")


# -- Invoices ------------------------------------------------------------------------------


@hosted.get("/i/<invoice_id>")
def invoice_page(invoice_id: str) -> str:
    """The hosted invoice page."""
    with core().store.lock:
        invoice = _find("invoice", invoice_id)
        return render_template(
            "sandbox/invoice.html", invoice=invoice, error=request.args.get("error")
        )


@hosted.get("/i/<invoice_id>/pdf")
def invoice_pdf(invoice_id: str) -> BaseResponse:
    """A plain-text stand-in for the invoice PDF."""
    invoice = _find("invoice", invoice_id)
    lines = [f"Invoice {invoice['number']}  {money(invoice['total'], invoice['currency'])}"]
    lines += [
        f"{line['description']}: {money(line['amount'], line['currency'])}"
        for line in invoice["lines"]["data"]
    ]
    return BaseResponse("\n".join(lines) + "\n", mimetype="text/plain")


@hosted.post("/i/<invoice_id>/pay")
def invoice_pay(invoice_id: str) -> BaseResponse:
    """Pay an open invoice with a card entered on the hosted invoice page."""
    sandbox = core()
    with sandbox.unit_of_work():
        invoice = _find("invoice", invoice_id)
        customer = _find("customer", invoice["customer"])
        at = sandbox.now_for(customer)
        number = cards.normalize(request.form.get("card_number", ""))
        error = cards.attach_error(number)
        if error is None and invoice["status"] == "open":
            pm = billing.create_card(sandbox, number, at, email=customer["email"])
            billing.attach(sandbox, pm, customer, at)
            error = billing.pay(sandbox, invoice, at, pm["id"])
    if error:
        return redirect(
            url_for("hosted.invoice_page", invoice_id=invoice_id, error=error.message), 303
        )
    return redirect(url_for("hosted.invoice_page", invoice_id=invoice_id), 303)
