"""Request validation against Stripe's parameter schemas (``data/params.json``).

The table is generated from the stripe-python 16.1.0 digest. Every parameter Stripe knows is
accepted (the sandbox ignores the ones it does not emulate); anything else is an error, as are
missing required parameters, values of the wrong type and values outside an enum.

The digest gives types only, so Stripe's limits on values are kept here by parameter name, for
every endpoint at once: 64-bit integers, Unix timestamps, non-negative amounts and quantities,
decimal strings, metadata, URLs, email addresses, currencies and string lengths.
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import re
from decimal import Decimal
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from babel.core import get_global
from babel.numbers import get_territory_currencies

from .wire import JSON, StripeError, invalid_param, missing_param, unknown_param

#: A path of schema property names (``"*"`` for a free-form key; array indices left out).
Path = tuple[str, ...]

_INTEGER = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DECIMAL = re.compile(r"(?:[0-9]+(?:\.([0-9]*))?|\.([0-9]+))")
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")
_CURRENCY = re.compile(r"[a-z]{3}")

INT64 = (-(2**63), 2**63 - 1)
#: 9999-12-31T23:59:59Z: Stripe's timestamps stop before the year 10000.
MAX_TIMESTAMP = 253402300799
#: Amounts in a currency's minor unit take at most 8 digits.
MAX_AMOUNT = 99999999
MAX_TRIAL_DAYS = 730
MAX_DECIMAL_PLACES = 12
#: Stripe's limit on any string parameter, and the tighter ones it documents by name.
MAX_STRING = 5000
STRING_LIMITS = {"client_reference_id": 200}
CUSTOMER_NAME = 256
EMAIL_LENGTH = 512
METADATA_KEYS, METADATA_KEY_LENGTH, METADATA_VALUE_LENGTH = 50, 40, 500

#: Integer parameters that hold a Unix timestamp (also ``created[gte]`` etc. and ``period[end]``).
TIMESTAMPS = frozenset(
    {
        "backdate_start_date",
        "billing_cycle_anchor",
        "cancel_at",
        "created",
        "current_period_end",
        "current_period_start",
        "due_date",
        "effective_at",
        "end_date",
        "expires_at",
        "frozen_time",
        "pause_at",
        "proration_date",
        "resume_at",
        "resumes_at",
        "start_date",
        "timestamp",
        "trial_end",
    }
)
RANGE_FILTERS = frozenset({"gt", "gte", "lt", "lte"})
#: Amounts in a currency's minor unit: non-negative, at most :data:`MAX_AMOUNT`.
AMOUNTS = frozenset({"amount", "amount_off", "flat_amount", "unit_amount"})
#: Counts and sizes that may be zero but never negative.
NON_NEGATIVE = frozenset(
    {
        "amount_gte",
        "application_fee_amount",
        "days_until_due",
        "expires_after_days",
        "expires_after_seconds",
        "maximum_length",
        "minimum_length",
        "quantity",
        "trial_period_days",
        "usage_gte",
        "value",
    }
)
#: Counts that must be at least 1.
POSITIVE = frozenset({"divide_by", "interval_count", "up_to"})
#: The parts of ``billing_cycle_anchor_config`` (and a date of birth): ``(lowest, highest)``.
CLOCK_PARTS = {
    "day": (1, 31),
    "day_of_month": (1, 31),
    "hour": (0, 23),
    "minute": (0, 59),
    "month": (1, 12),
    "second": (0, 59),
}
#: Where an invoice item's amount may be negative (a credit).
INVOICE_ITEMS = frozenset({"invoice_items", "add_invoice_items"})
EMAILS = frozenset({"customer_email", "email", "receipt_email"})


@functools.cache
def _table() -> dict[str, JSON]:
    text = resources.files(__package__).joinpath("data/params.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


@functools.cache
def currencies() -> frozenset[str]:
    """ISO 4217 codes (lowercase) that were legal tender somewhere since 2010, from Babel's CLDR.

    That leaves out the currencies replaced long ago (``dem``, ``frf``) and the codes for metals,
    funds and testing (``xau``, ``xts``) that Stripe does not charge in.
    """
    since, today = datetime.date(2010, 1, 1), datetime.datetime.now(datetime.UTC).date()
    codes: set[str] = set()
    for territory in get_global("territory_currencies"):
        codes.update(
            get_territory_currencies(territory, start_date=since, end_date=today, tender=True)
        )
    return frozenset(code.lower() for code in codes)


def known_endpoints() -> frozenset[str]:
    """Every ``"METHOD /v1/path"`` the table describes."""
    return frozenset(_table())


def validate(endpoint: str, raw: JSON) -> JSON:
    """Check ``raw`` decoded params for ``endpoint`` and return them with values coerced."""
    schema = _table()[endpoint]
    return _object(raw, schema, "", (), endpoint)  # type: ignore[no-any-return]


class Refused(StripeError):
    """A value of the right type that Stripe still refuses (out of range, too long, malformed).

    Among ``anyOf`` options it wins over the other options' type errors: ``trial_end=-5`` is an
    invalid timestamp, not merely "not ``now``".
    """


def refuse(param: str, message: str, code: str | None = None) -> Refused:
    """:func:`~.wire.invalid_param`'s error, marked as a refused value."""
    error = invalid_param(param, message, code)
    return Refused(error.message, code=error.code, param=error.param)


