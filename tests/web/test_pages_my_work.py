"""My work through a real uvicorn: a worker's own overdue and due-soon deadlines with their
working days, the reminders sent to them (acknowledged with one click), the letters held on
their cases, and the duties they must do by hand (recorded done from the page).

Today is Tuesday 3 November 2026, 10:00 (GMT); November 2026 has no bank holidays in England.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from config.settings import Settings
from config.wiring import Runtime, build_runtime
from migrations import upgrade
from services import access
from services.actors import SYSTEM
from tests.factories import (
    MovableClock,
    clocks_by_name,
    event,
    history_of,
    import_events,
    import_staff,
    referral,
    sweep,
)
from tests.web.conftest import LiveServer
from tests.web.test_login import NOW, PASSWORD, log_in, token_in, without_tokens
from workflow.reminders import ReminderAck, ReminderItem

POLICE = {"source": "6", "organisation": "Borough Police", "name": "Officer Example"}  # no email, no address


def allocated(ref: str, worker: str, when: str) -> dict[str, Any]:
    return event("worker.allocated", ref, when, worker=worker)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path / "var", password_hashing="fast")


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """Staff SM1 over TM1 over W1 and W2 (team front-door); W1, W2 and TM1 have logins."""
    upgrade(settings.database_url)
    rt = build_runtime(settings, MovableClock(NOW))
    import_staff(rt)
    for sid in ("W1", "W2", "TM1"):
        access.add_user(rt, SYSTEM, sid, PASSWORD)
    yield rt
    rt.close()


@pytest.fixture
def cases(runtime: Runtime) -> Runtime:
    """W1's cases and one of W2's:

    - OURS/1, referred Mon 26 Oct by the police (nobody to write to): its decision and the
      referrer's acknowledgement were due Tue 27 Oct, 5 working days ago;
    - C2, referred Fri 30 Oct, also by the police: due Mon 2 Nov, 1 working day ago;
    - C3, referred today: its decision is due tomorrow, 1 working day left; the referrer is a
      school with an email, and the case has domestic abuse: the letter is held for review;
    - W2's C9, referred Mon 26 Oct: 5 working days overdue, and none of W1's business.
    """
    report = import_events(
        runtime,
        referral("OURS/1", "2026-10-26", referrer=POLICE),
        allocated("OURS/1", "W1", "2026-10-26T11:00:00+00:00"),
        referral("C2", "2026-10-30", referrer=POLICE),
        allocated("C2", "W1", "2026-10-30T11:00:00+00:00"),
        referral("C3", "2026-11-03T09:00:00+00:00", flags=["domestic_abuse"]),
        allocated("C3", "W1", "2026-11-03T09:30:00+00:00"),
        referral("C9", "2026-10-26", referrer=POLICE),
        allocated("C9", "W2", "2026-10-26T11:00:00+00:00"),
        now=NOW.isoformat(),
    )
    assert report.ok, report.rejected
    return runtime


@contextmanager
def signed_in(live_server: LiveServer, staff_id: str) -> Iterator[httpx.Client]:
    with live_server.client() as http:
        assert log_in(http, staff_id).status_code == 303
        yield http


def section(page: httpx.Response, anchor: str) -> str:
    """The HTML of one section: from its heading to the next section's heading."""
    heading = '<h2 class="govuk-heading-m"'
    found = re.search(rf'{heading} id="{anchor}">(.*?)(?={heading}|</main>)', page.text, re.S)
    assert found, page.text
    return found.group(1)


def rows(markup: str) -> list[list[str]]:
    """Each table row's cells as text (the header row first)."""
    found = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", markup, re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        found.append([html.unescape(" ".join(re.sub(r"<[^>]+>", " ", c).split())) for c in cells])
    return found


def reminder_ids(page: httpx.Response) -> list[int]:
    return [int(i) for i in re.findall(r'action="/reminders/(\d+)/acknowledge"', page.text)]


