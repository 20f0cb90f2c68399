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


def files(page: str) -> dict[str, str]:
    """The page's Python blocks that start with ``# file: NAME``: name → source."""
    found = {}
    for block in code_blocks(page):
        first, _, rest = block.partition("\n")
        if first.startswith("# file: "):
            found[first.removeprefix("# file: ").strip()] = rest
    return found
