"""Testing a host app: helpers, and a pytest plugin (:mod:`flask_lattice.testing.plugin`).

The plugin is opt-in: add ``pytest_plugins = ["flask_lattice.testing.plugin"]`` to the
top-level ``conftest.py``, or ``lattice_fixtures = true`` to the pytest configuration
(see :doc:`testing`). The helpers below work with or without it.
"""

from .delivery import deliver_events, run_jobs
from .helpers import PriceSpec, ensure_prices, sign_payload

__all__ = ["PriceSpec", "deliver_events", "ensure_prices", "run_jobs", "sign_payload"]