def test_a_worker_sees_their_own_overdue_and_due_soon_deadlines_with_working_days(
    live_server: LiveServer, cases: Runtime
) -> None:
    with signed_in(live_server, "W1") as http:
        page = http.get("/my-work")
    assert page.status_code == 200
    assert page.text.count("<h1") == 1
    overdue = section(page, "overdue")
    assert overdue.startswith("Overdue (4)")
    assert rows(overdue)[1:] == [  # the most overdue first
        ["OURS/1", "Decision on the referral", "27 October 2026", "5 working days overdue"],
        ["OURS/1", "Referrer told the referral was received", "27 October 2026", "5 working days overdue"],
        ["C2", "Decision on the referral", "2 November 2026", "1 working day overdue"],
        ["C2", "Referrer told the referral was received", "2 November 2026", "1 working day overdue"],
    ]
    assert 'href="/cases/OURS%2F1"' in overdue  # each case links to its timeline
    soon = section(page, "soon")
    assert soon.startswith("Due in the next 5 working days (2)")
    assert rows(soon)[1:] == [
        ["C3", "Decision on the referral", "4 November 2026", "1 working day left"],
        ["C3", "Referrer told the referral was received", "4 November 2026", "1 working day left"],
    ]
    assert "C9" not in without_tokens(page.text)  # W2's case

    with signed_in(live_server, "W2") as http:
        theirs = http.get("/my-work")
    assert [r[0] for r in rows(section(theirs, "overdue"))[1:]] == ["C9", "C9"]
    assert "OURS/1" not in without_tokens(theirs.text) and "C3" not in without_tokens(theirs.text)


def test_each_section_pages_on_its_own(live_server: LiveServer, cases: Runtime) -> None:
    from web.pages import my_work

    old, my_work.SECTION_SIZE = my_work.SECTION_SIZE, 3
    try:
        with signed_in(live_server, "W1") as http:
            first = http.get("/my-work")
            assert 'href="/my-work?overdue_page=2#overdue"' in section(first, "overdue")
            second = http.get("/my-work?overdue_page=2")
    finally:
        my_work.SECTION_SIZE = old
    assert section(first, "overdue").startswith("Overdue (4)") and len(rows(section(first, "overdue"))) == 4
    assert rows(section(second, "overdue"))[1:] == [
        ["C2", "Referrer told the referral was received", "2 November 2026", "1 working day overdue"]
    ]
    assert len(rows(section(second, "soon"))) == 3  # the other sections stay on their first page


def test_the_letters_held_on_my_cases_are_listed_with_why(live_server: LiveServer, cases: Runtime) -> None:
    with signed_in(live_server, "W1") as http:
        page = http.get("/my-work")
    held = section(page, "letters")
    assert held.startswith("Letters held for review on my cases (1)")
    [_header, row] = rows(held)
    assert row[:3] == ["C3", "Referrer told the referral was received", "referrer"]
    assert "domestic abuse" in row[3].lower()
    assert re.search(r'href="/letters/\d+"', held)
    with signed_in(live_server, "W2") as http:
        assert section(http.get("/my-work"), "letters").startswith("Letters held for review on my cases (0)")


def test_acknowledging_a_reminder_from_the_page_records_it_and_it_leaves_the_list(
    live_server: LiveServer, cases: Runtime
) -> None:
    sweep(cases, NOW)  # plans today's reminders: a digest for W1, one for W2, and the managers'
    with signed_in(live_server, "W1") as http:
        page = http.get("/my-work")
        listed = reminder_ids(page)
        assert section(page, "reminders").startswith(f"Reminders to acknowledge ({len(listed)})")
        assert len(listed) == 6  # one a clock: four overdue, two due tomorrow
        first = listed[0]
        done = http.post(f"/reminders/{first}/acknowledge", data={"csrf_token": token_in(page)})
        assert (done.status_code, done.headers["location"]) == (303, "/my-work?done=reminder-acknowledged")
        after = http.get(done.headers["location"])
    assert "Reminder acknowledged" in after.text
    assert reminder_ids(after) == listed[1:]
    with cases.reading() as uow:
        [ack] = uow.session.scalars(select(ReminderAck)).all()
        item = uow.session.get(ReminderItem, first)
    assert item is not None
    assert (ack.item_id, ack.staff_id, ack.clock_id) == (first, "W1", item.clock_id)


