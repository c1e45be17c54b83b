"""The demo borough in a browser: every page of each kind of user passes WCAG 2.2 AA and fits a
320 px screen with a borough's worth of real-looking data, and the README's screenshots are taken
from it (written to ``CASELOOP_SCREENSHOTS`` when set, as ``make screenshots`` does; else kept
with the test's files).

The borough is made by ``caseloop demo`` and served by ``caseloop web``, as ``make demo`` does,
and the logins are the ones ``caseloop demo`` prints.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import WIDE, Visitor
from tests.e2e.engine import Engine
from tests.e2e.services import free_port, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("demo-borough")]

STARTUP_SECONDS = 120.0


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


class Borough:
    def __init__(self, url: str, logins: str) -> None:
        self.url = url
        found = re.search(r"^ .* password (\S+)", logins, re.M)
        assert found, logins
        self.password = found.group(1)


@pytest.fixture(scope="module")
def borough(tmp_path_factory: pytest.TempPathFactory, chromium: Browser) -> Iterator[Borough]:
    root = tmp_path_factory.mktemp("borough")
    engine = Engine(root, f"sqlite:///{root / 'caseloop.db'}", settings={"CASELOOP_PASSWORD_HASHING": "fast"})
    try:
        engine.cli("db", "upgrade")
        # Six weeks of a smaller borough: every page has rows, the performance page two months.
        engine.cli(
            "demo",
            "--weeks",
            "6",
            "--per-week",
            "30",
            "--logins",
            str(root / "logins.txt"),
            "--output",
            str(root / "demo.jsonl"),
            timeout=300,
        )
        port = free_port()
        web = engine.start("web", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: _answers(f"{url}/healthz"),
            timeout=STARTUP_SECONDS,
            what="caseloop web",
            diagnostics=web.log,
        )
        yield Borough(url, (root / "logins.txt").read_text())
    finally:
        engine.stop_all()


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CASELOOP_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _shoot(me: Visitor, path: Path, height: int = 1100) -> None:
    """The top of the page, as a person at a desk sees it first."""
    me.page.set_viewport_size(WIDE)
    full = me.page.evaluate("document.documentElement.scrollHeight")
    clip = {"x": 0, "y": 0, "width": WIDE["width"], "height": min(height, full)}
    me.page.screenshot(path=str(path), clip=clip)
    assert path.stat().st_size > 10_000


def test_the_readme_screenshots(borough: Borough, visit: Callable[..., Visitor], tmp_path: Path) -> None:
    folder = _shots(tmp_path)
    tm = visit(borough.url)
    tm.sign_in("TM01", borough.password)
    tm.open("/team")
    assert tm.page.locator("main table tbody tr").count() > 0, "the demo team queue has rows"
    _shoot(tm, folder / "team-queue.png")
    tm.open("/letters/held")
    first = tm.page.locator("main table a[href^='/letters/']").first
    first.click()
    tm.page.wait_for_url(re.compile(r"/letters/\d+$"))
    _shoot(tm, folder / "letter-awaiting-approval.png", height=1400)
    tm.open("/performance")
    _shoot(tm, folder / "performance.png", height=1500)


PAGES = {
    "SW001": ["/", "/my-work", "/letters/held", "/deliveries", "/open-loops"],
    "TM01": ["/team", "/letters/held", "/deliveries", "/open-loops", "/performance", "/audit"],
    "SM01": [
        "/team",
        "/open-loops",
        "/performance",
        "/audit",
        "/admin",
        "/admin/users",
        "/admin/tokens",
        "/admin/staff",
    ],
}


@pytest.mark.parametrize("staff_id", list(PAGES))
def test_every_page_of_the_borough_passes_wcag_22_aa_and_fits_320_px(
    borough: Borough, visit: Callable[..., Visitor], staff_id: str
) -> None:
    me = visit(borough.url)
    me.sign_in(staff_id, borough.password)
    for path in PAGES[staff_id]:
        response = me.page.goto(borough.url + path)
        assert response is not None and response.status == 200, f"{path}: {response and response.status}"
        me.check()
    # A case timeline and a letter, reached from the pages as a person would.
    me.open("/open-loops")
    case = me.page.locator("main table a[href^='/cases/']").first
    if case.count():
        case.click()
        me.check()