def _name(prefix: str, key: str) -> str:
    return f"{prefix}[{key}]" if prefix else key


def _object(value: Any, schema: JSON, prefix: str, path: Path, endpoint: str) -> Any:
    if isinstance(value, list):
        value = {str(index): item for index, item in enumerate(value)}
    if not isinstance(value, dict):
        raise invalid_param(prefix, f"Invalid object: {prefix} must be a hash")
    props: JSON | None = schema.get("properties")
    extra: JSON | None = schema.get("additionalProperties")
    if path and path[-1] == "metadata" and extra is not None:
        _check_metadata(value, prefix)
    out: JSON = {}
    for key, item in value.items():
        name = _name(prefix, key)
        if props is not None and key in props:
            out[key] = coerce(item, props[key], name, (*path, key), endpoint)
        elif extra is not None or props is None:
            if path and path[-1] == "currency_options":
                _check_currency(key, name)
            out[key] = coerce(item, extra or {"type": "string"}, name, (*path, "*"), endpoint)
        else:
            raise unknown_param(name)
    for key in schema.get("required", ()):
        if key not in out:
            raise missing_param(_name(prefix, key))
    return out


def coerce(value: Any, schema: JSON, name: str, path: Path = (), endpoint: str = "") -> Any:
    """Coerce one form value to ``schema``'s type, or raise Stripe's error for it.

    ``path`` (the schema property names leading to the value) and ``endpoint`` (``"POST
    /v1/..."``) pick the limits Stripe puts on values by parameter name.
    """
    leaf = path[-1] if path else ""
    if value == "" and schema.get("type", "string") == "string" and "anyOf" not in schema:
        if leaf.endswith("_decimal"):
            raise refuse(name, "Invalid decimal: ")
        if leaf == "currency":
            raise _empty(name)
    if value == "" and (schema.get("emptyable") or _plain_string(schema)):
        return ""
    if value == "":
        raise _empty(name)
    if "anyOf" in schema:
        refused: Refused | None = None
        for option in schema["anyOf"]:
            try:
                return coerce(value, option, name, path, endpoint)
            except Refused as exc:
                refused = refused or exc
            except StripeError:
                continue
        if refused is not None:
            raise refused
        raise invalid_param(name, f"Invalid value for {name}.")
    kind = schema.get("type", "string")
    if kind == "object":
        return _object(value, schema, name, path, endpoint)
    if kind == "array":
        if isinstance(value, dict):
            value = list(value.values())
        if not isinstance(value, list):
            raise invalid_param(name, f"Invalid array: {name} must be an array")
        return [
            coerce(item, schema.get("items", {}), f"{name}[{i}]", path, endpoint)
            for i, item in enumerate(value)
        ]
    if not isinstance(value, str):
        raise invalid_param(name, f"Invalid {kind}: {name} must be a single value, not a hash")
    if kind == "integer":
        return _integer(value, name, path)
    if kind == "number":
        return _number(value, name, leaf)
    if kind == "boolean":
        if value not in ("true", "false"):
            raise invalid_param(name, f"Invalid boolean: {value}")
        return value == "true"
    enum = schema.get("enum")
    if enum and value not in enum:
        raise invalid_param(name, f"Invalid {name}: must be one of {', '.join(enum)}")
    _check_string(value, name, path, endpoint)
    return value


