"""Access gating, read from the local projection only.

In the order a gate decides: :mod:`.query` reads a billable's projected subscription rows
(one query, no Stripe call), :mod:`.policy` turns those rows and a clock into a plan (pure),
and :mod:`.gates` holds the decorators, the denial answers and the template helpers.
The public names are re-exported by :mod:`flask_lattice`.
"""
