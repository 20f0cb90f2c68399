"""Reading the code blocks of a documentation page, so tests can run them."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def code_blocks(page: str, language: str = "python") -> list[str]:
    """The fenced code blocks of ``docs/<page>`` in ``language``, in page order."""
    text = (DOCS / page).read_text()
    return [body for lang, body in _BLOCK.findall(text) if lang == language]


_FILE = re.compile(r"^(?:#|\{#)\s*file:\s*(\S+?)\s*(?:#\})?$")


def files(page: str) -> dict[str, str]:
    """The page's code blocks whose first line names a file (``# file: acme.py`` or
    ``{# file: templates/layout.html #}``): name → content."""
    found = {}
    for _, block in _BLOCK.findall((DOCS / page).read_text()):
        first, _, rest = block.partition("\n")
        match = _FILE.match(first)
        if match:
            found[match[1]] = rest
    return found
