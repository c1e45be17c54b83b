"""The audit sample pages: drawing a month's sample once, recording and correcting findings,
the totals by month; each manager sees their teams' sampled cases, a social worker nothing.

October 2026: 25 referrals in front-door and 5 in front-door-north. The sample of 20 gives each
team one, then 18 in proportion to the others (24 and 4): front-door 16, front-door-north 4.
"""

from __future__ import annotations

import re
from html import unescape

import httpx
from sqlalchemy import func, select

from config.wiring import Runtime
from tests.factories import import_events, referral
from tests.web.conftest import LiveServer
from tests.web.test_login import log_in, token_in
from tests.web.test_pages_performance import NORTH, runtime  # noqa: F401  (the two teams' staff)
from workflow.audit_records import AuditFinding, AuditSample

MONTH = "2026-10"
ANSWERS = {
    "family_told": "yes",
    "referrer_told": "not_applicable",
    "letters_right": "no",
    "notes": "Letter late",
}


def october_referrals(rt: Runtime) -> None:
    import_events(
        rt,
        *(referral(f"FD{n:02d}", f"2026-10-{1 + n % 28:02d}") for n in range(25)),
        *(referral(f"NO{n}", "2026-10-12", team=NORTH) for n in range(5)),
        referral("SEPT", "2026-09-30"),  # another month's referral is never drawn
        now="2026-10-30",
    )


def sampled(rt: Runtime) -> list[tuple[str, int]]:
    with rt.reading() as uow:
        query = select(AuditSample.team, AuditSample.case_id).where(AuditSample.month == MONTH)
        rows = uow.session.execute(query)
        return sorted((team, case_id) for team, case_id in rows)


def findings_count(rt: Runtime) -> int:
    with rt.reading() as uow:
        return int(uow.session.scalar(select(func.count(AuditFinding.id))) or 0)


def words(page: httpx.Response) -> str:
    """The page's words: tags left out, whitespace made single spaces."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


def refs_on(page: httpx.Response) -> list[str]:
    return re.findall(r'<a class="govuk-link" href="/cases/([^"]+)">', page.text)


def draw(http: httpx.Client, month: str = MONTH) -> httpx.Response:
    page = http.get(f"/audit/{month}")
    return http.post(f"/audit/{month}/draw", data={"csrf_token": token_in(page)})


def test_drawing_twice_gives_the_same_cases_and_no_duplicates(live_server: LiveServer) -> None:
    rt = live_server.runtime
    october_referrals(rt)
    with live_server.client() as http:
        log_in(http, "SM1")
        first = draw(http)
        assert (first.status_code, first.headers["location"]) == (303, f"/audit/{MONTH}?done=audit-drawn")
        drawn = sampled(rt)
        again = draw(http)
        assert again.headers["location"] == f"/audit/{MONTH}?done=audit-already-drawn"
        page = http.get(again.headers["location"])
    assert sampled(rt) == drawn and len(drawn) == 20 == len(set(drawn))
    assert sum(1 for team, _ in drawn if team == NORTH) == 4
    assert "nothing changed" in page.text
    refs = refs_on(page)
    assert len(refs) == 20 and "SEPT" not in refs
    assert 'action="/audit/2026-10/cases/' in page.text


def test_a_team_manager_sees_only_their_teams_sampled_cases(live_server: LiveServer) -> None:
    rt = live_server.runtime
    october_referrals(rt)
    with live_server.client() as http:
        log_in(http, "TM2")
        draw(http)
        refs = refs_on(http.get(f"/audit/{MONTH}"))
    assert sorted(refs) == sorted(r for r in refs if r.startswith("NO")) and len(refs) == 4
    assert len(sampled(rt)) == 20  # the draw is the month's, for every team


def test_findings_are_recorded_corrected_and_added_up_by_month(live_server: LiveServer) -> None:
    rt = live_server.runtime
    october_referrals(rt)
    with live_server.client() as http:
        log_in(http, "TM1")
        draw(http)
        page = http.get(f"/audit/{MONTH}")
        ref = refs_on(page)[0]
        done = http.post(f"/audit/{MONTH}/cases/{ref}", data={**ANSWERS, "csrf_token": token_in(page)})
        assert (done.status_code, done.headers["location"]) == (303, f"/audit/{MONTH}?done=audit-recorded")
        shown = http.get(done.headers["location"])
        assert "The finding has been recorded." in shown.text
        assert "Recorded by TM1 on 2026-11-03: family told yes, referrer told not applicable" in words(shown)
        summary = http.get("/audit")
        row = re.search(r"October 2026</a></th>(.*?)</tr>", summary.text, re.S)
        assert row, summary.text
        cells = [c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]
        assert cells == ["16", "1", "1 of 1", "0 of 0", "0 of 1"]
        # A correction keeps the earlier answers, and the totals follow the newest.
        corrected = {**ANSWERS, "letters_right": "yes", "csrf_token": token_in(shown)}
        assert http.post(f"/audit/{MONTH}/cases/{ref}", data=corrected).status_code == 303
        shown = http.get(f"/audit/{MONTH}")
        assert "Earlier answers (1)" in words(shown)
        assert "letters right no; notes: Letter late" in words(shown)
        row = re.search(r"October 2026</a></th>(.*?)</tr>", http.get("/audit").text, re.S)
        assert row and re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)[-1].strip() == "1 of 1"
    assert findings_count(rt) == 2


def test_a_missing_answer_is_refused_and_nothing_is_recorded(live_server: LiveServer) -> None:
    rt = live_server.runtime
    october_referrals(rt)
    with live_server.client() as http:
        log_in(http, "SM1")
        draw(http)
        page = http.get(f"/audit/{MONTH}")
        ref = refs_on(page)[0]
        partial = {"family_told": "no", "referrer_told": "yes", "notes": "kept", "csrf_token": token_in(page)}
        refused = http.post(f"/audit/{MONTH}/cases/{ref}", data=partial)
        not_sampled = http.post(f"/audit/{MONTH}/cases/SEPT", data={**ANSWERS, "csrf_token": token_in(page)})
        not_a_case = http.post(f"/audit/{MONTH}/cases/NOBODY", data={**ANSWERS, "csrf_token": token_in(page)})
    assert refused.status_code == 422
    text = unescape(refused.text)
    assert "There is a problem" in text and f"Case {ref}: Choose whether the letters were right" in text
    assert 'href="#c1-letters_right"' in refused.text and 'id="c1-letters_right-error"' in refused.text
    kept = r'id="c1-family_told-2" name="family_told" type="radio" value="no"\s*checked'
    assert re.search(kept, refused.text)
    assert ">kept</textarea>" in refused.text
    assert findings_count(rt) == 0
    assert not_sampled.status_code == 404 and "is not in the audit sample of October 2026" in not_sampled.text
    assert not_a_case.status_code == 404


def test_a_month_not_ended_cannot_be_drawn_and_a_worker_is_refused(live_server: LiveServer) -> None:
    with live_server.client() as http:
        log_in(http, "TM1")
        page = http.get("/audit/2026-11")
        assert "can be drawn once the month has ended" in page.text
        assert draw(http, "2026-11").status_code == 409
        assert http.get("/audit/2026-99").status_code == 404
        listing = http.get("/audit")
        assert listing.status_code == 200 and 'href="/audit/2026-10"' in listing.text
    with live_server.client() as http:
        log_in(http, "W1")
        for path in ("/audit", f"/audit/{MONTH}"):
            refused = http.get(path)
            assert refused.status_code == 403
            assert "Only team managers and service managers may" in refused.text
