"""A case's timeline through a real uvicorn, on SQLite and PostgreSQL: a case walked from
referral through its decision, letters sent, an approval and a rejection, closure and a
re-referral within 12 months, shown in order with the re-referral marked; a re-referral after
more than 12 months is not marked; someone who may not see the case gets the words of a case
that does not exist; long timelines page.

Letters go through the default channels (email to files, post to the print folder).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.wiring import Runtime
from services import access
from services.actors import SYSTEM
from tests.factories import (
    MovableClock,
    approve,
    event,
    import_events,
    import_staff,
    letter_of,
    letter_runtime,
    person,
    referral,
    reject,
    sweep_and_deliver,
)
from tests.web.conftest import LiveServer
from tests.web.test_login import PASSWORD, log_in

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # Tuesday
REF = "T/1"  # a reference with a slash


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = letter_runtime(database_url, tmp_path / "var", MovableClock(NOW), password_hashing="fast")
    import_staff(rt)  # SM1 over TM1 over W1 and W2, team front-door
    for sid in ("TM1", "W1", "W2"):
        access.add_user(rt, SYSTEM, sid, PASSWORD)
    yield rt
    rt.close()


def take(rt: Runtime, *events: dict[str, Any], now: str) -> None:
    report = import_events(rt, *events, now=now)
    assert report.ok, report.rejected


def at(day: str, hhmm: str) -> str:
    return f"2026-{day}T{hhmm}:00+00:00"


def instant(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(at(day, hhmm))


def walk_a_case(rt: Runtime) -> dict[str, int]:
    """Referral, decision, letters sent, a risk, an approval and a rejection, closure, and a
    re-referral 18 days after the closure. Returns the ids of the letters reviewed."""
    family = [person("P1", name="Pat Parent")]
    take(
        rt,
        referral(REF, at("10-01", "08:00"), id="t-r1", household=family),
        event("worker.allocated", REF, at("10-01", "08:05"), worker="W1"),
        event("decision.made", REF, at("10-01", "11:00"), outcome="nfa"),
        now=at("10-01", "11:30"),
    )
    sweep_and_deliver(rt, instant("10-01", "12:00"))
    take(
        rt,
        event("flags.updated", REF, at("10-02", "09:00"), flags=["domestic_abuse"]),
        event("case.closed", REF, at("10-02", "10:00"), reason="NFA"),
        now=at("10-02", "10:05"),
    )
    closing = letter_of(rt, REF, "family_closing_letter", "P1").id
    notice = letter_of(rt, REF, "referrer_closure_notice", "referrer").id
    approve(rt, closing, "TM1", "spoke to the family: post is safe", instant("10-02", "11:00"))
    reject(rt, notice, "TM1", "the referrer was told by phone", instant("10-02", "11:10"))
    sweep_and_deliver(rt, instant("10-02", "12:00"))
    take(rt, referral(REF, at("10-20", "08:00"), id="t-r2"), now=at("10-20", "08:30"))
    rt.clock.now = NOW  # type: ignore[attr-defined]
    return {"closing": closing, "notice": notice}


def text_of(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text
    main = page.text.split('<main class="govuk-main-wrapper" id="main-content">', 1)[1].split("</main>")[0]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", main)).split())


def entries_of(page: httpx.Response) -> list[str]:
    entry = r'<li class="app-timeline__entry"[^>]*>(.*?)</li>\s*(?=<li class="app-timeline__entry"|</ol>)'
    found = re.findall(entry, page.text, re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", e)).split()) for e in found]


def in_order(entries: list[str], *wanted: str) -> list[int]:
    """The index of the first entry holding each of ``wanted``, each after the one before."""
    found, start = [], 0
    for words in wanted:
        index = next((i for i in range(start, len(entries)) if words in entries[i]), None)
        assert index is not None, f"{words!r} not found after entry {start}: {entries[start:]}"
        found.append(index)
        start = index + 1
    return found


def test_a_case_walked_through_shows_everything_in_order_with_the_re_referral_marked(
    live_server: LiveServer,
) -> None:
    rt = live_server.runtime
    reviewed = walk_a_case(rt)
    with live_server.client() as http:
        log_in(http, "TM1")  # the new referral is not allocated yet: its team manager's to see
        page = http.get("/cases/T/1")
        newest = http.get("/cases/T/1", params={"order": "newest"})
    text = text_of(page)
    assert "Case T/1" in text and "State referral: waiting for a decision" in text
    assert "Team front-door" in text and "Worker Not allocated" in text and "Open" in text
    assert "Episode 2, referred 20 October 2026 by school" in text
    assert "Flags None" in text  # the new episode starts without the old flags
    entries = entries_of(page)
    in_order(
        entries,
        "Referral received New referral",
        "Clock started: Decision on the referral",
        "Worker allocated",
        "Decision made",
        "State changed to no further action at referral",
        "Clock stopped: Decision on the referral Met on time",
        "Letter owed: Family told the decision",
        "Sent: Family told the decision (no further action or early help) to the family",
        "Flags updated",
        "Case closed",
        "Letter owed: Closing letter sent to the family",
        "Held for review: Closing letter sent to the family",
        "Approved: Closing letter sent to the family",
        "Rejected: Professional referrer told the case closed to the referrer",
        "Sent: Closing letter sent to the family",
        "Referral received New referral (episode 2) Re-referral within 12 months",
    )
    assert sum("Re-referral within 12 months" in e for e in entries) == 1
    [approved] = [e for e in entries if e.startswith("Approved:")]
    assert "By: TM1" in approved and "Why: spoke to the family: post is safe" in approved
    [rejected] = [e for e in entries if e.startswith("Rejected:")]
    assert "By: TM1" in rejected and "Why: the referrer was told by phone" in rejected
    [first] = [e for e in entries if e.startswith("Referral received")][:1]
    assert "1 October 2026, 09:00" in first  # local time: British Summer Time
    assert f'href="/letters/{reviewed["closing"]}"' in page.text
    assert "Took 0 working days" in " ".join(entries)  # the decision made the day it came
    assert "Show newest first" in page.text and 'href="/cases/T/1?order=newest"' in page.text
    assert entries_of(newest) == list(reversed(entries))  # the whole timeline fits on one page
    assert 'href="/cases/T/1">Show oldest first' in newest.text


def test_a_re_referral_after_more_than_12_months_is_not_marked(live_server: LiveServer) -> None:
    rt = live_server.runtime
    take(
        rt,
        referral("OLD1", "2025-01-06T09:00:00+00:00"),
        event("decision.made", "OLD1", "2025-01-06T11:00:00+00:00", outcome="nfa"),
        event("case.closed", "OLD1", "2025-01-10T10:00:00+00:00", reason="NFA"),
        referral("OLD1", "2026-01-12T09:00:00+00:00"),  # 12 months and 6 days after the last referral
        now="2026-01-12T10:00:00+00:00",
    )
    with live_server.client() as http:
        log_in(http, "TM1")
        page = http.get("/cases/OLD1")
    entries = entries_of(page)
    assert any("New referral (episode 2)" in e for e in entries)
    assert not any("Re-referral within 12 months" in e for e in entries)
    assert "Re-referral within 12 months" not in page.text


def test_a_case_someone_may_not_see_is_not_found_in_the_same_words(live_server: LiveServer) -> None:
    rt = live_server.runtime
    walk_a_case(rt)
    take(rt, event("worker.allocated", REF, at("10-20", "09:00"), worker="W1"), now=at("10-20", "09:30"))
    with live_server.client() as http:
        log_in(http, "W2")  # on the team, but not the case's worker
        hidden = http.get("/cases/T/1")
        missing = http.get("/cases/NO/SUCH")
    assert hidden.status_code == missing.status_code == 404
    assert "No case &#39;T/1&#39;." in hidden.text and "No case &#39;NO/SUCH&#39;." in missing.text
    assert hidden.text.replace("T/1", "X") == missing.text.replace("NO/SUCH", "X")
    with live_server.client() as http:
        assert http.get("/cases/T/1").status_code == 303  # nobody signed in: to the sign-in page


def test_a_long_timeline_pages(live_server: LiveServer) -> None:
    rt = live_server.runtime
    moves = [
        event(
            "worker.allocated",
            "LONG1",
            f"2026-10-{5 + n // 10:02d}T{8 + n % 10:02d}:00:00+00:00",
            worker="W1" if n % 2 else "W2",
        )
        for n in range(60)
    ]
    take(rt, referral("LONG1", "2026-10-05T07:00:00+00:00"), *moves, now="2026-10-12T10:00:00+00:00")
    with live_server.client() as http:
        log_in(http, "TM1")
        first, second = http.get("/cases/LONG1"), http.get("/cases/LONG1", params={"page": "2"})
    one, two = entries_of(first), entries_of(second)
    assert len(one) == 50 and 0 < len(two) < 50
    total = re.search(r"Showing 1 to 50 of (\d+)\.", first.text)
    assert total is not None and len(one) + len(two) == int(total.group(1))
    assert one[0].startswith("Referral received") and sum("Worker allocated" in e for e in one + two) == 60
    assert 'href="/cases/LONG1?page=2"' in first.text
