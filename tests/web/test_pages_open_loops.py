"""The open loops page through a real uvicorn, on SQLite and PostgreSQL: referrers not yet told,
each with why (queued, held, failed, by hand, nobody to tell) and the wait in working days,
oldest first; a sent letter is not a loop; a worker sees only their own cases; paging.

Letters really go through GOV.UK Notify's client to the local Notify, and one really comes back
as a permanent failure. "Now" is Tuesday 3 November 2026; the fortnight before it has no bank
holidays.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.wiring import Runtime
from services import access
from services.actors import SYSTEM
from tests.factories import (
    MovableClock,
    event,
    import_events,
    import_staff,
    letter_of,
    letter_runtime,
    no_contact_referrer,
    referral,
    sweep,
    sweep_and_deliver,
)
from tests.support.fake_notify import FakeNotify
from tests.web.conftest import LiveServer
from tests.web.test_login import PASSWORD, log_in

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
TEMPLATE = "5a2f1c2e-7d7e-4c1b-9f38-0c6f3b7f4d11"
POLICE = {"source": "6", "organisation": "Example Police"}  # a professional with no email or address


@pytest.fixture
def notify() -> Iterator[FakeNotify]:
    with FakeNotify(email_templates=(TEMPLATE,)) as fake:
        yield fake


@pytest.fixture
def runtime(database_url: str, tmp_path: Path, notify: FakeNotify) -> Iterator[Runtime]:
    """Letters through Notify; staff SM1 > TM1 > W1, W2 on team front-door, each with a login."""
    rt = letter_runtime(
        database_url,
        tmp_path / "var",
        MovableClock(NOW),
        notify_api_key=notify.api_key,
        notify_base_url=notify.base_url,
        notify_email_template_id=TEMPLATE,
        password_hashing="fast",
    )
    import_staff(rt)
    for sid in ("SM1", "TM1", "W1", "W2"):
        access.add_user(rt, SYSTEM, sid, PASSWORD)
    yield rt
    rt.close()


def take(rt: Runtime, *events: dict[str, Any]) -> None:
    report = import_events(rt, *events, now=rt.clock().isoformat())
    assert report.ok, report.rejected


def referred(ref: str, day: str, worker: str | None = None, **fields: Any) -> list[dict[str, Any]]:
    events = [referral(ref, f"{day}T08:00:00+00:00", id=f"r-{ref}", **fields)]
    if worker:
        events.append(event("worker.allocated", ref, f"{day}T08:30:00+00:00", worker=worker))
    return events


def rows_of(page: httpx.Response) -> list[str]:
    """The table's body rows as plain text, in order."""
    assert page.status_code == 200, page.text
    body = page.text.split('<tbody class="govuk-table__body">', 1)
    if len(body) == 1:
        return []
    found = re.findall(r'<tr class="govuk-table__row">(.*?)</tr>', body[1].split("</tbody>", 1)[0], re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", r)).split()) for r in found]


def summary_of(page: httpx.Response) -> str:
    found = re.search(r'<p class="govuk-body-l" id="summary">(.*?)</p>', page.text, re.S)
    assert found, page.text
    return " ".join(found.group(1).split())


def build_loops(rt: Runtime, notify: FakeNotify) -> None:
    """One case for each reason, and one whose letter went."""
    take(rt, *referred("SENT1", "2026-10-26", "W1"), *referred("FAIL1", "2026-10-28", "W2"))
    assert set(sweep_and_deliver(rt, NOW).values()) == {"sent"}
    failing = letter_of(rt, "FAIL1", "referrer_acknowledgement", "referrer")
    [sent] = [n for n in notify.of_type("email") if n.reference == failing.idempotency_key]
    notify.set_status(sent.id, "permanent-failure")
    later = NOW + timedelta(hours=1)
    rt.clock.now = later  # type: ignore[attr-defined]
    assert sweep(rt, later).statuses["failed"] == 1
    assert letter_of(rt, "FAIL1", "referrer_acknowledgement", "referrer").status == "failed"
    take(
        rt,
        *referred("Q/1", "2026-10-27", "W1"),  # a reference with a slash: its link is quoted
        *referred("HELD1", "2026-10-29", "W2", flags=["domestic_abuse"]),
        *referred("NOBODY1", "2026-10-30", referrer=no_contact_referrer("1A")),
        *referred("PHONE1", "2026-11-02", referrer=POLICE),
    )


def test_the_team_manager_sees_each_loop_with_its_reason_and_wait_oldest_first(
    live_server: LiveServer, notify: FakeNotify
) -> None:
    rt = live_server.runtime
    build_loops(rt, notify)
    held = letter_of(rt, "HELD1", "referrer_acknowledgement", "referrer")
    with live_server.client() as http:
        log_in(http, "TM1")
        page = http.get("/open-loops")
    rows = rows_of(page)
    assert [r.split()[0] for r in rows] == ["Q/1", "FAIL1", "HELD1", "NOBODY1", "PHONE1"]
    queued, failed, held_row, nobody, phone = rows
    assert "Referrer (Test Primary)" in queued and "Referrer told the referral was received" in queued
    assert "27 October 2026 5 working days" in queued and "Overdue" in queued
    assert "Queued: waiting to be sent" in queued
    assert "28 October 2026 4 working days" in failed
    assert "Failed: the provider reported: permanent-failure" in failed
    assert "29 October 2026 3 working days" in held_row
    assert "Held for review: domestic abuse: a worker must review every letter" in held_row
    assert "30 October 2026 2 working days" in nobody
    assert "Nobody to tell: referrer: no contact details (anonymous or not given)" in nobody
    assert "Referrer (Example Police)" in phone and "2 November 2026 1 working day " in phone + " "
    assert "To do by hand: no email or address: tell them by phone" in phone
    assert not any("SENT1" in r for r in rows)  # its letter went: the loop is closed
    assert f'href="/letters/{held.id}"' in page.text and 'href="/deliveries"' in page.text
    assert 'href="/cases/Q/1"' in page.text and 'href="/cases/HELD1"' in page.text
    assert summary_of(page) == (
        "Waiting: 4 referrers, 0 families. The longest wait is 5 working days, since 27 October 2026. "
        "1 duty cannot be met: nobody can be told."
    )
    assert "1 working day" in phone and "Overdue" not in phone  # due today: not late yet


def test_filters_narrow_by_reason_and_audience(live_server: LiveServer, notify: FakeNotify) -> None:
    rt = live_server.runtime
    build_loops(rt, notify)
    with live_server.client() as http:
        log_in(http, "TM1")
        held = rows_of(http.get("/open-loops", params={"why": "held"}))
        families = http.get("/open-loops", params={"audience": "family"})
        nonsense = http.get("/open-loops", params={"why": "forgotten"})
        team = http.get("/open-loops", params={"team": "front-door"})
    assert [r.split()[0] for r in held] == ["HELD1"]
    assert rows_of(families) == [] and "Nobody is waiting to be told." in families.text
    assert nonsense.status_code == 422
    assert "Why: &#39;forgotten&#39; is not one of queued, held" in nonsense.text
    assert team.status_code == 422 and "only a service manager chooses a team" in team.text
    with live_server.client() as http:
        log_in(http, "SM1")
        mine = http.get("/open-loops", params={"team": "front-door"})
        other = http.get("/open-loops", params={"team": "elsewhere"})
    assert len(rows_of(mine)) == 5 and '<select class="govuk-select" id="team" name="team"' in mine.text
    assert other.status_code == 422 and "not one of your teams (front-door)" in other.text


def test_a_worker_sees_only_the_loops_of_their_own_cases(live_server: LiveServer, notify: FakeNotify) -> None:
    build_loops(live_server.runtime, notify)
    with live_server.client() as http:
        log_in(http, "W1")
        w1 = rows_of(http.get("/open-loops"))
    with live_server.client() as http:
        log_in(http, "W2")
        w2 = rows_of(http.get("/open-loops"))
    assert [r.split()[0] for r in w1] == ["Q/1"]
    assert [r.split()[0] for r in w2] == ["FAIL1", "HELD1"]


def test_recording_the_failed_letter_done_closes_its_loop(
    live_server: LiveServer, notify: FakeNotify
) -> None:
    from services.casework import record_duty_done
    from services.people import identify

    rt = live_server.runtime
    build_loops(rt, notify)
    record_duty_done(rt, identify(rt, "W2"), "FAIL1", "failed_letter", rt.clock(), how="phone")
    with live_server.client() as http:
        log_in(http, "TM1")
        rows = rows_of(http.get("/open-loops"))
    assert [r.split()[0] for r in rows] == ["Q/1", "HELD1", "NOBODY1", "PHONE1"]


def test_a_long_list_pages_in_the_database(live_server: LiveServer) -> None:
    rt = live_server.runtime
    many = [
        referral(f"MANY{n:03d}", f"2026-10-{12 + n // 20:02d}T{8 + n % 10:02d}:{n % 20:02d}:00+00:00")
        for n in range(57)
    ]
    take(rt, *many)
    with live_server.client() as http:
        log_in(http, "TM1")
        first = http.get("/open-loops")
        second = http.get("/open-loops", params={"page": "2"})
    one, two = rows_of(first), rows_of(second)
    assert (len(one), len(two)) == (50, 7)
    assert "Showing 1 to 50 of 57." in first.text and "Showing 51 to 57 of 57." in second.text
    refs = [r.split()[0] for r in one + two]
    assert sorted(refs) == sorted(e["case"] for e in many)  # every loop once, on one page or the other
    assert refs == [e["case"] for e in sorted(many, key=lambda e: (e["at"], e["case"]))]
    assert 'href="/open-loops?page=2"' in first.text and 'rel="next"' in first.text
    assert "Waiting: 57 referrers" in summary_of(second)
