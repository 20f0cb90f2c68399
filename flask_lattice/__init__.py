"""Flask-Lattice: Stripe subscription billing for Flask.

The app starts the flow; webhooks confirm reality.
"""

from .access.gates import feature_required, plan_required, requires_feature, requires_plan
from .billable import Billable
from .errors import ConfigurationError, LatticeError, StripeGuardError, UnknownPlanError
from .extension import LatticeBilling
from .plans import Plan, PlanCatalog

__all__ = [
    "Billable",
    "ConfigurationError",
    "LatticeBilling",
    "LatticeError",
    "Plan",
    "PlanCatalog",
    "StripeGuardError",
    "UnknownPlanError",
    "feature_required",
    "plan_required",
    "requires_feature",
    "requires_plan",
]
