"""Values signed with the app's ``SECRET_KEY`` (CSRF tokens, plan-change preview tokens).

Every signer comes from :func:`serializer`, so a missing ``SECRET_KEY`` is reported the
same way on every path: a :class:`~flask_lattice.errors.ConfigurationError` naming the key.
"""

from __future__ import annotations

from flask import current_app
from itsdangerous import URLSafeTimedSerializer

from .errors import ConfigurationError


def serializer(salt: str, *, signs: str) -> URLSafeTimedSerializer:
    """An itsdangerous serializer keyed by the current app's ``SECRET_KEY`` and ``salt``.

    ``signs`` names what is signed, for the error message. Raises
    :class:`~flask_lattice.errors.ConfigurationError` when the app has no ``SECRET_KEY``.
    """
    if not current_app.secret_key:
        raise ConfigurationError(f"Set the app's SECRET_KEY: {signs} are signed with it.")
    return URLSafeTimedSerializer(current_app.secret_key, salt=salt)
