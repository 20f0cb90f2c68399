"""Stripe's minor units: how many decimal digits an amount in each currency carries.

Stripe sends every amount as an integer in the currency's smallest unit: ``1999 usd`` is
$19.99, ``500 jpy`` is ¥500 (a zero-decimal currency) and ``1234 kwd`` is 1.234 KWD (a
three-decimal one). The extension's price display and the sandbox's hosted pages both read
amounts through :func:`minor_unit_digits`, so the two agree; this module imports nothing.
"""

from __future__ import annotations

#: Stripe's zero-decimal currencies (``currency`` codes, lowercase).
ZERO_DECIMAL = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)
#: Stripe's three-decimal currencies (``currency`` codes, lowercase).
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})


def minor_unit_digits(currency: str) -> int:
    """How many decimal digits Stripe's integer amounts in ``currency`` carry: 0, 2 or 3.

    ``currency`` is an ISO 4217 code in either case (Stripe sends lowercase).
    """
    code = currency.lower()
    return 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
