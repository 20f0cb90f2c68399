"""Browser fixtures: Debian's Chromium through Playwright, and the demo run as ``make demo`` runs it.

The demo is started once per session with the real runner (``python -m demo_app``): web app,
Stripe sandbox, webhook worker process and Redis, on free ports, with its data in a temporary
instance folder. With ``LATTICE_TEST_REDIS_URL`` set the queue is that Redis (on a database
of its own); otherwise the runner's embedded Redis is used, exactly as on a fresh machine.

Chromium: ``$LATTICE_CHROMIUM`` or ``/usr/bin/chromium``. When ``LATTICE_CHROMIUM`` is set
(CI sets it) a missing browser fails the run; otherwise the browser tests are skipped.

Every test runs at two sizes, desktop (1280×800) and phone (390×844). Each screenshot step
also audits the page (see :mod:`.audit`): axe-core finds no serious or critical WCAG 2.1 AA
violation and nothing scrolls sideways.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from tests.conftest import sandbox_seed

from .audit import audit
from .demo_process import DemoProcess, start_demo

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
#: The README's screenshots; refreshed by a run with ``LATTICE_UPDATE_DOCS_IMAGES=1``.
DOCS_IMAGES = REPO / "docs" / "images"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: The two sizes every browser test runs at.
VIEWPORTS = {
    "desktop": {"width": 1280, "height": 800},
    "mobile": {"width": 390, "height": 844},
}


def chromium_executable() -> str:
    """The Chromium to drive, or a skip (a failure when ``LATTICE_CHROMIUM`` is set)."""
    configured = os.environ.get("LATTICE_CHROMIUM")
    path = configured or "/usr/bin/chromium"
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    if configured:
        pytest.fail(f"LATTICE_CHROMIUM={configured} but no executable browser is there")
    pytest.skip(
        "Chromium is not installed at /usr/bin/chromium (install Debian's `chromium`, "
        "or set LATTICE_CHROMIUM to a Chromium binary)"
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per module.

    Playwright's sync API keeps an event loop running in the main thread while it is open;
    closing it with the module keeps that loop away from later tests (async views).
    """
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[DemoProcess]:
    """The demo, started by its runner like ``make demo``; stopped with SIGINT at the end.

    Its sandbox delivers webhooks with chaos (shuffled, duplicated, delayed), seeded.
    """
    chromium_executable()
    redis_url = os.environ.get("LATTICE_TEST_REDIS_URL")
    demo_redis_url = _own_database(redis_url) if redis_url else None
    if demo_redis_url:
        # Start from an empty queue: jobs left by an interrupted run would come first.
        Redis.from_url(demo_redis_url).flushdb()
    process = start_demo(
        tmp_path_factory.mktemp("demo-instance"),
        redis_url=demo_redis_url,
        chaos_seed=sandbox_seed(request.node.nodeid),
    )
    yield process
    process.stop()


def _own_database(url: str) -> str:
    """The same Redis on database 13, so other tests' flushes never touch the demo's queue."""
    return re.sub(r"(/\d+)?$", "/13", url.split("?", 1)[0], count=1)


class Shots:
    """Numbered screenshots of one test under ``test-artifacts/browser/<test>/``.

    ``shots("step", docs="name")`` also copies the picture to ``docs/images/name.png``
    (``name-mobile.png`` at phone size) when ``LATTICE_UPDATE_DOCS_IMAGES=1``, so an ordinary
    test run never rewrites committed files. Each step first audits the page (demo pages only).
    """

    def __init__(self, page: Any, folder: Path, demo_url: str, viewport: str) -> None:
        self.page = page
        self.folder = folder
        self.demo_url = demo_url
        self.viewport = viewport
        self.count = 0

    def __call__(self, name: str, *, docs: str | None = None) -> Path:
        self.count += 1
        if self.page.url.startswith(self.demo_url):
            audit(self.page, f"step {name!r}")
        path = self.folder / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        if docs and os.environ.get("LATTICE_UPDATE_DOCS_IMAGES") == "1":
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            suffix = "" if self.viewport == "desktop" else f"-{self.viewport}"
            shutil.copyfile(path, DOCS_IMAGES / f"{docs}{suffix}.png")
        return path


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> str:
    """``desktop`` or ``mobile``: every browser test runs at both sizes."""
    name: str = request.param
    return name


@pytest.fixture
def page(browser: Any, demo: DemoProcess, viewport: str) -> Iterator[Any]:
    """A fresh browser context and page on the demo (its own cookies) at ``viewport``."""
    context = browser.new_context(
        viewport=VIEWPORTS[viewport],
        base_url=demo.url,
        is_mobile=viewport == "mobile",
        has_touch=viewport == "mobile",
    )
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def shots(page: Any, demo: DemoProcess, viewport: str, request: pytest.FixtureRequest) -> Shots:
    """Save numbered, full-page screenshots of the test's steps as artifacts."""
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "-", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Shots(page, folder, demo.url, viewport)
