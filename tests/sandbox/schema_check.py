"""Validate Stripe-shaped objects against the stripe-python 16.1.0 digest.

``violations(obj)`` walks an API object (dispatching on its ``object`` field) and reports every
unknown field, missing field, wrong type, enum value outside the spec, null in a non-nullable field,
and expandable field that is neither an id nor a valid object. Resources the digest only names
(``x-stripe-resource``, e.g. ``invoice_payment``) are checked against the key set of Stripe's
fixture for them.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
"""Stripe's API description for 2026-10-28.endive: the SDK digest and Stripe's fixtures."""
OPTIONAL_FIELDS = {"deleted", "previous_attributes"}


@functools.cache
def load_digest() -> dict[str, Any]:
    """The digest document (loaded once)."""
    return json.loads((DATA / "stripe-python-16.1.0.digest.json").read_text("utf-8"))  # type: ignore[no-any-return]


@functools.cache
def _fixtures() -> dict[str, Any]:
    return json.loads((DATA / "fixtures3.json").read_text("utf-8"))["resources"]  # type: ignore[no-any-return]


def _schemas() -> dict[str, Any]:
    return load_digest()["components"]["schemas"]  # type: ignore[no-any-return]


def violations(obj: Any, path: str = "$") -> list[str]:
    """Every way ``obj`` (a top-level Stripe object, list or search result) breaks the digest."""
    if not isinstance(obj, dict) or "object" not in obj:
        return [f"{path}: not a Stripe object: {obj!r:.80}"]
    kind = obj["object"]
    if _deleted_stub(obj):
        return []
    if kind in _schemas():
        return _check_schema(obj, kind, path)
    if kind in _fixtures():
        return _check_fixture_keys(obj, kind, path)
    return [f"{path}: unknown object type {kind!r}"]


def _deleted_stub(value: Any) -> bool:
    """``{"id", "object", "deleted": true}``: what Stripe returns for a deleted object."""
    return (
        isinstance(value, dict)
        and value.get("deleted") is True
        and set(value) == {"id", "object", "deleted"}
    )


def _check_fixture_keys(obj: dict[str, Any], kind: str, path: str) -> list[str]:
    expected = set(_fixtures()[kind])
    found = set(obj)
    problems = [f"{path}.{key}: unknown field on {kind}" for key in sorted(found - expected)]
    problems += [f"{path}.{key}: missing field on {kind}" for key in sorted(expected - found)]
    return problems


def _check_schema(obj: Any, name: str, path: str) -> list[str]:
    schema = _schemas()[name]
    if not isinstance(obj, dict):
        return [f"{path}: expected a {name} object, got {type(obj).__name__}"]
    props: dict[str, Any] = schema.get("properties", {})
    problems = [f"{path}.{key}: unknown field on {name}" for key in obj if key not in props]
    for key, spec in props.items():
        where = f"{path}.{key}"
        if key not in obj:
            # Envelopes list their required keys (search_result's total_count is sent only
            # with expand[]=total_count); objects carry every field.
            if key not in OPTIONAL_FIELDS and key in schema.get("required", props):
                problems.append(f"{where}: missing field on {name}")
            continue
        if name == "event.Data" and key == "object":
            problems += violations(obj[key], where)
        elif name == "event.Data" and key == "previous_attributes":
            continue
        else:
            problems += _check_value(obj[key], spec, where)
    if name in ("list", "search_result"):
        for index, item in enumerate(obj.get("data", [])):
            problems += violations(item, f"{path}.data[{index}]")
    return problems


def _check_value(value: Any, spec: dict[str, Any], path: str) -> list[str]:
    if value is None:
        return [] if spec.get("nullable") else [f"{path}: null but not nullable"]
    if "x-list-of" in spec:
        return _check_list(value, spec["x-list-of"], path)
    if "$ref" in spec:
        if _deleted_stub(value):
            # Stripe's spec (not the SDK digest) lists deleted_customer beside customer for
            # expandable references: a deleted object expands to its stub.
            return []
        return _check_schema(value, spec["$ref"].rsplit("/", 1)[-1], path)
    if "anyOf" in spec:
        attempts = [_check_value(value, option, path) for option in spec["anyOf"]]
        if any(not attempt for attempt in attempts):
            return []
        return min(attempts, key=len)
    if "x-stripe-resource" in spec:
        if isinstance(value, str):
            return (
                [f"{path}: id where an object is required"] if not spec.get("x-expandable") else []
            )
        return violations(value, path) if value.get("object") in _fixtures() else []
    kind = spec.get("type")
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    if kind in checks and not checks[kind](value):
        return [f"{path}: expected {kind}, got {type(value).__name__} {value!r:.60}"]
    if "enum" in spec and value not in spec["enum"]:
        return [f"{path}: {value!r} not in enum {spec['enum']}"]
    if kind == "array":
        problems: list[str] = []
        for index, item in enumerate(value):
            problems += _check_value(item, spec.get("items", {}), f"{path}[{index}]")
        return problems
    if kind == "object" and isinstance(spec.get("additionalProperties"), dict):
        problems = []
        for key, item in value.items():
            problems += _check_value(item, spec["additionalProperties"], f"{path}.{key}")
        return problems
    return []


def _check_list(value: Any, item_spec: dict[str, Any], path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected a list object"]
    problems = [
        f"{path}.{key}: list envelope field mismatch"
        for key in set(value) ^ {"object", "data", "has_more", "url"}
    ]
    if value.get("object") != "list":
        problems.append(f"{path}.object: expected 'list'")
    for index, item in enumerate(value.get("data", [])):
        problems += _check_value(item, item_spec, f"{path}.data[{index}]")
    return problems
