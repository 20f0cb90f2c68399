"""What every demo page must pass, at every size: axe-core finds no serious or critical
WCAG 2.1 A/AA violation, and nothing is wider than the screen.

axe-core is the npm package pinned in ``tests/browser/package.json`` and installed by
``make test`` (``npm ci --prefix tests/browser``); it is injected from that install, so the
audit needs no network.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
#: The rule sets checked: WCAG 2.0 and 2.1, levels A and AA.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
#: Violations at these impacts fail the test.
FAILING_IMPACTS = {"serious", "critical"}


@cache
def axe_source() -> str:
    """The axe-core script, or a failure that says how to install it."""
    if not AXE.is_file():
        pytest.fail(
            f"axe-core is not installed at {AXE.relative_to(AXE.parents[3])}: run "
            "`npm ci --prefix tests/browser` (make test does it)"
        )
    return AXE.read_text(encoding="utf-8")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Run axe-core on the page; its serious and critical violations."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source())
    result = page.evaluate(
        """(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})
             .then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
               nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ': '
                 + (n.failureSummary || '').replace(/\\s+/g, ' '))})))""",
        WCAG_TAGS,
    )
    return [each for each in result if each["impact"] in FAILING_IMPACTS]


def overflow(page: Any) -> dict[str, Any] | None:
    """How far the page is wider than the viewport, and the widest culprits; None if it fits."""
    width = page.viewport_size["width"]
    found: dict[str, Any] | None = page.evaluate(
        """(width) => {
             const scroll = document.documentElement.scrollWidth;
             if (scroll <= width) { return null; }
             const wide = [...document.querySelectorAll('body *')]
               .filter(e => e.getBoundingClientRect().right > width + 1)
               .slice(0, 8)
               .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
                         + ' right=' + Math.round(e.getBoundingClientRect().right));
             return {scrollWidth: scroll, width: width, wide: wide};
           }""",
        width,
    )
    return found


def audit(page: Any, where: str) -> None:
    """Fail with the details when the page has a serious or critical axe violation or
    scrolls sideways."""
    problems = []
    for violation in axe_violations(page):
        nodes = "\n      ".join(violation["nodes"])
        problems.append(
            f"axe {violation['impact']} {violation['id']}: {violation['help']}\n      {nodes}"
        )
    wide = overflow(page)
    if wide is not None:
        problems.append(f"horizontal scroll: {wide}")
    if problems:
        listing = "\n  ".join(problems)
        raise AssertionError(f"{page.url} ({where}) fails the page audit:\n  {listing}")
