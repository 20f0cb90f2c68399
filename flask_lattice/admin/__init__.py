"""The operations console: the ``lattice_admin`` blueprint (``LATTICE_ADMIN_URL_PREFIX``).

:mod:`.guard` (closed by default, CSRF, the audit trail), :mod:`.paging` (keyset pages),
:mod:`.redact` (bearer URLs out of payloads), :mod:`.inbox` and :mod:`.subscriptions`
(the reads), :mod:`.chart` (the inline SVG) and :mod:`.views` (the routes).
"""
