"""The team queue through a real uvicorn: a manager's overdue and at-risk clocks (statutory apart
from letter duties), filters, sorting and paging done in SQL, the cases nobody has, each
worker's caseload, and reallocating cases to a worker of the team, all or nothing.

Cases are built from events through the real intake; time is the runtime's clock, set by the
tests, on Tuesday 3 November 2026 (GMT, so local dates are UTC dates).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from config.settings import Settings
from config.wiring import Runtime, build_runtime
from migrations import upgrade
from services import access, queries, team_queue
from services.actors import SYSTEM, Actor
from services.people import identify, leave
from tests.factories import (
    MovableClock,
    event,
    front_door_staff,
    history_of,
    import_events,
    import_staff,
    referral,
    staff_row,
)
from tests.web.conftest import LiveServer
from tests.web.test_login import NOW, PASSWORD, clock, log_in, token_in, without_tokens
from web.pages import team as team_page
from workflow.model import Case, ReceivedEvent

TODAY = date(2026, 11, 3)


@dataclass(frozen=True)
class Built:
    """What the tests' cases are due on, from the calendar (the page must agree)."""

    assessment_due: date


def at(day: str, time: str = "10:00") -> str:
    return f"{day}T{time}:00+00:00"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path / "var", password_hashing="fast")


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """Front door (SM1 over TM1 over W1, W2 and W5) and team east (TM2 over W3, also under SM1),
    each manager and W1 with a login."""
    upgrade(settings.database_url)
    rt = build_runtime(settings, MovableClock(NOW))
    import_staff(
        rt,
        *front_door_staff(),
        staff_row("W5", manager="TM1"),
        staff_row("TM2", "team_manager", team="east", manager="SM1"),
        staff_row("W3", team="east", manager="TM2"),
    )
    for sid in ("W1", "TM1", "TM2", "SM1"):
        access.add_user(rt, SYSTEM, sid, PASSWORD)
    yield rt
    rt.close()


@pytest.fixture
def built(runtime: Runtime) -> Iterator[Built]:
    """The cases (W5 leaves on 30 October, after FD-5 was allocated to them):

    - FD-1 referred Tue 27 Oct, W1: decision due 28 Oct, 4 working days overdue;
    - FD-2 referred Mon 2 Nov, W2: decision due today (at risk);
    - FD-3 referred today, nobody: decision due tomorrow (at risk, 1 working day left);
    - FD-4 referred 20 Aug, W1, decided "assessment": the assessment is overdue;
    - FD-5 referred Thu 29 Oct, W5 who has left: decision due 30 Oct, 2 working days overdue;
    - FD-6 referred 2 Nov, nobody, closed the same day: not open, so nobody's to allocate;
    - EA-1 referred 27 Oct, team east, W3."""
    import_events(
        runtime,
        referral("FD-1", at("2026-10-27")),
        event("worker.allocated", "FD-1", at("2026-10-27", "11:00"), worker="W1"),
        referral("FD-2", at("2026-11-02")),
        event("worker.allocated", "FD-2", at("2026-11-02", "11:00"), worker="W2"),
        referral("FD-3", at("2026-11-03", "09:00")),
        referral("FD-4", at("2026-08-20")),
        event("worker.allocated", "FD-4", at("2026-08-20", "11:00"), worker="W1"),
        event("decision.made", "FD-4", at("2026-08-21"), outcome="assessment"),
        referral("FD-5", at("2026-10-29")),
        event("worker.allocated", "FD-5", at("2026-10-29", "11:00"), worker="W5"),
        referral("FD-6", at("2026-11-02")),
        event("decision.made", "FD-6", at("2026-11-02", "11:00"), outcome="nfa"),
        event("case.closed", "FD-6", at("2026-11-02", "12:00"), reason="NFA"),
        referral("EA-1", at("2026-10-27"), team="east"),
        event("worker.allocated", "EA-1", at("2026-10-27", "11:00"), worker="W3"),
        now=NOW.isoformat(),
    )
    leave(runtime, SYSTEM, "W5", date(2026, 10, 30), NOW)
    yield Built(assessment_due=runtime.book.calendar.add_working_days(date(2026, 8, 20), 45))


