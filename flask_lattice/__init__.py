"""Flask-Lattice: Stripe subscription billing for Flask.

The app starts the flow; webhooks confirm reality.

Everything a host app uses is importable from here. Three subpackages are public too:
:mod:`flask_lattice.signals`, :mod:`flask_lattice.testing` and :mod:`flask_lattice.sandbox`.
Every other module is internal and may change between releases.
"""

from . import signals
from .access.gates import (
    Denial,
    current_access,
    default_denial_response,
    default_policy,
    feature_required,
    plan_required,
    requires_feature,
    requires_plan,
)
from .access.policy import LIVE_STATUSES, Access, AccessPolicy, PolicyFunction, SubscriptionState
from .access.query import projection_revision
from .billable import Billable
from .billing.prices import CatalogProblem, check_catalog, format_amount
from .errors import (
    BillingHTTPError,
    BillingObjectNotFound,
    BillingUnavailable,
    CardDeclined,
    CheckoutRefused,
    ConfigurationError,
    CSRFTokenError,
    DatabaseBusy,
    DowngradeRefused,
    InvalidDate,
    InvalidNumber,
    InvalidSignature,
    LatticeError,
    MalformedEvent,
    OperationConflict,
    OperationRefused,
    PaymentFailed,
    PortalRefused,
    PriceUnavailable,
    SeatsRefused,
    StripeAPIError,
    StripeGuardError,
    StripeNotFound,
    StripeRequestError,
    StripeUnavailable,
    SubscriptionNotFound,
    UnknownPlanError,
    WebhookRejected,
)
from .extension import LatticeBilling
from .models import (
    CheckoutSession,
    CheckoutSessionStatus,
    Customer,
    EventStatus,
    Invoice,
    Price,
    Subscription,
    SubscriptionItem,
    TestClock,
    WebhookEvent,
)
from .plans import Plan, PlanCatalog
from .web.safe_urls import safe_url

__all__ = [
    "LIVE_STATUSES",
    "Access",
    "AccessPolicy",
    "Billable",
    "BillingHTTPError",
    "BillingObjectNotFound",
    "BillingUnavailable",
    "CSRFTokenError",
    "CardDeclined",
    "CatalogProblem",
    "CheckoutRefused",
    "CheckoutSession",
    "CheckoutSessionStatus",
    "ConfigurationError",
    "Customer",
    "DatabaseBusy",
    "Denial",
    "DowngradeRefused",
    "EventStatus",
    "InvalidDate",
    "InvalidNumber",
    "InvalidSignature",
    "Invoice",
    "LatticeBilling",
    "LatticeError",
    "MalformedEvent",
    "OperationConflict",
    "OperationRefused",
    "PaymentFailed",
    "Plan",
    "PlanCatalog",
    "PolicyFunction",
    "PortalRefused",
    "Price",
    "PriceUnavailable",
    "SeatsRefused",
    "StripeAPIError",
    "StripeGuardError",
    "StripeNotFound",
    "StripeRequestError",
    "StripeUnavailable",
    "Subscription",
    "SubscriptionItem",
    "SubscriptionNotFound",
    "SubscriptionState",
    "TestClock",
    "UnknownPlanError",
    "WebhookEvent",
    "WebhookRejected",
    "check_catalog",
    "current_access",
    "default_denial_response",
    "default_policy",
    "feature_required",
    "format_amount",
    "plan_required",
    "projection_revision",
    "requires_feature",
    "requires_plan",
    "safe_url",
    "signals",
]
