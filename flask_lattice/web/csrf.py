"""CSRF protection for the extension's forms.

When the host uses Flask-WTF's ``CSRFProtect``, its token and check apply (and
``WTF_CSRF_ENABLED = False`` turns both off). Otherwise the extension signs its own
per-session token. Templates put ``lattice_csrf_token()`` in a hidden field named
``lattice_csrf_field_name()``; scripts may send it in an ``X-CSRFToken`` header.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import current_app, g, request, session
from itsdangerous import BadData

from ..errors import CSRFTokenError
from ..signing import serializer

FIELD_NAME = "csrf_token"
HEADERS = ("X-CSRFToken", "X-CSRF-Token")
TOKEN_MAX_AGE = 24 * 3600
_SESSION_KEY = "_lattice_csrf"
_SALT = "flask-lattice-csrf"


def _flask_wtf() -> Any:
    """Flask-WTF's ``CSRFProtect`` on this app, or None."""
    extension = current_app.extensions.get("csrf")
    return extension if hasattr(extension, "protect") else None


def csrf_field_name() -> str:
    """The form field that carries the token."""
    if _flask_wtf() is not None:
        return str(current_app.config.get("WTF_CSRF_FIELD_NAME", FIELD_NAME))
    return FIELD_NAME


def csrf_token() -> str:
    """The CSRF token for this session (Flask-WTF's when ``CSRFProtect`` is in use)."""
    if _flask_wtf() is not None:
        from flask_wtf.csrf import generate_csrf  # type: ignore[import-untyped]

        return str(generate_csrf())
    signer = serializer(_SALT, signs="CSRF tokens")  # before the session: it needs the key too
    if _SESSION_KEY not in session:
        session[_SESSION_KEY] = secrets.token_hex(32)
    return signer.dumps(session[_SESSION_KEY])


def protect() -> None:
    """Refuse the current request with a 400 unless it carries a valid CSRF token.

    Raises :class:`~flask_lattice.errors.CSRFTokenError` (400) for a missing, invalid or
    expired token, and :class:`~flask_lattice.errors.ConfigurationError` when the app has no
    ``SECRET_KEY`` (whatever the request carries).
    """
    extension = _flask_wtf()
    if extension is not None:
        if current_app.config.get("WTF_CSRF_ENABLED", True) and not g.get("csrf_valid"):
            extension.protect()
        return
    signer = serializer(_SALT, signs="CSRF tokens")
    token = request.form.get(FIELD_NAME) or next(
        (request.headers[name] for name in HEADERS if request.headers.get(name)), None
    )
    if not token:
        raise CSRFTokenError(
            "The CSRF token is missing: reload the page and submit the form again."
        )
    expected = session.get(_SESSION_KEY)
    try:
        value = signer.loads(token, max_age=TOKEN_MAX_AGE)
    except BadData:
        value = None
    if not expected or not isinstance(value, str) or not hmac.compare_digest(value, expected):
        raise CSRFTokenError(
            "The CSRF token is invalid or has expired: reload the page and submit the form again."
        )