def test_someone_elses_reminder_cannot_be_acknowledged(live_server: LiveServer, cases: Runtime) -> None:
    sweep(cases, NOW)
    with cases.reading() as uow:
        theirs = uow.session.scalars(select(ReminderItem.id).where(ReminderItem.recipient == "W2")).first()
    assert theirs is not None
    with signed_in(live_server, "W1") as http:
        token = token_in(http.get("/my-work"))
        refused = http.post(f"/reminders/{theirs}/acknowledge", data={"csrf_token": token})
        missing = http.post("/reminders/999999/acknowledge", data={"csrf_token": token})
    assert refused.status_code == 403
    assert f"Reminder {theirs} was sent to W2, not W1." in refused.text
    assert missing.status_code == 404 and "No reminder 999999." in missing.text
    with cases.reading() as uow:
        assert uow.session.scalars(select(ReminderAck)).all() == []


def test_recording_a_duty_done_stops_its_clock_and_it_leaves_the_list(
    live_server: LiveServer, cases: Runtime
) -> None:
    duty = "referrer_acknowledgement"
    with signed_in(live_server, "W1") as http:
        page = http.get("/my-work")
        duties = section(page, "duties")
        assert duties.startswith("Duties to do by hand (2)")  # the police on OURS/1 and C2 are phoned
        assert duties.count("Tell them by phone") == 2
        action = f"/cases/OURS%2F1/duties/{duty}/done"
        assert f'action="{action}"' in duties
        token = token_in(page)

        # Without saying how: the page again, 422, with the error at that duty's radios.
        unsaid = http.post(action, data={"csrf_token": token})
        assert unsaid.status_code == 422
        assert "There is a problem" in unsaid.text and 'href="#how-1"' in unsaid.text
        assert "Select how you did it (case OURS/1, referrer acknowledgement)." in unsaid.text
        assert clocks_by_name(cases, "OURS/1", "2026-11-03")[duty]["status"] == "breached"

        done = http.post(action, data={"csrf_token": token, "how": "phone"})
        assert (done.status_code, done.headers["location"]) == (303, "/my-work?done=duty-done")
        after = http.get(done.headers["location"])
        again = http.post(action, data={"csrf_token": token, "how": "phone"})
    assert "Duty recorded as done" in after.text
    assert clocks_by_name(cases, "OURS/1", "2026-11-03")[duty]["status"] == "met_late"
    [recorded] = history_of(cases, "OURS/1", "duty.done")
    assert recorded.detail == {"duty": duty, "how": "phone", "by": "W1"}
    duties = section(after, "duties")
    assert duties.startswith("Duties to do by hand (1)") and "OURS%2F1" not in duties
    assert again.headers["location"] == "/my-work?done=duty-already-done"


def test_a_duty_on_a_case_i_may_not_see_is_not_found(live_server: LiveServer, cases: Runtime) -> None:
    with signed_in(live_server, "W1") as http:
        token = token_in(http.get("/my-work"))
        theirs = http.post(
            "/cases/C9/duties/referrer_acknowledgement/done", data={"csrf_token": token, "how": "phone"}
        )
        nowhere = http.post(
            "/cases/NOPE/duties/referrer_acknowledgement/done", data={"csrf_token": token, "how": "phone"}
        )
    assert theirs.status_code == nowhere.status_code == 404
    assert "No case 'C9'." in html.unescape(theirs.text)  # the words of a case that does not exist
    assert "No case 'NOPE'." in html.unescape(nowhere.text)
    assert clocks_by_name(cases, "C9", "2026-11-03")["referrer_acknowledgement"]["status"] == "breached"


def test_my_work_needs_signing_in_and_a_login_that_reads_cases(
    live_server: LiveServer, cases: Runtime
) -> None:
    with live_server.client() as http:
        gone = http.get("/my-work")
    assert (gone.status_code, gone.headers["location"]) == (303, "/login?next=%2Fmy-work")
    access.add_user(cases, SYSTEM, "SM1", PASSWORD, admin=True, reads_cases=False)
    with signed_in(live_server, "SM1") as http:
        assert http.get("/my-work").status_code == 403
