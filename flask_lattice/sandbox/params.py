"""Request validation against Stripe's parameter schemas (``data/params.json``).

The table is generated from the stripe-python 16.1.0 digest. Every parameter Stripe knows is
accepted (the sandbox ignores the ones it does not emulate); anything else is an error, as are
missing required parameters, values of the wrong type and values outside an enum.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from .wire import JSON, StripeError, invalid_param, missing_param, unknown_param


@functools.cache
def _table() -> dict[str, JSON]:
    text = resources.files(__package__).joinpath("data/params.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def known_endpoints() -> frozenset[str]:
    """Every ``"METHOD /v1/path"`` the table describes."""
    return frozenset(_table())


def validate(endpoint: str, raw: JSON) -> JSON:
    """Check ``raw`` decoded params for ``endpoint`` and return them with values coerced."""
    schema = _table()[endpoint]
    return _object(raw, schema, "")  # type: ignore[no-any-return]


def _name(prefix: str, key: str) -> str:
    return f"{prefix}[{key}]" if prefix else key


def _object(value: Any, schema: JSON, prefix: str) -> Any:
    if isinstance(value, list):
        value = {str(index): item for index, item in enumerate(value)}
    if not isinstance(value, dict):
        raise invalid_param(prefix, f"Invalid object: {prefix} must be a hash")
    props: JSON | None = schema.get("properties")
    extra: JSON | None = schema.get("additionalProperties")
    out: JSON = {}
    for key, item in value.items():
        name = _name(prefix, key)
        if props is not None and key in props:
            out[key] = coerce(item, props[key], name)
        elif extra is not None or props is None:
            out[key] = coerce(item, extra or {"type": "string"}, name)
        else:
            raise unknown_param(name)
    for key in schema.get("required", ()):
        if key not in out:
            raise missing_param(_name(prefix, key))
    return out


def coerce(value: Any, schema: JSON, name: str) -> Any:
    """Coerce one form value to ``schema``'s type, or raise Stripe's error for it."""
    if value == "" and (schema.get("emptyable") or _plain_string(schema)):
        return ""
    if value == "":
        raise invalid_param(
            name,
            f"You passed an empty string for '{name}'. We assume empty values are an attempt to "
            f"unset a parameter; however '{name}' cannot be unset. You should remove '{name}' "
            "from your request or supply a non-empty value.",
            "parameter_invalid_empty",
        )
    if "anyOf" in schema:
        for option in schema["anyOf"]:
            try:
                return coerce(value, option, name)
            except StripeError:
                continue
        raise invalid_param(name, f"Invalid value for {name}.")
    kind = schema.get("type", "string")
    if kind == "object":
        return _object(value, schema, name)
    if kind == "array":
        if isinstance(value, dict):
            value = list(value.values())
        if not isinstance(value, list):
            raise invalid_param(name, f"Invalid array: {name} must be an array")
        return [
            coerce(item, schema.get("items", {}), f"{name}[{i}]") for i, item in enumerate(value)
        ]
    if not isinstance(value, str):
        raise invalid_param(name, f"Invalid {kind}: {name} must be a single value, not a hash")
    if kind == "integer":
        try:
            return int(value)
        except ValueError:
            raise invalid_param(
                name, f"Invalid integer: {value}", "parameter_invalid_integer"
            ) from None
    if kind == "number":
        try:
            return float(value)
        except ValueError:
            raise invalid_param(name, f"Invalid decimal: {value}") from None
    if kind == "boolean":
        if value not in ("true", "false"):
            raise invalid_param(name, f"Invalid boolean: {value}")
        return value == "true"
    enum = schema.get("enum")
    if enum and value not in enum:
        raise invalid_param(name, f"Invalid {name}: must be one of {', '.join(enum)}")
    return value


def _plain_string(schema: JSON) -> bool:
    """A free-form string (no enum): ``""`` is a value Stripe accepts for some of these."""
    return (
        schema.get("type", "string") == "string" and "enum" not in schema and "anyOf" not in schema
    )