class _Tables(HTMLParser):
    """Each table's body rows (by the table's id) as lists of cell texts, and which of its boxes
    are ticked."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.checked: set[str] = set()
        self._table: str | None = None
        self._in_body = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self._table = found.get("id") or "?"
            self.tables[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "input" and found.get("name") == "case" and "checked" in found:
            self.checked.add(str(found.get("value")))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(page: httpx.Response) -> _Tables:
    parser = _Tables()
    parser.feed(page.text)
    return parser


def rows(page: httpx.Response, table: str) -> list[list[str]]:
    return tables(page).tables.get(f"{table}-table", [])


def cases_in(page: httpx.Response, table: str) -> list[str]:
    return [row[1] for row in rows(page, table)]


@contextmanager
def signed_in_client(server: LiveServer, staff_id: str) -> Iterator[httpx.Client]:
    with server.client() as http:
        done = log_in(http, staff_id)
        assert done.status_code == 303, done.text
        yield http


def worker_of(rt: Runtime, ref: str) -> str | None:
    with rt.reading() as uow:
        return uow.session.scalar(select(Case.worker).where(Case.ref == ref))


def allocations_of(rt: Runtime, ref: str) -> list[tuple[str | None, str]]:
    """The worker.allocated events received for the case: (event id, source)."""
    with rt.reading() as uow:
        query = select(ReceivedEvent.event_id, ReceivedEvent.source).where(
            ReceivedEvent.case_ref == ref, ReceivedEvent.type == "worker.allocated"
        )
        return [(eid, source) for eid, source in uow.session.execute(query.order_by(ReceivedEvent.id))]


def test_a_team_manager_sees_overdue_and_at_risk_clocks_with_working_days_from_the_calendar(
    live_server: LiveServer, built: Built
) -> None:
    rt = live_server.runtime
    calendar = rt.book.calendar
    with signed_in_client(live_server, "TM1") as http:
        page = http.get("/team")
        assert page.status_code == 200, page.text
        assert "within the next 2 working days" in page.text  # the threshold, said on the page
        statutory = rows(page, "statutory")
        # Most overdue first: case, clock, worker, due, working days, status.
        assert [row[1:7] for row in statutory] == [
            [
                "FD-4",
                "Assessment authorised (counted from the referral)",
                "Staff W1 W1",
                team_page.long_date(built.assessment_due),
                f"{calendar.working_days_between(built.assessment_due, TODAY)} working days overdue",
                "Overdue",
            ],
            [
                "FD-1",
                "Decision on the referral",
                "Staff W1 W1",
                "28 October 2026",
                "4 working days overdue",
                "Overdue",
            ],
            [
                "FD-5",
                "Decision on the referral",
                "Unallocated: W5 left on 2026-10-30.",
                "30 October 2026",
                "2 working days overdue",
                "Overdue",
            ],
            ["FD-2", "Decision on the referral", "Staff W2 W2", "3 November 2026", "Due today", "At risk"],
            [
                "FD-3",
                "Decision on the referral",
                "Unallocated.",
                "4 November 2026",
                "1 working day left",
                "At risk",
            ],
        ]
        assert calendar.working_days_between(date(2026, 10, 28), TODAY) == 4  # the calendar agrees
        # Each row's box is labelled with the case and the clock; the case links to its timeline.
        assert statutory[1][0] == "Select case FD-1: Decision on the referral"
        assert 'href="/cases/FD-1"' in page.text
        assert statutory[1][7] == "Not recorded yet."  # why it is late (messaging.lateness)

        # The letter duties are a table of their own; no statutory clock is in it, nor a duty
        # in the statutory table.
        duties = rows(page, "duties")
        assert duties and {row[2] for row in duties} >= {"Referrer told the referral was received"}
        assert not {row[2] for row in duties} & {row[2] for row in statutory}
        acknowledgement = next(r for r in duties if r[1] == "FD-1" and r[2].startswith("Referrer told"))
        assert acknowledgement[5:7] == ["4 working days overdue", "Overdue"]

    # A working day later, every count has moved on by one (Wednesday 4 November; signed in
    # again, as the session has idled out overnight).
    clock(rt).now = NOW + timedelta(days=1)
    with signed_in_client(live_server, "TM1") as http:
        later = rows(http.get("/team"), "statutory")
        assert [(r[1], r[5]) for r in later if r[1] in ("FD-1", "FD-2", "FD-3")] == [
            ("FD-1", "5 working days overdue"),
            ("FD-2", "1 working day overdue"),
            ("FD-3", "Due today"),
        ]


def test_filters_narrow_the_rows_and_sorting_changes_their_order(
    live_server: LiveServer, built: Built
) -> None:
    with signed_in_client(live_server, "TM1") as http:

        def statutory(**query: str) -> list[str]:
            page = http.get("/team", params=query)
            assert page.status_code == 200, page.text
            return cases_in(page, "statutory")

        assert statutory(worker="W1") == ["FD-4", "FD-1"]
        assert statutory(worker="unallocated") == ["FD-5", "FD-3"]  # nobody, and a leaver
        assert statutory(clock="assessment") == ["FD-4"]
        assert statutory(status="overdue") == ["FD-4", "FD-1", "FD-5"]
        assert statutory(status="at_risk") == ["FD-2", "FD-3"]
        assert statutory(status="at_risk", worker="W2") == ["FD-2"]
        assert statutory(sort="case") == ["FD-1", "FD-2", "FD-3", "FD-4", "FD-5"]
        assert statutory(sort="latest_due") == ["FD-3", "FD-2", "FD-5", "FD-1", "FD-4"]
        assert statutory(sort="worker") == ["FD-5", "FD-3", "FD-4", "FD-1", "FD-2"]  # nobody's first
        # A clock filter that is a duty empties the statutory table and fills the other.
        page = http.get("/team", params={"clock": "referrer_acknowledgement"})
        assert cases_in(page, "statutory") == []
        assert set(cases_in(page, "duties")) == {"FD-1", "FD-2", "FD-3", "FD-4", "FD-5", "FD-6"}
        # The selects keep what was chosen.
        assert '<option value="W1" selected>' in http.get("/team", params={"worker": "W1"}).text

        for wrong, words in (
            ({"worker": "W3"}, "is not a present member of your teams"),
            ({"team": "east"}, "is not one of your teams"),
            ({"status": "late"}, "&#39;late&#39; is not one of overdue, at_risk, all"),
            ({"clock": "nothing"}, "is not a clock of the policy"),
        ):
            refused = http.get("/team", params=wrong)
            assert refused.status_code == 422, wrong
            assert words in refused.text


def test_each_table_pages_in_the_database_and_counts_every_row(
    live_server: LiveServer, built: Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(team_page, "PAGE_SIZE", 2)
    with signed_in_client(live_server, "TM1") as http:
        first = http.get("/team")
        assert cases_in(first, "statutory") == ["FD-4", "FD-1"]
        assert "Showing 1 to 2 of 5." in first.text
        assert 'href="/team?page=2#statutory"' in first.text
        second = http.get("/team", params={"page": "2", "status": "all"})
        assert cases_in(second, "statutory") == ["FD-5", "FD-2"]
        assert "Showing 3 to 4 of 5." in second.text
        assert cases_in(http.get("/team", params={"page": "3"}), "statutory") == ["FD-3"]
        # Paging one table leaves the others on their first page.
        assert cases_in(second, "unallocated") == cases_in(first, "unallocated")
    # The service itself: LIMIT and OFFSET with the count of all that match.
    actor = _actor(live_server.runtime, "TM1")
    statutory, everything = team_queue.Table.STATUTORY, team_queue.QueueFilter()
    page = team_queue.queue(live_server.runtime, actor, statutory, everything, limit=2, offset=4)
    assert ([r.case for r in page.items], page.total) == (["FD-3"], 5)


def _actor(rt: Runtime, staff_id: str) -> Actor:
    return identify(rt, staff_id)


def test_a_manager_sees_only_their_teams_and_a_social_worker_has_no_team_queue(
    live_server: LiveServer, built: Built
) -> None:
    with signed_in_client(live_server, "TM1") as http:
        page = http.get("/team")
        assert "EA-1" not in without_tokens(page.text)
    with signed_in_client(live_server, "TM2") as http:
        page = http.get("/team")
        assert cases_in(page, "statutory") == ["EA-1"]
        assert "FD-" not in without_tokens(page.text)
    with signed_in_client(live_server, "SM1") as http:
        both = http.get("/team")
        assert set(cases_in(both, "statutory")) == {"EA-1", "FD-1", "FD-2", "FD-3", "FD-4", "FD-5"}
        east = http.get("/team", params={"team": "east"})
        assert cases_in(east, "statutory") == ["EA-1"]
        assert [row[0] for row in rows(east, "caseload")] == ["Staff TM2 TM2", "Staff W3 W3"]
    with signed_in_client(live_server, "W1") as http:
        refused = http.get("/team")
        assert refused.status_code == 403
        assert "The team queue is for team managers and service managers" in refused.text
        assert "FD-1" not in refused.text
        posted = http.post(
            "/team/reallocate",
            data={
                "csrf_token": token_in(http.get("/")),
                "case": "FD-3",
                "worker": "W1",
                "as_of": NOW.isoformat(),
            },
        )
        assert posted.status_code == 403
    assert worker_of(live_server.runtime, "FD-3") is None


def test_unallocated_cases_and_caseloads_are_counted_right(live_server: LiveServer, built: Built) -> None:
    rt = live_server.runtime
    with signed_in_client(live_server, "TM1") as http:
        page = http.get("/team")
    # Oldest referral first; the closed case is not waiting for anyone.
    assert [row[1:] for row in rows(page, "unallocated")] == [
        ["FD-5", "29 October 2026", "Referral", "W5 left on 2026-10-30."],
        ["FD-3", "3 November 2026", "Referral", "No worker allocated."],
    ]
    # Counted against the existing overdue queue (another query), worker by worker.
    overdue = queries.overdue(rt, SYSTEM, team="front-door", now=NOW)
    expected = {w: sum(1 for r in overdue if r["worker"] == w) for w in ("W1", "W2")}
    assert expected["W1"] >= 3 and expected["W2"] == 0
    loads = {row[0]: row[2:] for row in rows(page, "caseload")}
    assert loads == {
        "Staff SM1 SM1": ["0", "0"],
        "Staff TM1 TM1": ["0", "0"],
        "Staff W1 W1": ["2", str(expected["W1"])],
        "Staff W2 W2": ["1", "0"],
    }  # W5 has left: no caseload of theirs is shown


def _reallocate(
    http: httpx.Client,
    cases: list[str],
    worker: str,
    as_of: str | None = None,
    path: str = "/team/reallocate",
) -> httpx.Response:
    page = http.get("/team")
    form = {"csrf_token": token_in(page), "case": cases, "worker": worker, "as_of": as_of or _as_of(page)}
    return http.post(path, data=form)


def _as_of(page: httpx.Response) -> str:
    marker = 'name="as_of" value="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


def test_bulk_reallocation_moves_the_cases_and_says_so(live_server: LiveServer, built: Built) -> None:
    rt = live_server.runtime
    with signed_in_client(live_server, "TM1") as http:
        done = _reallocate(http, ["FD-3", "FD-5", "FD-1"], "W2")
        assert done.status_code == 303, done.text
        after = http.get(done.headers["location"])
        assert "3 cases reallocated to Staff W2." in after.text
        assert rows(after, "unallocated") == []
        loads = {row[0]: row[2:] for row in rows(after, "caseload")}
        assert loads["Staff W2 W2"][0] == "4" and loads["Staff W1 W1"][0] == "1"
        with_w2 = cases_in(http.get("/team", params={"worker": "W2"}), "statutory")
        assert with_w2 == ["FD-1", "FD-5", "FD-2", "FD-3"]
        # A notice's words cannot be made up through a link.
        forged = http.get(
            "/team", params={"done": "reallocated", "moved": "99", "kept": "0", "to": "W2", "seal": "x"}
        )
        assert "99 cases" not in forged.text and "The selected cases were reallocated." in forged.text
    for ref in ("FD-3", "FD-5", "FD-1"):
        assert worker_of(rt, ref) == "W2"
        [(event_id, source)] = allocations_of(rt, ref)[-1:]
        assert source == "staff:TM1"
        assert event_id is not None and event_id.startswith(f"caseloop:allocated:{ref}:W2:")
        accepted = [h.detail.get("type") for h in history_of(rt, ref, "event.accepted")]
        assert accepted[-1] == "worker.allocated"


def test_a_double_submitted_form_reallocates_once(live_server: LiveServer, built: Built) -> None:
    rt = live_server.runtime
    with signed_in_client(live_server, "TM1") as http:
        page = http.get("/team")
        form = {"csrf_token": token_in(page), "case": ["FD-3", "FD-5"], "worker": "W1", "as_of": _as_of(page)}
        first = http.post("/team/reallocate", data=form)
        assert first.status_code == 303
        again = http.post("/team/reallocate", data=form)
        assert again.status_code == 303
        assert (
            "Nothing was reallocated: the selected cases were already with Staff W1."
            in http.get(again.headers["location"]).text
        )
        assert [len(allocations_of(rt, ref)) for ref in ("FD-3", "FD-5")] == [1, 2]  # FD-5 had W5's before
        # The case system then moves FD-3 on; the same form sent once more changes nothing.
        clock(rt).now = NOW + timedelta(minutes=5)
        import_events(
            rt,
            event("worker.allocated", "FD-3", at("2026-11-03", "10:04"), worker="W2"),
            now=(NOW + timedelta(minutes=5)).isoformat(),
        )
        late = http.post("/team/reallocate", data=form)
        assert late.status_code == 303
    assert worker_of(rt, "FD-3") == "W2"
    assert len(allocations_of(rt, "FD-3")) == 2


def test_a_refused_reallocation_changes_nothing_and_says_why(live_server: LiveServer, built: Built) -> None:
    rt = live_server.runtime
    with signed_in_client(live_server, "TM1") as http:
        # A worker of another team: refused for each case, with the boxes still ticked.
        other = _reallocate(http, ["FD-3", "FD-5"], "W3")
        assert other.status_code == 422
        assert "There is a problem: nothing was reallocated" in other.text
        assert "Case FD-3 is in team front-door and Staff W3 (W3) is in team east" in other.text
        assert tables(other).checked == {"FD-3", "FD-5"}
        assert other.text.count('class="govuk-error-message"') >= 2  # inline, by each case
        # One case they may not see among good ones: nothing moves, and it is "no such case".
        hidden = _reallocate(http, ["FD-3", "EA-1"], "W2")
        assert hidden.status_code == 422
        assert "Case EA-1: no such case." in hidden.text
        assert "Case NOPE: no such case." in _reallocate(http, ["NOPE"], "W2").text
        # A leaver, nothing selected, no worker chosen, a closed case.
        assert "Staff W5 (W5) left on 2026-10-30" in _reallocate(http, ["FD-3"], "W5").text
        nothing = _reallocate(http, [], "W2")
        assert nothing.status_code == 422 and "Select at least one case to reallocate." in nothing.text
        assert "Choose the worker to reallocate the cases to." in _reallocate(http, ["FD-3"], "").text
        assert "Case FD-6 is closed: it cannot be allocated now." in _reallocate(http, ["FD-6"], "W2").text
        # The filters of the page are kept on a refusal (the form posts to an address that holds them).
        kept = _reallocate(http, ["FD-3"], "W3", path="/team/reallocate?worker=unallocated")
        assert kept.status_code == 422 and cases_in(kept, "statutory") == ["FD-5", "FD-3"]
    for ref, worker in (("FD-3", None), ("FD-5", "W5"), ("EA-1", "W3"), ("FD-6", None)):
        assert worker_of(rt, ref) == worker
    assert allocations_of(rt, "FD-3") == []


def test_the_same_form_sent_twice_at_once_allocates_once_and_neither_answer_is_an_error(
    live_server: LiveServer, built: Built
) -> None:
    """A double click sends two requests together: both may pass the checks before either
    imports. Whichever imports second finds the id taken; it says nothing went wrong."""
    rt = live_server.runtime
    with signed_in_client(live_server, "TM1") as http:
        page = http.get("/team")
        form = {"csrf_token": token_in(page), "case": ["FD-3", "FD-5"], "worker": "W2", "as_of": _as_of(page)}
        together = threading.Barrier(2)
        answers: list[int] = []

        def send() -> None:
            together.wait()
            answers.append(http.post("/team/reallocate", data=form).status_code)

        senders = [threading.Thread(target=send) for _ in range(2)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
    assert answers == [303, 303]
    assert (worker_of(rt, "FD-3"), worker_of(rt, "FD-5")) == ("W2", "W2")
    with rt.reading() as uow:
        accepted = uow.session.scalars(
            select(ReceivedEvent.case_ref).where(
                ReceivedEvent.source == "staff:TM1", ReceivedEvent.status == "accepted"
            )
        ).all()
    assert sorted(accepted) == ["FD-3", "FD-5"]
