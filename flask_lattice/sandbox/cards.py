"""Stripe's test cards and test payment-method tokens, and how each one behaves."""

from __future__ import annotations

from .wire import StripeError

TEST_TOKENS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_amex": "378282246310005",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_visa_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_visa_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_authenticationRequired": "4000002760003184",
}

ALWAYS_FAILS_CHARGE = "4000000000000341"
REQUIRES_ACTION = "4000002760003184"
_DECLINES = {
    "4000000000000002": ("generic_decline", "Your card was declined."),
    "4000000000009995": ("insufficient_funds", "Your card has insufficient funds."),
}


def normalize(number: str) -> str:
    """A card number with spaces and dashes removed."""
    return "".join(ch for ch in number if ch.isdigit())


def luhn_ok(number: str) -> bool:
    """Whether ``number`` passes the Luhn checksum."""
    digits = [int(ch) for ch in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return len(number) >= 12 and total % 10 == 0


def card_error(decline_code: str, message: str) -> StripeError:
    """A 402 ``card_declined`` error."""
    return StripeError(
        message, status=402, type="card_error", code="card_declined", decline_code=decline_code
    )


def number_error(number: str) -> StripeError | None:
    """Stripe's ``incorrect_number`` error for a number that fails the checksum."""
    if luhn_ok(number):
        return None
    return StripeError(
        "Your card number is incorrect.",
        status=402,
        type="card_error",
        code="incorrect_number",
        param="number",
    )


def attach_error(number: str) -> StripeError | None:
    """The error Stripe raises when saving this card, or None if it can be saved."""
    if error := number_error(number):
        return error
    if number in _DECLINES:
        return card_error(*_DECLINES[number])
    return None


def charge_error(number: str) -> StripeError | None:
    """The error a charge on this (saved) card fails with, or None if it succeeds."""
    if number == ALWAYS_FAILS_CHARGE:
        return card_error("generic_decline", "Your card was declined.")
    if number == REQUIRES_ACTION:
        return StripeError(
            "This payment requires authentication.",
            status=402,
            type="card_error",
            code="authentication_required",
            decline_code="authentication_required",
        )
    return attach_error(number)