def _empty(name: str) -> StripeError:
    return invalid_param(
        name,
        f"You passed an empty string for '{name}'. We assume empty values are an attempt to "
        f"unset a parameter; however '{name}' cannot be unset. You should remove '{name}' "
        "from your request or supply a non-empty value.",
        "parameter_invalid_empty",
    )


def _plain_string(schema: JSON) -> bool:
    """A free-form string (no enum): ``""`` is a value Stripe accepts for some of these."""
    return (
        schema.get("type", "string") == "string" and "enum" not in schema and "anyOf" not in schema
    )


# -- integers and numbers ---------------------------------------------------------------------


def _integer(value: str, name: str, path: Path) -> int:
    """A base-10 integer (ASCII digits, optional ``-``) in Stripe's 64-bit range, then its limits."""
    if not _INTEGER.fullmatch(value):
        raise invalid_param(name, f"Invalid integer: {value}", "parameter_invalid_integer")
    digits = value.lstrip("-").lstrip("0")
    number = int(value) if len(digits) <= 19 else INT64[1] + 1
    if not INT64[0] <= number <= INT64[1]:
        raise refuse(name, f"Invalid integer: {value}", "parameter_invalid_integer")
    _check_integer(number, name, path)
    return number


def _check_integer(number: int, name: str, path: Path) -> None:
    leaf = path[-1] if path else ""
    parent = path[-2] if len(path) > 1 else ""
    if _is_timestamp(leaf, parent):
        if not 0 <= number <= MAX_TIMESTAMP:
            filtering = leaf in RANGE_FILTERS
            raise refuse(
                name,
                "Invalid timestamp: must be an integer Unix timestamp"
                + ("." if filtering else " in the future."),
            )
        return
    if leaf in AMOUNTS or parent == "custom_unit_amount":
        credit = leaf in ("amount", "unit_amount") and parent in INVOICE_ITEMS
        if number < 0 and not credit:
            raise refuse(name, "Invalid non-negative integer")
        if abs(number) > MAX_AMOUNT:
            raise refuse(name, f"Invalid {name}: amounts must be no more than {MAX_AMOUNT}.")
    elif leaf in NON_NEGATIVE and number < 0:
        raise refuse(name, "Invalid non-negative integer")
    elif leaf in POSITIVE and number < 1:
        raise refuse(name, "Invalid positive integer")
    elif leaf in CLOCK_PARTS and not CLOCK_PARTS[leaf][0] <= number <= CLOCK_PARTS[leaf][1]:
        low, high = CLOCK_PARTS[leaf]
        raise refuse(name, f"Invalid {name}: must be an integer between {low} and {high}.")
    if leaf == "trial_period_days" and number > MAX_TRIAL_DAYS:
        raise refuse(
            name, f"Invalid {name}: the trial period can be at most {MAX_TRIAL_DAYS} days."
        )


def _is_timestamp(leaf: str, parent: str) -> bool:
    return (
        leaf in TIMESTAMPS
        or (leaf in RANGE_FILTERS and parent in TIMESTAMPS)
        or (leaf in ("start", "end") and parent == "period")
    )


