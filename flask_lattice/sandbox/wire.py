"""Stripe's wire format: bracketed form bodies in, JSON errors out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

JSON = dict[str, Any]


class StripeError(Exception):
    """An error answered as ``{"error": {...}}`` with Stripe's status code and type."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code

    def body(self) -> JSON:
        """The JSON body Stripe sends for this error."""
        error: JSON = {
            "type": self.type,
            "code": self.code,
            "param": self.param,
            "message": self.message,
        }
        if self.decline_code is not None:
            error["decline_code"] = self.decline_code
        return {"error": error}


def missing_param(param: str) -> StripeError:
    """Stripe's error for a required parameter that was not sent."""
    return StripeError(f"Missing required param: {param}.", code="parameter_missing", param=param)


def invalid_param(param: str, message: str, code: str | None = None) -> StripeError:
    """Stripe's error for a parameter with an unacceptable value.

    ``code`` is one of Stripe's parameter error codes where one applies
    (``parameter_invalid_integer``, ``parameter_invalid_empty``…); Stripe sends none for a value
    outside an enum, a malformed boolean or a value out of range.
    """
    return StripeError(message, code=code, param=param)


def unknown_param(param: str) -> StripeError:
    """Stripe's error for a parameter the endpoint does not know (``parameter_unknown``)."""
    return StripeError(
        f"Received unknown parameter: {param}", code="parameter_unknown", param=param
    )


def exclusive_params(*params: str) -> StripeError:
    """Stripe's error for parameters that may not be sent together (``parameters_exclusive``)."""
    return StripeError(
        f"You may only specify one of these parameters: {', '.join(params)}.",
        code="parameters_exclusive",
        param=params[0],
    )


def no_such(kind: str, object_id: str, param: str = "id") -> StripeError:
    """Stripe's 404 for an id that does not exist."""
    label = kind.rsplit(".", 1)[-1].replace("_", " ")
    return StripeError(
        f"No such {label}: '{object_id}'", status=404, code="resource_missing", param=param
    )


def decode_form(pairs: Iterable[tuple[str, str]]) -> JSON:
    """Decode ``a[b][0][c]=v`` / ``a[]=v`` pairs into nested dicts and lists."""
    root: JSON = {}
    for raw_key, value in pairs:
        head, _, rest = raw_key.partition("[")
        parts = [head] + (rest[:-1].split("][") if rest.endswith("]") else [])
        if rest and not rest.endswith("]"):
            raise StripeError(f"Invalid parameter name: {raw_key}", param=raw_key)
        node = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            key = part if part else str(sum(1 for k in node if k.isdigit()))
            if last:
                node[key] = value
            else:
                child = node.setdefault(key, {})
                if not isinstance(child, dict):
                    raise StripeError(
                        f"Invalid parameter: {raw_key} mixes a value and a hash", param=head
                    )
                node = child
    return _listify(root)  # type: ignore[no-any-return]


def _listify(node: Any) -> Any:
    """Turn dicts keyed ``"0".."n"`` into lists, recursively."""
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted
