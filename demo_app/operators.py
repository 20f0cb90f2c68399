"""Who may use the billing console (``/billing/admin``) in the demo.

In sandbox mode the first user to sign up is the operator, so that the console can be
tried at once; with real Stripe keys nobody is, until the host decides who should be.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask, current_app
from flask_login import current_user

from .extensions import billing, db
from .models import User


@billing.admin_required
def is_operator() -> bool:
    """Whether the signed-in user may use the billing console."""
    if not current_app.config.get("QUILLNOTE_SANDBOX") or not current_user.is_authenticated:
        return False
    first: int | None = db.session.scalar(sa.select(sa.func.min(User.id)))
    return first is not None and current_user.id == first


def init_app(app: Flask) -> None:
    """Make ``is_operator()`` available to templates (the /dev page links the console)."""
    app.add_template_global(is_operator, "is_billing_operator")
