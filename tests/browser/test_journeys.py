"""The journeys of the issue, in a real browser against ``caseloop run`` (worker, beat and web) on
PostgreSQL and Redis, each with JavaScript on and with it off:

- a team manager opens the team queue, approves a held letter, and the worker sends it;
- a social worker cannot open another team's case;
- a social worker acknowledges a reminder, and records a duty done by phone;
- every page passes the WCAG 2.2 AA rules and fits a 320 px screen.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import Visitor
from tests.browser.deployment import PASSWORD, FrontDoor, serve_front_door
from tests.conftest import require

# One deployment for the module: under pytest-xdist its tests all run on one worker.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.xdist_group("front-door"),
]

MODES = {"js": True, "nojs": False}
SENDING_DEADLINE = 120.0  # seconds for the worker to send what the beat queued, on a loaded machine


@pytest.fixture(scope="module")
def front_door(tmp_path_factory: pytest.TempPathFactory, chromium: Browser) -> Iterator[FrontDoor]:
    env = os.environ.get
    postgres = require("CASELOOP_TEST_POSTGRES_URL", "PostgreSQL", env("CASELOOP_TEST_POSTGRES_URL"))
    broker = require("CASELOOP_TEST_REDIS_URL", "Redis", env("CASELOOP_TEST_REDIS_URL"))
    root: Path = tmp_path_factory.mktemp("front-door")
    yield from serve_front_door(root, postgres, broker, list(MODES))


@pytest.fixture(params=list(MODES), ids=["javascript-on", "javascript-off"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def signed_in(visit: Callable[..., Visitor], front_door: FrontDoor, staff_id: str, mode: str) -> Visitor:
    me = visit(front_door.url, javascript=MODES[mode])
    me.sign_in(staff_id, PASSWORD)
    return me


def test_a_team_manager_approves_a_held_letter_and_the_worker_sends_it(
    front_door: FrontDoor, visit: Callable[..., Visitor], mode: str
) -> None:
    case, school = f"HELD-{mode}", f"dsl-{mode}@school.example"
    tm = signed_in(visit, front_door, "tm1", mode)
    page = tm.open("/team")
    expect(page.get_by_role("heading", name="Team queue", level=1)).to_be_visible()
    tm.check()
    page.get_by_role("link", name="Letters to approve").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Letters awaiting approval")
    tm.check()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=case, exact=True))
    row.get_by_role("link").first.click()
    letter_url = page.url
    assert re.search(r"/letters/\d+$", letter_url), letter_url
    expect(page.locator("pre.app-letter-text")).to_contain_text("Ms Lead")  # the words she will read
    tm.check()
    page.get_by_label("Why it is safe to send").fill("Read in full: nothing in it puts the child at risk")
    page.get_by_role("button", name="Approve and send").click()
    page.wait_for_url(re.compile(r"/letters/held"))
    expect(page.get_by_role("link", name=case, exact=True)).to_have_count(0)  # no longer waiting
    # The worker process sends it: the school's mail server has it, and the page says so.
    front_door.engine.wait(
        lambda: front_door.smtp.recipients()[school] >= 1,
        f"the letter to {school}",
        timeout=SENDING_DEADLINE,
        sink=front_door.smtp,
    )
    page.goto(letter_url)
    expect(page.locator(".govuk-summary-list")).to_contain_text("Sent")
    assert front_door.smtp.recipients()[school] == 1  # once


def test_a_social_worker_cannot_open_another_teams_case(
    front_door: FrontDoor, visit: Callable[..., Visitor], mode: str
) -> None:
    sw = signed_in(visit, front_door, "sw1", mode)
    response = sw.page.goto(front_door.url + f"/cases/HELD-{mode}")
    assert response is not None and response.status == 200  # their own case
    expect(sw.page.get_by_role("heading", level=1)).to_contain_text(f"HELD-{mode}")
    sw.check()
    response = sw.page.goto(front_door.url + "/cases/OTHER-1")
    assert response is not None and response.status == 404
    expect(sw.page.get_by_role("heading", level=1)).to_have_text("Page not found")
    sw.check()
    # Word for word what a case that does not exist gets: nothing says OTHER-1 is there.
    shown = sw.page.locator("main").inner_text().replace("OTHER-1", "REF")
    sw.page.goto(front_door.url + "/cases/NO-SUCH-CASE")
    assert sw.page.locator("main").inner_text().replace("NO-SUCH-CASE", "REF") == shown


def test_a_social_worker_acknowledges_a_reminder(
    front_door: FrontDoor, visit: Callable[..., Visitor], mode: str
) -> None:
    sw = signed_in(visit, front_door, "sw1", mode)
    named = re.compile(rf"^Acknowledge reminder \d+: .* on case LATE-{mode}$")
    button = sw.page.get_by_role("button", name=named)

    def reminder_listed() -> bool:
        sw.open("/my-work")
        return button.count() > 0

    # The beat plans the reminder for the fortnight-old referral on its first sweeps.
    front_door.engine.wait(reminder_listed, "a reminder on My work", timeout=SENDING_DEADLINE)
    sw.check()
    before = button.count()
    button.first.click()
    expect(sw.page.get_by_text("Reminder acknowledged")).to_be_visible()
    assert button.count() == before - 1


def test_a_social_worker_records_a_duty_done_by_phone(
    front_door: FrontDoor, visit: Callable[..., Visitor], mode: str
) -> None:
    sw = signed_in(visit, front_door, "sw1", mode)
    page = sw.open("/my-work")
    ours = page.get_by_role("button", name=re.compile(rf"^Record as done\s*:.*, case PHONE-{mode}$"))
    duty = ours.locator("xpath=ancestor::form[1]")
    expect(duty).to_have_count(1)
    duty.get_by_role("button").click()  # without saying how: refused, and said why
    expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
    sw.check()
    duty.get_by_label("By phone").check()
    duty.get_by_role("button").click()
    expect(page.get_by_role("heading", name="There is a problem")).to_have_count(0)
    expect(ours).to_have_count(0)  # done: no longer on the list
    page.goto(front_door.url + f"/cases/PHONE-{mode}")
    expect(page.locator("main")).to_contain_text("phone")


# Every page each kind of user has, checked with JavaScript on (axe runs as a script).
PAGES = {
    "sw1": ["/", "/my-work", "/letters/held", "/deliveries", "/open-loops", "/cases/LATE-js"],
    "tm1": [
        "/team",
        "/letters/held",
        "/deliveries",
        "/open-loops",
        "/performance",
        "/audit",
        "/cases/PHONE-js",
    ],
    "sm1": ["/team", "/performance", "/audit", "/admin", "/admin/users", "/admin/tokens", "/admin/staff"],
}


@pytest.mark.parametrize("staff_id", list(PAGES))
def test_every_page_passes_wcag_22_aa_and_fits_320_px(
    front_door: FrontDoor, visit: Callable[..., Visitor], staff_id: str
) -> None:
    me = signed_in(visit, front_door, staff_id, "js")
    for path in PAGES[staff_id]:
        response = me.page.goto(front_door.url + path)
        assert response is not None and response.status == 200, f"{path}: {response and response.status}"
        me.check()
    # And each letter waiting, as a reviewer sees it.
    me.open("/letters/held")
    links = me.page.locator("main table a[href^='/letters/']")
    for href in {links.nth(i).get_attribute("href") for i in range(min(links.count(), 3))}:
        me.open(str(href))
        me.check()
