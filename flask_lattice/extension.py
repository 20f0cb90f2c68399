"""``LatticeBilling``: the extension object and the composition root.

``init_app`` validates the configuration, attaches the lattice tables to the host's
Flask-SQLAlchemy metadata, builds the per-app state in ``app.extensions["lattice"]``,
and registers the blueprint, template helpers and the ``flask lattice`` commands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from flask import Flask

from . import cli, config, migrations
from .access import gates
from .admin import views as admin_views
from .billing.facade import SubscriptionsFacade
from .errors import LatticeError
from .models import attach_tables
from .state import EXTENSION_KEY, EventHandler, Hooks, LatticeState
from .stripe_gateway import ReadBudget, StripeGateway
from .web import subscription_views, views
from .webhooks import queue

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .models import Invoice, Subscription
    from .plans import Plan

F = TypeVar("F", bound=Callable[..., Any])

views.blueprint.register_blueprint(subscription_views.blueprint, url_prefix="/subscription")


class LatticeBilling:
    """Stripe subscription billing for a Flask app.

    ::

        db = SQLAlchemy(app)
        billing = LatticeBilling(app, db=db)

    or, with an app factory, ``billing = LatticeBilling(db=db)`` and later
    ``billing.init_app(app)``. Hooks registered with the decorators below apply to every
    app the extension is initialised on.
    """

    def __init__(self, app: Flask | None = None, *, db: SQLAlchemy | None = None) -> None:
        self.db = db
        self.hooks = Hooks()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, *, db: SQLAlchemy | None = None) -> None:
        """Set up billing on ``app``; fails fast on a missing prerequisite or a bad setting."""
        if EXTENSION_KEY in app.extensions:
            raise LatticeError(
                f"Flask-Lattice is already initialised on app {app.name!r}; "
                "call LatticeBilling(app) or init_app(app) once per app"
            )
        database = db or self.db
        if database is None:
            raise LatticeError(
                "Flask-Lattice needs the app's Flask-SQLAlchemy instance: "
                "LatticeBilling(app, db=db) or LatticeBilling(db=db).init_app(app)"
            )
        if "sqlalchemy" not in app.extensions:
            raise LatticeError(
                "Flask-SQLAlchemy is not initialised on this app: call db.init_app(app) "
                "(or SQLAlchemy(app)) before LatticeBilling"
            )
        config.apply_defaults(app.config)
        settings = config.load(app.config, debug=app.debug)
        attach_tables(database.metadata)
        migrations.install_render_hook(app)
        with app.app_context():
            for engine in database.engines.values():
                _tune_sqlite(engine)
        gateway = StripeGateway.from_config(settings)
        if settings.stripe_read_rate is not None:
            gateway.meter_reads(
                ReadBudget(
                    queue.redis_connection,
                    settings.stripe_read_rate,
                    key=f"lattice:{settings.queue_name}:stripe-read-budget",
                )
            )
        app.extensions[EXTENSION_KEY] = LatticeState(
            config=settings, db=database, hooks=self.hooks, stripe=gateway
        )
        app.register_blueprint(views.blueprint, url_prefix=settings.url_prefix)
        app.register_blueprint(admin_views.blueprint, url_prefix=settings.admin_url_prefix)
        gates.install_template_helpers(app)
        app.cli.add_command(cli.lattice_cli)

    # -- registration hooks ---------------------------------------------------------

    def billable_loader(self, func: F) -> F:
        """Register the function that returns the current :class:`~flask_lattice.Billable`."""
        self.hooks.billable_loader = func
        return func

    def access_policy(self, func: F) -> F:
        """Replace the access policy (see :doc:`access`)."""
        self.hooks.access_policy = func
        return func

    def plan_required_handler(self, func: F) -> F:
        """Replace what a denied request gets (see :doc:`access`)."""
        self.hooks.plan_required_handler = func
        return func

    # -- access helpers for views (local state only; see :doc:`access`) -------------------

    def current_plan(self) -> Plan | None:
        """The current billable's effective plan (the free plan when nothing is live)."""
        return gates.current_plan()

    def has_plan(self, plan: str) -> bool:
        """Whether the current billable holds ``plan`` or a higher-ranked plan."""
        return gates.has_plan(plan)

    def has_feature(self, feature: str) -> bool:
        """Whether the current billable's plan includes ``feature``."""
        return gates.has_feature(feature)

    def subscription(self) -> Subscription | None:
        """The current billable's relevant local subscription row, if any."""
        return gates.subscription()

    def invoices(self, limit: int = 12) -> list[Invoice]:
        """The current billable's invoices from the local table, newest first; ``[]``
        when signed out. See :doc:`models` for the attributes."""
        from .billing.invoices import recent_invoices
        from .state import current_billable

        billable = current_billable()
        return [] if billable is None else recent_invoices(billable.key, limit)

    @property
    def subscriptions(self) -> SubscriptionsFacade:
        """Subscription calls through the current app's Stripe client (see :doc:`operations`)."""
        return SubscriptionsFacade.for_app()

    def downgrade_guard(self, func: F) -> F:
        """Register the hook that may refuse a downgrade below the features in use."""
        self.hooks.downgrade_guard = func
        return func

    def seats_in_use(self, func: F) -> F:
        """Register the hook that says how many seats a billable uses (an ``int`` >= 0).

        Called with the :class:`~flask_lattice.Billable`. Seat changes below it are
        refused, and a move to a per-seat plan starts with at least that many seats.
        """
        self.hooks.seats_in_use = func
        return func

    def checkout_owner(self, func: F) -> F:
        """Register the hook that decides who owns the customer of a completed Checkout
        Session the app did not create (a Payment Link or pricing table).

        It receives the session (a dict, as Stripe sent or returned it) inside the worker
        job and returns a billable key, or ``None`` to leave the customer unlinked (the
        default without a hook). A customer the app already records for another billable
        is never moved: the claim is logged and sent as ``ownership_conflict``.
        """
        self.hooks.checkout_owner = func
        return func

    def admin_required(self, func: F) -> F:
        """Register who may use the operations console (see :doc:`admin`).

        The function takes no arguments and returns True when the current user is an
        operator. Until it is registered, every console page answers 404.
        """
        self.hooks.admin_required = func
        return func

    def on_event(self, event_type: str) -> Callable[[EventHandler], EventHandler]:
        """Run the decorated function inside the worker job for each event of ``event_type``.

        Register it where the app is built (the web process and the workers both run
        that code): the webhook route stores an event of a type that neither the
        projection nor a handler takes as ``ignored``, with no job.
        """

        def register(func: EventHandler) -> EventHandler:
            self.hooks.event_handlers.setdefault(event_type, []).append(func)
            return func

        return register


def _tune_sqlite(engine: sa.Engine) -> None:
    """Open SQLite in WAL mode with a busy timeout, so web and worker share it safely."""
    if engine.dialect.name != "sqlite":
        return

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
