"""Quillnote's configuration: the plan catalog, and settings read from the environment.

Two modes, chosen by the environment:

* **sandbox** (default): Stripe is the local sandbox at ``QUILLNOTE_SANDBOX_URL``
  (``http://127.0.0.1:12111``), with the demo's fixed test key and webhook secret.
* **stripe**: ``STRIPE_SECRET_KEY`` is set, so the app talks to Stripe itself (test mode),
  verifying webhooks with ``STRIPE_WEBHOOK_SECRET`` (from ``stripe listen``).

``REDIS_URL`` picks the Redis for the webhook queue in either mode; unset means an
embedded Redis. ``DATABASE_URL`` picks the database; unset means SQLite in the instance folder.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask_lattice.testing import PriceSpec

APP_NAME = "Quillnote"

#: How many notes the Free plan keeps.
FREE_NOTE_LIMIT = 3

SANDBOX_URL = "http://127.0.0.1:12111"
#: The key the demo's sandbox is started with (the sandbox accepts only its configured keys).
SANDBOX_API_KEY = "sk_test_quillnote_demo"
#: The sandbox signs its webhooks with this secret, and the app verifies with it.
SANDBOX_WEBHOOK_SECRET = "whsec_quillnote_demo_sandbox"  # noqa: S105 (a local sandbox)

PLANS: list[dict[str, Any]] = [
    {
        "key": "free",
        "name": "Free",
        "rank": 0,
        "features": ["notes"],
        "description": f"Up to {FREE_NOTE_LIMIT} notes, for trying Quillnote out.",
    },
    {
        "key": "pro",
        "name": "Pro",
        "rank": 10,
        "prices": {"month": "quillnote_pro_monthly", "year": "quillnote_pro_yearly"},
        "features": ["notes", "unlimited_notes", "export"],
        "description": "Unlimited notes and Markdown export, for one writer.",
    },
    {
        "key": "team",
        "name": "Team",
        "rank": 20,
        "prices": {"month": "quillnote_team_monthly", "year": "quillnote_team_yearly"},
        "features": ["notes", "unlimited_notes", "export", "seats"],
        "trial_days": 14,
        "seats": {"min": 1, "max": 50},
        "description": "Everything in Pro, with a seat for each teammate. Priced per seat.",
    },
]

#: The prices the demo seeds into the sandbox (or Stripe test mode), by lookup key.
PRICES: dict[str, PriceSpec] = {
    "quillnote_pro_monthly": PriceSpec("Quillnote Pro", 900, "month"),
    "quillnote_pro_yearly": PriceSpec("Quillnote Pro", 9000, "year"),
    "quillnote_team_monthly": PriceSpec("Quillnote Team", 1200, "month"),
    "quillnote_team_yearly": PriceSpec("Quillnote Team", 12000, "year"),
}


def uses_real_stripe(environ: Mapping[str, str]) -> bool:
    """Whether the environment points the demo at Stripe itself rather than the sandbox."""
    return bool(environ.get("STRIPE_SECRET_KEY"))


def sandbox_url(environ: Mapping[str, str]) -> str:
    """Where the local sandbox listens."""
    return environ.get("QUILLNOTE_SANDBOX_URL", SANDBOX_URL).rstrip("/")


def from_environment(environ: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """The Flask config for ``environ``: secrets, database, Stripe mode, Redis and plans."""
    real_stripe = uses_real_stripe(environ)
    config: dict[str, Any] = {
        "SECRET_KEY": environ.get("SECRET_KEY") or _instance_secret(instance_path),
        "SQLALCHEMY_DATABASE_URI": environ.get("DATABASE_URL")
        or f"sqlite:///{Path(instance_path) / 'quillnote.db'}",
        "QUILLNOTE_SANDBOX": not real_stripe,
        "QUILLNOTE_SANDBOX_URL": None if real_stripe else sandbox_url(environ),
        "LATTICE_PLANS": PLANS,
        "LATTICE_REDIS_URL": environ.get("REDIS_URL") or None,
        "LATTICE_BASE_TEMPLATE": "layout.html",
        "LATTICE_RETURN_ENDPOINT": "account.billing",
        # Upgrades and seat changes are charged at once, prorated, as most SaaS do.
        "LATTICE_PRORATION_BEHAVIOR": "always_invoice",
        # Cookies go along with top-level navigations (the return from Checkout and the
        # portal) but not with other sites' forms; HTTPS-only unless on the local sandbox.
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": real_stripe,
        "REMEMBER_COOKIE_SECURE": real_stripe,
        "REMEMBER_COOKIE_HTTPONLY": True,
    }
    if real_stripe:
        config["LATTICE_STRIPE_SECRET_KEY"] = environ["STRIPE_SECRET_KEY"]
        config["LATTICE_WEBHOOK_SECRETS"] = environ.get("STRIPE_WEBHOOK_SECRET") or None
    else:
        config["LATTICE_STRIPE_SECRET_KEY"] = SANDBOX_API_KEY
        config["LATTICE_STRIPE_API_BASE"] = sandbox_url(environ)
        config["LATTICE_WEBHOOK_SECRETS"] = [SANDBOX_WEBHOOK_SECRET]
    return config


def _instance_secret(instance_path: str) -> str:
    """A random session key kept in the instance folder, so sign-ins survive restarts."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        os.chmod(path, 0o600)
    return path.read_text().strip()
