"""The billable: whoever pays. A Flask-Login user by default, or an account or team."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The metadata key under which the app writes the billable's key on the Stripe customers
#: and Checkout Sessions it creates. Informational in Stripe's dashboard: ownership is
#: decided by the app's own records, never by this metadata.
BILLABLE_METADATA_KEY = "lattice_billable"


@dataclass(frozen=True)
class Billable:
    """Who is billed: a stable key, plus the email and name Stripe shows on the customer."""

    key: str
    email: str | None = None
    name: str | None = None


def billable_from_user(user: Any) -> Billable | None:
    """The default loader's mapping: Flask-Login's ``current_user`` as ``user:<id>``.

    Anonymous users have no billable. The email and name come from the user's ``email``
    and ``name`` attributes when it has them.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return Billable(
        key=f"user:{user.get_id()}",
        email=getattr(user, "email", None),
        name=getattr(user, "name", None),
    )
