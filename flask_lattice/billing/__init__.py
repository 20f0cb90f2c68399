"""Use cases: each module is one job and the only place that writes its billing rows.

:mod:`.customers` (get-or-create the Stripe customer), :mod:`.prices` (the price cache and
the catalog check), :mod:`.checkout` (start a Checkout Session), :mod:`.portal` (open the
customer portal), :mod:`.operations` (plan swaps, seats, cancel, pause), :mod:`.facade`
(``billing.subscriptions``) and :mod:`.sync` (backfill and heal from Stripe).
"""
