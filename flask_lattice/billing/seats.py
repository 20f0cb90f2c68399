"""Seat rules: how many seats a checkout, a plan swap or a seat change bills.

The catalog says whether a plan is flat (quantity 1) or per seat (``Plan.seats``, a
range); the host's ``@billing.seats_in_use`` hook says how many seats a billable uses.
Every quantity sent to Stripe for a plan item comes from these functions.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..billable import Billable
from ..errors import CheckoutRefused, InvalidNumber, LatticeError, OperationRefused, SeatsRefused
from ..plans import MAX_SEATS, Plan
from ..state import get_state
from .form_values import whole_number

#: Form fields that would set a number of seats.
SEAT_FIELDS = ("seats", "quantity")


def seats_in_use(billable: Billable) -> int:
    """How many seats ``billable`` uses, from the host's ``seats_in_use`` hook (0 without it).

    Raises :class:`~flask_lattice.errors.LatticeError` if the hook returns anything but a
    non-negative ``int``.
    """
    hook = get_state().hooks.seats_in_use
    if hook is None:
        return 0
    used = hook(billable)
    if not isinstance(used, int) or isinstance(used, bool) or used < 0:
        raise LatticeError(f"the seats_in_use hook must return a whole number >= 0, not {used!r}")
    return used


def parse_seats(raw: object, field: str) -> int:
    """A posted number of seats, before the plan is known: digits only, 1 to ``MAX_SEATS``."""
    return whole_number(raw, field, low=1, high=MAX_SEATS)


def check_seats(billable: Billable, plan: Plan, seats: int, field: str = "quantity") -> int:
    """``seats`` if ``plan`` sells that many and the billable uses no more; returns it.

    Raises :class:`OperationRefused` (400) for a flat plan, :class:`InvalidNumber` (400,
    naming ``field``) outside the plan's range, and :class:`SeatsRefused` (409) below the
    seats in use.
    """
    if plan.seats is None:
        raise OperationRefused(
            f"The {plan.name} plan has a flat price, not seats: its quantity is always 1."
        )
    if seats not in plan.seats:
        raise InvalidNumber(
            f"{field} must be a whole number from {plan.seats.minimum} to "
            f"{plan.seats.maximum} for the {plan.name} plan (got {seats})."
        )
    used = seats_in_use(billable)
    if seats < used:
        raise SeatsRefused(
            f"You use {used} seats, so you cannot go down to {seats}. "
            f"Remove {used - seats} {'member' if used - seats == 1 else 'members'} first."
        )
    return seats


def checkout_seats(billable: Billable, plan: Plan, form: Mapping[str, str]) -> int:
    """The quantity a Checkout for ``plan`` bills, from the posted form.

    A flat plan bills 1 and refuses ``seats`` or ``quantity`` (:class:`CheckoutRefused`).
    A per-seat plan takes ``seats`` (``quantity`` is refused: say ``seats``), defaulting
    to the larger of the plan's minimum and the seats in use.
    """
    sent = [name for name in SEAT_FIELDS if name in form]
    if plan.seats is None:
        if sent:
            raise CheckoutRefused(
                f"The {plan.name} plan has a flat price, not seats: do not send {sent[0]!r}."
            )
        return 1
    if "quantity" in form:
        raise CheckoutRefused("Send the number of seats as 'seats', not 'quantity'.")
    if "seats" not in form:
        seats = plan.seats.clamp(seats_in_use(billable))
    else:
        seats = parse_seats(form["seats"], "seats")
    return check_seats(billable, plan, seats, field="seats")


def swap_quantity(billable: Billable, current: Plan | None, quantity: int, target: Plan) -> int:
    """The quantity a swap to ``target`` bills, from the current plan and ``quantity``.

    * to a flat plan: 1;
    * from a flat (or unknown) plan to a per-seat plan: the larger of the target's minimum
      and the seats in use;
    * from a per-seat plan to a per-seat plan: ``quantity``, clamped to the target's range.

    Raises :class:`SeatsRefused` when the target cannot hold the seats in use.
    """
    if target.seats is None:
        return 1
    used = seats_in_use(billable)
    if current is not None and current.seats is not None:
        seats = target.seats.clamp(quantity)
    else:
        seats = target.seats.clamp(used)
    if seats < used:
        raise SeatsRefused(
            f"You use {used} seats, but the {target.name} plan has at most "
            f"{target.seats.maximum}. Remove members first."
        )
    return seats
