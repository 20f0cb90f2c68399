"""The demo's extension objects, initialised on the app in :func:`demo_app.create_app`."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast

import flask_login
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect  # type: ignore[import-untyped]
from sqlalchemy.orm import DeclarativeBase

from flask_lattice import LatticeBilling


class Base(DeclarativeBase):
    """Declarative base of the demo's own tables."""


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()
billing = LatticeBilling(db=db)

P = ParamSpec("P")
R = TypeVar("R")


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    """Flask-Login's ``login_required``, with its type kept (Flask-Login ships no hints)."""
    return cast(Callable[P, R], flask_login.login_required(view))
