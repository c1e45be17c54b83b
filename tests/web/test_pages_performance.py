"""The performance page and its CSV: figures counted from real clocks, by month and team, as
each manager may see them; a social worker is refused.

Two teams under SM1: front-door (TM1, W1, W2) and front-door-north (TM2, W3). In October 2026
front-door has three referrals, two decided within a working day and one late (2 of 3 = 67%);
one of them is a re-referral within 12 months. front-door-north has one, decided late.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from html import unescape

import httpx
import pytest

from config.settings import Settings
from config.wiring import Runtime, build_runtime
from migrations import upgrade
from services import access, performance
from services.actors import SYSTEM
from tests.factories import (
    MovableClock,
    event,
    front_door_staff,
    import_events,
    import_staff,
    referral,
    staff_row,
)
from tests.web.conftest import LiveServer
from tests.web.test_login import NOW, PASSWORD, log_in, without_tokens

NORTH = "front-door-north"


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    upgrade(settings.database_url)
    rt = build_runtime(settings, MovableClock(NOW))
    import_staff(
        rt,
        *front_door_staff(),
        staff_row("TM2", "team_manager", team=NORTH, manager="SM1"),
        staff_row("W3", team=NORTH, manager="TM2"),
    )
    for sid in ("SM1", "TM1", "TM2", "W1"):
        access.add_user(rt, SYSTEM, sid, PASSWORD)
    yield rt
    rt.close()


def october_cases(rt: Runtime) -> None:
    """Referred on Monday 5 October 2026 (due Tuesday 6th): A and B decided on the 6th, C and N
    on Thursday 8th. A was referred before, in November 2025, and closed."""
    import_events(
        rt,
        referral("A", "2025-11-10"),
        event("decision.made", "A", "2025-11-10", outcome="nfa"),
        event("case.closed", "A", "2025-11-11", reason="NFA"),
        now="2025-11-11",
    )
    import_events(
        rt,
        *(referral(ref, "2026-10-05") for ref in ("A", "B", "C")),
        referral("N", "2026-10-05", team=NORTH),
        event("decision.made", "A", "2026-10-06", outcome="nfa"),
        event("decision.made", "B", "2026-10-06", outcome="assessment"),
        event("decision.made", "C", "2026-10-08", outcome="nfa"),
        event("decision.made", "N", "2026-10-08", outcome="nfa"),
        now="2026-10-09",
    )


def table_rows(page: str, measure: str) -> list[list[str]]:
    """The cells of the measure's table, row by row (header row left out)."""
    start = page.index(f'id="measure-{measure}"')
    table = page[page.index("<tbody", start) : page.index("</tbody>", start)]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, flags=re.S)
    cells = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S) for row in rows]
    return [[unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in row] for row in cells]


def csv_of(response: httpx.Response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.text)))


def test_a_service_manager_sees_each_team_and_the_total(live_server: LiveServer) -> None:
    october_cases(live_server.runtime)
    with live_server.client() as http:
        log_in(http, "SM1")
        page = http.get("/performance", params={"from": "2026-10", "to": "2026-11"})
    assert page.status_code == 200, page.text
    assert table_rows(page.text, "decision") == [
        ["November 2026", "Nothing counted", "0", "0", "-"],
        ["October 2026", "front-door", "3", "2", "67%"],
        ["October 2026", NORTH, "1", "0", "0%"],
        ["October 2026", "All shown teams", "4", "2", "50%"],
    ]
    # A is a re-referral within 12 months of its November 2025 referral: 1 of front-door's 3.
    assert table_rows(page.text, "re_referrals")[1:3] == [
        ["October 2026", "front-door", "3", "1", "33%"],
        ["October 2026", NORTH, "1", "0", "0%"],
    ]
    chart = page.text[page.text.index('<svg class="app-chart" id="chart-decision"') :]
    chart = chart[: chart.index("</svg>")]
    assert 'role="img"' in chart and 'viewBox="0 0 400 240"' in chart and 'width="100%"' in chart
    assert '<title id="chart-decision-title">Decisions within 1 working day</title>' in chart
    desc = re.search(r"<desc[^>]*>(.*?)</desc>", chart, re.S)
    assert desc and "Latest: October 2026, 50% (2 of 4)." in unescape(desc.group(1))
    assert "style=" not in page.text and "<script" not in page.text  # the CSP allows neither


def test_the_csv_has_a_row_per_measure_month_and_team(live_server: LiveServer) -> None:
    october_cases(live_server.runtime)
    with live_server.client() as http:
        log_in(http, "SM1")
        got = http.get("/performance.csv", params={"from": "2026-10", "to": "2026-10"})
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/csv")
    name = "caseloop-performance-2026-10-to-2026-10.csv"
    assert got.headers["content-disposition"] == f'attachment; filename="{name}"'
    rows = csv_of(got)
    assert rows[0] == ["measure", "month", "team", "due", "on time", "percent"]
    decisions = [r for r in rows if r[0] == "Decisions within 1 working day"]
    assert decisions == [
        ["Decisions within 1 working day", "2026-10", "front-door", "3", "2", "67"],
        ["Decisions within 1 working day", "2026-10", NORTH, "1", "0", "0"],
    ]
    assert ["Re-referrals within 12 months", "2026-10", "front-door", "3", "1", "33"] in rows


def test_a_team_manager_sees_only_their_team(live_server: LiveServer) -> None:
    october_cases(live_server.runtime)
    with live_server.client() as http:
        log_in(http, "TM1")
        page = http.get("/performance", params={"from": "2026-10", "to": "2026-10"})
        got = http.get("/performance.csv", params={"from": "2026-10", "to": "2026-10"})
        other = http.get("/performance", params={"team": NORTH})
    assert page.status_code == 200
    assert table_rows(page.text, "decision") == [["October 2026", "front-door", "3", "2", "67%"]]
    assert NORTH not in without_tokens(page.text)
    assert all(r[2] == "front-door" for r in csv_of(got)[1:]) and len(csv_of(got)) > 1
    assert other.status_code == 422 and "is not one of them" in unescape(other.text)
    assert "There is a problem" in other.text and 'href="#team"' in other.text


def test_the_default_is_the_last_12_months_and_bad_months_are_refused(live_server: LiveServer) -> None:
    with live_server.client() as http:
        log_in(http, "TM1")
        page = http.get("/performance")
        backwards = http.get("/performance", params={"from": "2026-10", "to": "2026-09"})
        nonsense = http.get("/performance", params={"from": "2026-13"})
        csv_refused = http.get("/performance.csv", params={"from": "nonsense"})
    assert page.status_code == 200
    assert "Showing December 2025 to November 2026" in page.text
    assert table_rows(page.text, "decision")[0][:2] == ["November 2026", "Nothing counted"]
    assert backwards.status_code == 422 and "same as or before the last month" in backwards.text
    assert nonsense.status_code == 422 and 'href="#from"' in nonsense.text
    assert csv_refused.status_code == 422


def test_a_social_worker_is_refused(live_server: LiveServer) -> None:
    with live_server.client() as http:
        log_in(http, "W1")
        for path in ("/performance", "/performance.csv"):
            refused = http.get(path)
            assert refused.status_code == 403
            assert "Only team managers and service managers may read the performance figures." in refused.text


def test_a_formula_in_a_cell_is_made_harmless() -> None:
    assert [performance.safe_cell(v) for v in ("=1+1", "+1", "-1", "@x", "team", 67, None)] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@x",
        "team",
        "67",
        "",
    ]
    assert performance.percent(2, 3) == 67 and performance.percent(1, 2) == 50
    assert performance.percent(0, 0) is None
