"""The local invoice history (``lattice_invoices``), kept by the webhook projection."""

from __future__ import annotations

import sqlalchemy as sa

from ..models import Invoice
from ..state import get_state


def recent_invoices(billable_key: str, limit: int = 12) -> list[Invoice]:
    """The billable's invoices, newest first (by Stripe's ``created``), at most ``limit``.

    Local state only, as projected from ``invoice.*`` events: no Stripe call. Amounts
    are integer minor units of ``Invoice.currency``; ``hosted_invoice_url`` is Stripe's
    page for the invoice (``None`` for a draft).
    """
    session = get_state().db.session
    return list(
        session.scalars(
            sa.select(Invoice)
            .where(Invoice.billable_key == billable_key)
            .order_by(Invoice.stripe_created.desc().nulls_last(), Invoice.id.desc())
            .limit(limit)
        )
    )
