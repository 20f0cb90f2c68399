"""Blinker signals sent by Flask-Lattice.

Every signal is sent after the database commit that it reports, so a receiver always
sees the committed state. Connect receivers with ``signal.connect(func, app)`` to
listen to one app only.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

subscription_changed = _signals.signal("lattice.subscription-changed")
"""A projected subscription's status or plan changed.

Sender: the Flask app. Keyword arguments: ``billable_key`` (str or None),
``subscription_id`` (str), ``old_status`` / ``new_status`` (str or None) and
``old_plan`` / ``new_plan`` (plan key or None).
"""

payment_failed = _signals.signal("lattice.payment-failed")
"""An invoice payment failed (``invoice.payment_failed``).

Sender: the Flask app. Keyword arguments: ``billable_key``, ``customer_id``,
``invoice_id``, ``subscription_id`` (each str or None) and ``hosted_invoice_url``.
"""

trial_will_end = _signals.signal("lattice.trial-will-end")
"""A trial ends in three days (``customer.subscription.trial_will_end``).

Sender: the Flask app. Keyword arguments: ``billable_key``, ``subscription_id`` and
``trial_end`` (an aware ``datetime`` or None).
"""

ownership_conflict = _signals.signal("lattice.ownership-conflict")
"""Something claimed a Stripe customer for another billable than the one that owns it in
``lattice_customers`` (a Checkout Session's ``client_reference_id`` or metadata, or the
``checkout_owner`` hook). The claim was not applied.

Sender: the Flask app. Keyword arguments: ``customer_id`` (``cus_…``), ``owner`` (the
billable key on record), ``claimed_by`` (the billable key claimed) and ``source`` (str,
where the claim came from).
"""

event_processed = _signals.signal("lattice.event-processed")
"""A stored webhook event finished processing.

Sender: the Flask app. Keyword arguments: ``event_id``, ``event_type`` and ``status``
(``processed``, ``ignored`` or ``failed``). Sent by the worker after its job, or, for an
event of a type that nothing handles, by the webhook route as it stores it ``ignored``.
"""

stripe_request = _signals.signal("lattice.stripe-request")
"""The Stripe client finished one HTTP request.

Sender: the Flask app. Keyword arguments: ``method``, ``path``, ``status`` (int, 0 when
no answer came), ``duration`` (seconds, float), ``request_id`` and ``idempotency_key``
(str or None). It never carries the API key, a Checkout or portal URL, or card data.
"""

admin_action = _signals.signal("lattice.admin-action")
"""An operator changed something from the operations console (after its audit row and
the change itself were committed).

Sender: the Flask app. Keyword arguments: ``actor`` (str: the operator's billable key or
user id), ``action`` (str, such as ``replay``, ``replay-failed``, ``drain``, ``recover``,
``resync``), ``target`` (str or None: an ``evt_…``, event type or ``cus_…`` id),
``parameters`` (dict) and ``audit_id`` (int: the ``lattice_admin_audit`` row).
"""
