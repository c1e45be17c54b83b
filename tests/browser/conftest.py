"""Browser tests: Debian's Chromium, driven by Playwright, against caseloop's real processes.

The browser is the system's own (``/usr/bin/chromium`` from the ``chromium`` package, installed
by ``make browser-deps``), never one Playwright downloads. Without it the tests are skipped
locally and fail under ``CI=true``, as the other service-backed tests do.

Every page a test opens can be checked with :func:`check_page`: axe-core's WCAG 2.2 AA rules
(``wcag2a``, ``wcag2aa``, ``wcag21aa``, ``wcag22aa``) report no violation, and at 320 CSS pixels
wide the page does not scroll sideways (wide tables scroll inside their own box instead).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.conftest import require
from tests.web.conftest import live_server  # noqa: F401  (a real uvicorn, for pages in-process)

# Without the background-networking flags Chromium keeps trying hosts this machine cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]
NARROW = {"width": 320, "height": 720}
WIDE = {"width": 1280, "height": 900}
ACTION_TIMEOUT_MS = 30_000  # generous, for a loaded machine


def chromium_path() -> str | None:
    return (
        os.environ.get("CASELOOP_CHROMIUM")
        or shutil.which("chromium")
        or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    )


# Per module, not per session: Playwright's sync API keeps an event loop running in this thread
# while it is open, and later tests in the same process that start a loop of their own (a test
# client) would fail.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    path = require("chromium", "browser", chromium_path())
    browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
    try:
        yield browser
    finally:
        browser.close()


@dataclass
class Visitor:
    """One person's browser: its own cookies, with JavaScript on or off."""

    context: BrowserContext
    page: Page
    base_url: str
    javascript: bool = True

    def check(self) -> None:
        """:func:`check_page` on the page as it is. axe runs as a script in the page, so only
        with JavaScript on; the runs with it off act on the same pages, checked in the runs with it."""
        if self.javascript:
            check_page(self.page)

    def open(self, path: str) -> Page:
        response = self.page.goto(self.base_url + path)
        assert response is not None
        return self.page

    def sign_in(self, staff_id: str, password: str) -> None:
        self.open("/login")
        self.page.get_by_label("Staff id").fill(staff_id)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(lambda url: "/login" not in url)


@pytest.fixture
def visit(chromium: Browser) -> Iterator[Callable[..., Visitor]]:
    """``visit(base_url, javascript=True)``: a fresh browser context, closed after the test."""
    contexts: list[BrowserContext] = []

    def make(base_url: str, *, javascript: bool = True, viewport: dict[str, int] | None = None) -> Visitor:
        context = chromium.new_context(java_script_enabled=javascript, viewport=viewport or WIDE)  # type: ignore[arg-type]
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        contexts.append(context)
        return Visitor(context, context.new_page(), base_url, javascript)

    yield make
    for context in contexts:
        context.close()


def accessibility_violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.2 AA violations on the page as it is, one line per rule and element."""
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    lines = []
    for violation in results.response["violations"]:
        for node in violation["nodes"]:
            lines.append(f"{violation['id']} ({violation['impact']}): {node['target']}: {violation['help']}")
    return lines


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than its viewport (0: no sideways scrolling)."""
    return int(page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def too_wide(page: Page) -> list[str]:
    """The innermost elements that reach past the viewport's right edge (for the message)."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
            .filter(e => ![...e.children].some(c => c.getBoundingClientRect().right
                                               > document.documentElement.clientWidth + 1))
            .slice(0, 5)
            .map(e => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')}`
                      + ` "${e.textContent.trim().slice(0, 40)}"`)"""
    )
    return found


def check_page(page: Page) -> None:
    """The page passes the WCAG 2.2 AA rules, and does not scroll sideways at 320 px wide."""
    assert page.locator("h1").count() == 1, f"{page.url}: a page has one main heading"
    violations = accessibility_violations(page)
    assert not violations, f"{page.url}:\n" + "\n".join(violations)
    size = page.viewport_size
    page.set_viewport_size(NARROW)
    try:
        overflow = horizontal_overflow(page)
        assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px at 320px wide: {too_wide(page)}"
        narrow_violations = accessibility_violations(page)  # e.g. reflowed content hiding a label
        assert not narrow_violations, f"{page.url} at 320px:\n" + "\n".join(narrow_violations)
    finally:
        if size is not None:
            page.set_viewport_size(size)
