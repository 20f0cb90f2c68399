"""Alembic support: revisions that Flask-Migrate autogenerates for the lattice tables run
unedited.

The lattice tables use one custom column type, :class:`~flask_lattice.models.UTCDateTime`
(a ``TypeDecorator`` over ``DateTime(timezone=True)``). Alembic renders such a type by its
module path, ``flask_lattice.models.UTCDateTime(...)``, without importing it, so the
revision fails with ``NameError``. :func:`render_item` renders it as the plain
``sa.DateTime(timezone=True)`` it stores: the revision then needs nothing but
``sqlalchemy`` and keeps working whatever this package's modules are called later.

``init_app`` installs the hook into Flask-Migrate's ``configure_args`` (the keyword
arguments its ``env.py`` passes to ``context.configure``), whether ``Migrate`` is set up
before or after :class:`~flask_lattice.LatticeBilling`. A host with its own Alembic
``env.py`` passes ``render_item=flask_lattice.migrations.render_item`` to
``context.configure`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from flask import Flask, appcontext_pushed

from .models import UTCDateTime

RenderItem = Callable[[str, Any, Any], "str | Literal[False]"]


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Alembic's ``render_item`` hook: ``UTCDateTime`` as ``sa.DateTime(timezone=True)``.

    Returns ``False`` for everything else, so Alembic renders it as usual.
    """
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _chained(host_hook: RenderItem) -> RenderItem:
    def render(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
        rendered = render_item(type_, obj, autogen_context)
        return rendered if rendered is not False else host_hook(type_, obj, autogen_context)

    render.lattice_render_item = True  # type: ignore[attr-defined]
    return render


def _install(configure_args: dict[str, Any]) -> None:
    current = configure_args.get("render_item")
    if current is render_item or getattr(current, "lattice_render_item", False):
        return
    configure_args["render_item"] = render_item if current is None else _chained(current)


def _install_if_migrate(app: Flask) -> bool:
    migrate = app.extensions.get("migrate")
    if migrate is None:
        return False
    _install(migrate.configure_args)
    return True


def install_render_hook(app: Flask) -> None:
    """Add :func:`render_item` to the app's Flask-Migrate settings (chaining a host's own).

    When Flask-Migrate is not set up yet, this waits for the app's next app context (every
    ``flask db`` command pushes one) and installs the hook then.
    """
    if _install_if_migrate(app):
        return

    def on_push(sender: Flask, **_: Any) -> None:
        if _install_if_migrate(sender):
            appcontext_pushed.disconnect(on_push, sender=app)

    appcontext_pushed.connect(on_push, sender=app, weak=False)
