"""Open-redirect checks: redirect targets from config or query strings stay on this host."""

from __future__ import annotations

from urllib.parse import unquote, urljoin, urlsplit

from flask import request

#: How many rounds of percent-decoding a target is checked through (``%252F`` is two).
_DECODE_ROUNDS = 3


def _looks_off_site(form: str) -> bool:
    """Whether ``form`` is a shape a browser may read as another site, or may rewrite first.

    Browsers strip tabs and newlines from URLs and read ``\\`` as ``/``, so ``/\\host`` and
    ``/\\t/host`` are ``//host``; a scheme without ``//`` (``https:host``) is another host to
    them too, and ``javascript:`` is not a place at all.
    """
    if form != form.strip() or any(
        char == "\\" or ord(char) < 0x20 or char == "\x7f" for char in form
    ):
        return True
    if form.startswith("//"):  # scheme-relative; browsers read "///host" as another host, too
        return True
    parts = urlsplit(form)
    return bool(parts.scheme) and not form[len(parts.scheme) + 1 :].startswith("//")


def is_safe_url(target: str | None) -> bool:
    """Whether ``target`` (relative or absolute) points at this app's host over HTTP(S).

    The target is checked as given and after each round of percent-decoding, so that
    ``%2F%2Fhost`` or ``/%5Chost`` cannot turn into ``//host`` in a later hop.
    """
    if not target:
        return False
    form = target
    for _ in range(_DECODE_ROUNDS):
        if _looks_off_site(form):
            return False
        decoded = unquote(form)
        if decoded == form:
            break
        form = decoded
    else:
        return False  # still encoded after every round: not a target a person wrote
    resolved = urlsplit(urljoin(request.host_url, target))
    return resolved.scheme in ("http", "https") and resolved.netloc == request.host


def safe_url(target: str | None, *, fallback: str) -> str:
    """``target`` as an absolute URL on this host if it is safe, else ``fallback``.

    For redirect targets taken from a query string or a form (a login page's ``next``).
    Safe means relative, or absolute on the current request's host over HTTP(S), as given
    and after every round of percent-decoding: scheme-relative (``//host``, ``////host``),
    backslash (``/\\host``), control-character, ``https:host`` and ``javascript:`` forms
    all get ``fallback``. Needs a request context.
    """
    if target is not None and is_safe_url(target):
        return urljoin(request.host_url, target)
    return fallback