def _number(value: str, name: str, leaf: str) -> float:
    """A finite decimal number in ASCII digits (no ``nan``, ``inf``, exponents or ``_``)."""
    number = float(value) if _NUMBER.fullmatch(value) else math.nan
    if not math.isfinite(number):
        raise invalid_param(name, f"Invalid decimal: {value}")
    if number < 0:
        raise refuse(name, f"Invalid {name}: must be a non-negative decimal.")
    if leaf.endswith("_percent") and number > 100:
        raise refuse(name, f"Invalid {name}: must be a decimal between 0 and 100.")
    return number


# -- strings ----------------------------------------------------------------------------------


def _check_string(value: str, name: str, path: Path, endpoint: str) -> None:
    leaf = path[-1] if path else ""
    writing = not endpoint.startswith("GET ")
    limit = STRING_LIMITS.get(leaf, MAX_STRING)
    if path == ("name",) and endpoint.startswith("POST /v1/customers"):
        limit = CUSTOMER_NAME
    if len(value) > limit:
        raise refuse(name, f"Invalid string: {value[:20]}...; must be at most {limit} characters")
    if leaf.endswith("_decimal"):
        _check_decimal(value, name, leaf)
    elif leaf == "currency":
        _check_currency(value, name)
    elif writing and (leaf == "url" or leaf.endswith("_url")):
        if not _is_url(value):
            raise refuse(name, "Not a valid URL", "url_invalid")
    elif writing and leaf in EMAILS and value and not _is_email(value):
        raise refuse(name, f"Invalid email address: {value}", "email_invalid")


def _is_email(value: str) -> bool:
    """``someone@example.com``: one ``@``, a dotted domain, no spaces, at most 512 characters."""
    return len(value) <= EMAIL_LENGTH and _EMAIL.fullmatch(value) is not None


def _check_decimal(value: str, name: str, leaf: str) -> None:
    """A finite, non-negative decimal string with at most 12 decimal places (``"12.5"``)."""
    match = _DECIMAL.fullmatch(value)
    places = (match.group(1) or match.group(2) or "") if match else ""
    if match is None or len(places) > MAX_DECIMAL_PLACES or not math.isfinite(float(value)):
        raise refuse(name, f"Invalid decimal: {value}")
    if leaf.removesuffix("_decimal") in AMOUNTS and Decimal(value) > MAX_AMOUNT:
        raise refuse(name, f"Invalid {name}: amounts must be no more than {MAX_AMOUNT}.")


def _check_currency(value: str, name: str) -> None:
    if not _CURRENCY.fullmatch(value) or value not in currencies():
        raise refuse(name, f"Invalid currency: {value}")


def _is_url(value: str) -> bool:
    """An absolute http(s) URL with a host; ``{CHECKOUT_SESSION_ID}`` may appear in it."""
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in value):
        return False
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host)


def _check_metadata(value: JSON, name: str) -> None:
    """Stripe's metadata limits: 50 keys, keys up to 40 characters without brackets, values
    up to 500 characters (``""`` unsets a key)."""
    if len(value) > METADATA_KEYS:
        raise refuse(name, f"Metadata can have at most {METADATA_KEYS} keys.")
    for key, item in value.items():
        param = _name(name, key)
        if len(key) > METADATA_KEY_LENGTH:
            raise refuse(
                param, f"Metadata keys must be at most {METADATA_KEY_LENGTH} characters: '{key}'."
            )
        if "[" in key or "]" in key:
            raise refuse(param, f"Metadata keys cannot contain '[' or ']': '{key}'.")
        if isinstance(item, str) and len(item) > METADATA_VALUE_LENGTH:
            raise refuse(
                param,
                f"Metadata values must be at most {METADATA_VALUE_LENGTH} characters; the value "
                f"for '{key}' has {len(item)}.",
            )
