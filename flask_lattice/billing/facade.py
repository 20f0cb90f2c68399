"""``billing.subscriptions``: a typed facade over the app's Stripe gateway for subscriptions.

Reads (:meth:`~SubscriptionsFacade.retrieve`, :meth:`~SubscriptionsFacade.list`,
:meth:`~SubscriptionsFacade.search`, :meth:`~SubscriptionsFacade.stream`) and writes
(:meth:`~SubscriptionsFacade.update`, :meth:`~SubscriptionsFacade.swap`,
:meth:`~SubscriptionsFacade.set_quantity`, :meth:`~SubscriptionsFacade.cancel`,
:meth:`~SubscriptionsFacade.resume`, :meth:`~SubscriptionsFacade.pause_collection`,
:meth:`~SubscriptionsFacade.unpause`) return Stripe's objects, as Stripe answered. They
never touch the local ``lattice_subscriptions`` rows: those change only when the webhook
for the change has been processed.

Every write carries a deterministic idempotency key made of the operation, the
subscription, the exact parameters and a ``scope``: the same call with the same scope is
sent to Stripe once (a double click), while a different change, or the same change with
another scope, is a new request. The typed writes always say ``proration_behavior``
(``LATTICE_PRORATION_BEHAVIOR`` unless given), so the gateway's proration guard lets them
through; :meth:`~SubscriptionsFacade.update` sends exactly what it is given, so the guard
refuses it when ``proration_behavior`` is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypedDict, Unpack

from flask import Flask

from ..config import PRORATION_BEHAVIORS, LatticeConfig
from ..errors import StripeGuardError
from ..state import get_state
from ..stripe_gateway import StripeGateway, idempotency_key

#: What the facade's methods return: the SDK's ``Subscription`` / ``Invoice`` objects
#: (read them with ``obj["field"]``), or list and search pages of them.
StripeObject = Any


class ItemChange(TypedDict, total=False):
    """How :meth:`SubscriptionsFacade.swap` and :meth:`~SubscriptionsFacade.set_quantity`
    apply an item change.

    ``proration_behavior`` is Stripe's (``create_prorations``, ``always_invoice`` or
    ``none``; default: ``LATTICE_PRORATION_BEHAVIOR``); ``proration_date`` is the unix time
    (seconds) the change was previewed at, so the prorations are the ones shown; ``scope``
    makes the idempotency key (the same scope and parameters are one change).
    """

    proration_behavior: str | None
    proration_date: int | None
    scope: str


class SubscriptionsFacade:
    """Subscription calls through one app's :class:`~flask_lattice.stripe_gateway.StripeGateway`.

    Get it as ``billing.subscriptions`` inside an app context. Errors are
    :class:`~flask_lattice.stripe_gateway.StripeAPIError` subclasses (from Stripe) or
    :class:`~flask_lattice.errors.StripeGuardError` (refused before sending).
    """

    def __init__(self, gateway: StripeGateway, config: LatticeConfig) -> None:
        self._gateway = gateway
        self._config = config

    @classmethod
    def for_app(cls, app: Flask | None = None) -> SubscriptionsFacade:
        """The facade of ``app`` (default: the current app)."""
        state = get_state(app)
        return cls(state.stripe, state.config)

    # -- reads -----------------------------------------------------------------------------

    def retrieve(
        self, subscription_id: str, *, expand: Sequence[str] | None = None
    ) -> StripeObject:
        """The subscription as Stripe holds it now."""
        return self._gateway.retrieve_subscription(
            subscription_id, expand=list(expand) if expand else None
        )

    def list(
        self,
        *,
        customer: str | None = None,
        status: str | None = None,
        price: str | None = None,
        limit: int = 10,
        starting_after: str | None = None,
    ) -> StripeObject:
        """One page of subscriptions (``page["data"]``, ``page["has_more"]``), newest first.

        Without ``status`` Stripe leaves out canceled subscriptions; ``status="all"``
        includes them. Use :meth:`stream` to walk every page.
        """
        params = _present(
            customer=customer,
            status=status,
            price=price,
            limit=limit,
            starting_after=starting_after,
        )
        return self._gateway.list_subscription_page(params)

    def search(self, query: str, *, limit: int = 10, page: str | None = None) -> StripeObject:
        """One page of subscriptions matching a Search Query Language ``query``.

        Search is eventually consistent: a subscription created or changed in the last
        minute (up to an hour during incidents) may be missing or stale. Never use it to
        read back a write; use :meth:`retrieve` or :meth:`list`.
        """
        params = _present(query=query, limit=limit, page=page)
        return self._gateway.search_subscription_page(params)

    def stream(
        self,
        *,
        query: str | None = None,
        customer: str | None = None,
        status: str | None = None,
        price: str | None = None,
        page_size: int = 100,
    ) -> Iterator[StripeObject]:
        """Every matching subscription, fetching page after page as the caller iterates.

        With ``query`` it walks search results (eventually consistent, see :meth:`search`),
        otherwise the list filtered by ``customer``, ``status`` and ``price``. A page
        that fails mid-stream raises :class:`~flask_lattice.stripe_gateway.StripeAPIError`
        from the iteration; it never ends the stream silently.
        """
        if query is not None:
            yield from self._gateway.stream_subscriptions(
                {"query": query, "limit": page_size}, search=True
            )
        else:
            yield from self._gateway.stream_subscriptions(
                _present(customer=customer, status=status, price=price, limit=page_size),
                search=False,
            )

    def preview_change(
        self,
        subscription_id: str,
        items: Sequence[Mapping[str, Any]],
        *,
        proration_behavior: str | None = None,
        proration_date: int | None = None,
    ) -> StripeObject:
        """The invoice that changing ``items`` would produce (``invoices.create_preview``).

        Pass the same ``proration_date`` to :meth:`swap` or :meth:`set_quantity` to apply
        exactly the prorations shown. Nothing changes in Stripe.
        """
        details: dict[str, Any] = {
            "items": [dict(item) for item in items],
            "proration_behavior": self._proration(proration_behavior),
        }
        if proration_date is not None:
            details["proration_date"] = proration_date
        return self._gateway.preview_invoice(
            {"subscription": subscription_id, "subscription_details": details}
        )

    # -- writes ----------------------------------------------------------------------------

    def update(
        self, subscription_id: str, params: Mapping[str, Any], *, scope: str = ""
    ) -> StripeObject:
        """Send ``params`` as a subscription update, unchanged.

        Under ``LATTICE_REQUIRE_EXPLICIT_PRORATION`` the params must say
        ``proration_behavior``, or :class:`~flask_lattice.errors.StripeGuardError` is
        raised and nothing is sent.
        """
        return self._write("update", subscription_id, params, scope)

    def swap(
        self,
        subscription_id: str,
        *,
        item_id: str,
        price_id: str,
        quantity: int | None = None,
        **change: Unpack[ItemChange],
    ) -> StripeObject:
        """Move the subscription item ``item_id`` to ``price_id`` (a plan swap), keeping
        its quantity unless ``quantity`` is given."""
        item: dict[str, Any] = {"id": item_id, "price": price_id}
        if quantity is not None:
            item["quantity"] = quantity
        return self._change_item("swap", subscription_id, item, change)

    def set_quantity(
        self, subscription_id: str, *, item_id: str, quantity: int, **change: Unpack[ItemChange]
    ) -> StripeObject:
        """Set the quantity (seats) of the subscription item ``item_id``."""
        item = {"id": item_id, "quantity": quantity}
        return self._change_item("quantity", subscription_id, item, change)

    def cancel(
        self,
        subscription_id: str,
        *,
        at_period_end: bool = True,
        invoice_now: bool | None = None,
        prorate: bool | None = None,
        scope: str = "",
    ) -> StripeObject:
        """Cancel at the end of the current period (the default), or immediately.

        A period-end cancel can be undone with :meth:`resume` until the period ends;
        ``invoice_now`` and ``prorate`` apply to an immediate cancel only.
        """
        if at_period_end:
            params = {"cancel_at_period_end": True, **self._proration_params(None)}
            return self._write("cancel-at-period-end", subscription_id, params, scope)
        params = _present(invoice_now=invoice_now, prorate=prorate)
        cancel = self._gateway.cancel_subscription
        return self._write("cancel-now", subscription_id, params, scope, send=cancel)

    def resume(self, subscription_id: str, *, scope: str = "") -> StripeObject:
        """Undo a scheduled cancel: clears ``cancel_at_period_end`` or ``cancel_at``.

        (Resuming a *paused* subscription is Stripe's ``subscriptions.resume``; resuming
        paused *collection* is :meth:`unpause`.)
        """
        current = self.retrieve(subscription_id)
        scheduled_at = current["cancel_at"] and not current["cancel_at_period_end"]
        clear: dict[str, Any] = (
            {"cancel_at": ""} if scheduled_at else {"cancel_at_period_end": False}
        )
        params = {**clear, **self._proration_params(None)}
        return self._write("resume", subscription_id, params, scope)

    def pause_collection(
        self,
        subscription_id: str,
        behavior: str,
        resumes_at: datetime | int | None = None,
        *,
        scope: str = "",
    ) -> StripeObject:
        """Pause payment collection: ``keep_as_draft``, ``mark_uncollectible`` or ``void``.

        The subscription stays ``active``; its invoices are handled per ``behavior`` until
        ``resumes_at`` (if given) or :meth:`unpause`. Any other behavior is refused by the
        gateway's pause guard before anything is sent.
        """
        pause: dict[str, Any] = {"behavior": behavior}
        if resumes_at is not None:
            pause["resumes_at"] = (
                int(resumes_at.timestamp()) if isinstance(resumes_at, datetime) else resumes_at
            )
        params = {"pause_collection": pause, **self._proration_params(None)}
        return self._write("pause-collection", subscription_id, params, scope)

    def unpause(self, subscription_id: str, *, scope: str = "") -> StripeObject:
        """Resume payment collection (clears ``pause_collection``)."""
        params = {"pause_collection": "", **self._proration_params(None)}
        return self._write("unpause-collection", subscription_id, params, scope)

    # -- helpers ---------------------------------------------------------------------------

    def _proration(self, behavior: str | None) -> str:
        chosen = behavior if behavior is not None else self._config.proration_behavior
        if chosen not in PRORATION_BEHAVIORS:
            raise StripeGuardError(
                f"proration_behavior must be one of {', '.join(PRORATION_BEHAVIORS)} "
                f"(got {chosen!r})"
            )
        return chosen

    def _proration_params(self, behavior: str | None) -> dict[str, Any]:
        return {"proration_behavior": self._proration(behavior)}

    def _change_item(
        self, operation: str, subscription_id: str, item: dict[str, Any], change: ItemChange
    ) -> StripeObject:
        params: dict[str, Any] = {
            "items": [item],
            **self._proration_params(change.get("proration_behavior")),
        }
        if change.get("proration_date") is not None:
            params["proration_date"] = change.get("proration_date")
        return self._write(operation, subscription_id, params, change.get("scope", ""))

    def _write(
        self,
        operation: str,
        subscription_id: str,
        params: Mapping[str, Any],
        scope: str,
        *,
        send: Callable[..., Any] | None = None,
    ) -> StripeObject:
        key = idempotency_key(f"subscription-{operation}", subscription_id, params, scope)
        call = send or self._gateway.update_subscription
        return call(subscription_id, params, idempotency_key=key)


def _present(**params: Any) -> dict[str, Any]:
    """The keyword arguments that are not ``None``."""
    return {name: value for name, value in params.items() if value is not None}
