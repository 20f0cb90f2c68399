"""The extension's HTTP surface: blueprints and the helpers they share.

:mod:`.views` (pricing, checkout, success, status, portal, webhook), :mod:`.subscription_views`
(plan swaps, seats, cancel, pause), :mod:`.http` (current billable, return URLs, Stripe
failures as answers, ``no-store``), :mod:`.csrf` and :mod:`.safe_urls`.
"""
