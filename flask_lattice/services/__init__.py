"""Use cases: each module is one job and the only place that writes its billing rows.

``customers`` (get-or-create the Stripe customer), ``prices`` (the price cache and the
catalog check), ``standing`` (the billable's live subscription, read locally),
``checkout`` (start a Checkout Session) and ``portal`` (open the customer portal).
"""
