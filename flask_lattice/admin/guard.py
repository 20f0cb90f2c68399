"""Who may use the console, CSRF on every POST, and the audit trail of every write.

The console is closed by default: every route answers 404 until the host registers
``@billing.admin_required``, and 404 again whenever that hook returns false, so the
console's existence is not revealed to non-operators.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import abort, current_app, request
from flask_login import current_user
from werkzeug.exceptions import TooManyRequests

from .. import signals
from ..models import AdminAudit, utcnow
from ..state import get_state
from ..web import csrf


def require_operator() -> None:
    """Abort with 404 unless the host's ``admin_required`` hook says the user is an
    operator; then refuse a POST without a valid CSRF token (400)."""
    hook = get_state().hooks.admin_required
    if hook is None or not hook():
        abort(404)
    if request.method == "POST":
        csrf.protect()


def actor() -> str:
    """The operator, as recorded in the audit table: ``user:<Flask-Login id>``."""
    user_id = getattr(current_user, "get_id", lambda: None)()
    return f"user:{user_id}" if user_id is not None else "anonymous"


def record(action: str, target: str | None, parameters: dict[str, Any]) -> AdminAudit:
    """Commit one ``lattice_admin_audit`` row, then send :data:`~flask_lattice.signals.admin_action`.

    Call it after the action itself has committed; returns the row.
    """
    session = get_state().db.session
    row = AdminAudit(actor=actor(), action=action, target=target, parameters=parameters)
    session.add(row)
    session.commit()
    signals.admin_action.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        actor=row.actor,
        action=action,
        target=target,
        parameters=parameters,
        audit_id=row.id,
    )
    return row


def throttle(action: str, target: str | None, interval: timedelta) -> None:
    """Refuse (429) ``action`` on ``target`` when any operator ran it less than
    ``interval`` ago, by the audit table: console actions that call Stripe stay well under
    its rate limits, across every web process."""
    since = utcnow() - interval
    query = sa.select(AdminAudit.created_at).where(
        AdminAudit.action == action, AdminAudit.created_at > since
    )
    query = query.where(
        AdminAudit.target == target if target is not None else AdminAudit.target.is_(None)
    )
    last = get_state().db.session.scalar(query.order_by(AdminAudit.created_at.desc()).limit(1))
    if last is not None:
        wait = max(1, int((last + interval - utcnow()).total_seconds()) + 1)
        raise TooManyRequests(
            f"{action} ran less than {int(interval.total_seconds())} seconds ago; "
            f"try again in {wait} seconds.",
            retry_after=wait,
        )
