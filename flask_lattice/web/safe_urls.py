"""Open-redirect checks: redirect targets from config or query strings stay on this host."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from flask import request


def is_safe_url(target: str | None) -> bool:
    """Whether ``target`` (relative or absolute) points at this app's host over HTTP(S)."""
    if not target or any(char in target for char in "\\\r\n\t\x00") or target != target.strip():
        return False
    if target.startswith("//"):  # browsers read "///host" as another host, too
        return False
    resolved = urlsplit(urljoin(request.host_url, target))
    return resolved.scheme in ("http", "https") and resolved.netloc == request.host


def safe_url(target: str | None, *, fallback: str) -> str:
    """``target`` as an absolute URL on this host if it is safe, else ``fallback``."""
    if target is not None and is_safe_url(target):
        return urljoin(request.host_url, target)
    return fallback
