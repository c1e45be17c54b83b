"""Letters awaiting approval through a real uvicorn, on SQLite and PostgreSQL: the held list of
the cases a person may see, one letter with its text, PDF and audit trail (the reviewer's own
views recorded), approving and rejecting with a reason, refusals kept on the letter page, and
the letter content the only thing our own pages may frame."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.settings import Settings
from config.wiring import Runtime, build_runtime
from migrations import upgrade
from services import access
from services.actors import SYSTEM
from tests.factories import (
    MovableClock,
    audit_of,
    event,
    front_door_staff,
    import_events,
    import_staff,
    letter_of,
    referral,
    staff_row,
)
from tests.web.conftest import LiveServer
from tests.web.test_login import NOW, PASSWORD, log_in, token_in

ACK = "referrer_acknowledgement"
POSTED_REFERRER = {
    "source": "2A",
    "organisation": "Test Primary",
    "name": "Referrer Postexample",
    "address": "2 Referrer Road, Borough, AB1 2CD",
}
EMAILED_REFERRER = {
    "source": "2A",
    "organisation": "Test Primary",
    "name": "Referrer Mailexample",
    "email": "ref@school.example",
}


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """Front-door (SM1 > TM1 > W1, W2) and east (SM9 > TM9 > X1), each with held letters: C1 and
    C2 are front-door's, C1 allocated to W1; E1 is east's, allocated to X1."""
    settings = Settings(database_url=database_url, var_dir=tmp_path / "var", password_hashing="fast")
    upgrade(settings.database_url)
    rt = build_runtime(settings, MovableClock(NOW))
    import_staff(
        rt,
        *front_door_staff(),
        staff_row("SM9", "service_manager", team="east"),
        staff_row("TM9", "team_manager", team="east", manager="SM9"),
        staff_row("X1", team="east", manager="TM9"),
    )
    for sid in ("W1", "W2", "TM1", "TM9", "X1"):
        access.add_user(rt, SYSTEM, sid, PASSWORD)
    report = import_events(
        rt,
        referral(
            "C1", "2026-11-03T08:00:00+00:00", id="c1-ref", flags=["domestic_abuse"], referrer=POSTED_REFERRER
        ),
        event("worker.allocated", "C1", "2026-11-03T08:05:00+00:00", id="c1-w", worker="W1"),
        referral(
            "C2",
            "2026-11-03T08:10:00+00:00",
            id="c2-ref",
            flags=["do_not_disclose"],
            referrer=EMAILED_REFERRER,
        ),
        referral(
            "E1",
            "2026-11-03T08:20:00+00:00",
            id="e1-ref",
            team="east",
            flags=["domestic_abuse"],
            referrer=EMAILED_REFERRER,
        ),
        event("worker.allocated", "E1", "2026-11-03T08:25:00+00:00", id="e1-w", worker="X1"),
        now=NOW.isoformat(),
    )
    assert report.ok, report.rejected
    yield rt
    rt.close()


def ack(rt: Runtime, case: str) -> Any:
    return letter_of(rt, case, ACK, "referrer")


def held_ids(page: httpx.Response) -> set[int]:
    assert page.status_code == 200, page.text
    return {int(n) for n in re.findall(r'href="/letters/(\d+)"', page.text)}


def row_of(page: httpx.Response, outbox_id: int) -> str:
    """The table row linking to letter ``outbox_id``, as text without tags."""
    for row in re.findall(r"<tr class=\"govuk-table__row\">(.*?)</tr>", page.text, re.S):
        if f'href="/letters/{outbox_id}"' in row:
            return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split())
    raise AssertionError(f"no row for letter {outbox_id}")


def text_block(page: httpx.Response) -> str:
    found = re.search(r'<pre class="app-letter-text"[^>]*>(.*?)</pre>', page.text, re.S)
    assert found, page.text
    return html.unescape(found.group(1))


@contextmanager
def signed_in_client(live_server: LiveServer, staff_id: str) -> Iterator[httpx.Client]:
    with live_server.client() as http:
        assert log_in(http, staff_id).status_code == 303
        yield http


def test_a_team_manager_reviews_reads_and_approves_a_held_letter(live_server: LiveServer) -> None:
    rt = live_server.runtime
    c1, c2, e1 = ack(rt, "C1"), ack(rt, "C2"), ack(rt, "E1")
    assert (c1.status, c2.status, e1.status) == ("held", "held", "held")
    with signed_in_client(live_server, "TM1") as http:
        listed = http.get("/letters/held")
        assert {c1.id, c2.id} <= held_ids(listed) and e1.id not in held_ids(listed)  # not east's
        row = row_of(listed, c1.id)
        assert "C1" in row and "Referrer" in row and "Post" in row and "3 November 2026" in row
        assert "domestic abuse: a worker must review every letter" in row and row.endswith("Yes")
        assert 'href="/cases/C1"' in listed.text
        assert "do not disclose" in row_of(listed, c2.id) and "Email" in row_of(listed, c2.id)

        page = http.get(f"/letters/{c1.id}")
        assert page.status_code == 200
        text = text_block(page)
        assert "Referrer Postexample" in text and "2 Referrer Road" in text
        assert (
            f'<iframe class="app-letter-pdf" title="The posted letter (PDF) of letter {c1.id}" '
            f'src="/letters/{c1.id}/pdf">' in page.text
        )
        assert f'href="/letters/{c1.id}/pdf?download=1"' in page.text
        pdf = http.get(f"/letters/{c1.id}/pdf")
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        assert pdf.headers["content-disposition"].startswith("inline")
        assert ("viewed", "TM1", "as text") in audit_of(rt, c1.id)
        assert ("viewed", "TM1", "as pdf") in audit_of(rt, c1.id)
        again = http.get(f"/letters/{c1.id}")  # the trail shown holds every view, this one too
        assert again.text.count('<td class="govuk-table__cell">Viewed</td>') == 3
        assert "as pdf" in again.text

        reason = "Spoke to the referrer: post to the school is safe"
        done = http.post(f"/letters/{c1.id}/approve", data={"reason": reason, "csrf_token": token_in(again)})
        assert (done.status_code, done.headers["location"]) == (303, "/letters/held?done=letter-approved")
        after = http.get(done.headers["location"])
        assert "Letter approved: it will be sent." in after.text
        assert c1.id not in held_ids(after) and c2.id in held_ids(after)
    approved = ack(rt, "C1")
    assert approved.status == "queued" and approved.payload["approved_by"] == "TM1"
    assert ("approved", "TM1", reason) in audit_of(rt, c1.id)


def test_a_rejected_letter_will_not_be_sent(live_server: LiveServer) -> None:
    rt = live_server.runtime
    c2 = ack(rt, "C2")
    with signed_in_client(live_server, "TM1") as http:
        page = http.get(f"/letters/{c2.id}")
        assert "Referrer Mailexample" in text_block(page)
        assert f'src="/letters/{c2.id}/html"' in page.text and "/pdf" not in page.text
        body = http.get(f"/letters/{c2.id}/html")
        assert body.status_code == 200 and "Referrer Mailexample" in body.text
        assert http.get(f"/letters/{c2.id}/pdf").status_code == 422  # an email has no PDF
        reason = "The referrer's address must not be disclosed"
        done = http.post(f"/letters/{c2.id}/reject", data={"reason": reason, "csrf_token": token_in(page)})
        assert done.headers["location"] == "/letters/held?done=letter-rejected"
        assert "Letter rejected: it will not be sent." in http.get(done.headers["location"]).text
    assert ack(rt, "C2").status == "rejected"
    assert ("rejected", "TM1", reason) in audit_of(rt, c2.id)
    assert ("viewed", "TM1", "as html") in audit_of(rt, c2.id)


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_an_empty_reason_is_refused_on_the_letter_page_and_nothing_changes(
    live_server: LiveServer, decision: str
) -> None:
    rt = live_server.runtime
    c1 = ack(rt, "C1")
    with signed_in_client(live_server, "W1") as http:  # the allocated worker may decide
        page = http.get(f"/letters/{c1.id}")
        blank = {"reason": "   ", "csrf_token": token_in(page)}
        refused = http.post(f"/letters/{c1.id}/{decision}", data=blank)
    assert refused.status_code == 422
    assert "There is a problem" in refused.text and f'href="#{decision}-reason"' in refused.text
    assert refused.text.count("Enter why the letter") == 2  # in the summary and by the field
    assert "<title>Error: " in refused.text
    assert ack(rt, "C1").status == "held" and "approved_by" not in ack(rt, "C1").payload
    assert [a for a, _, _ in audit_of(rt, c1.id) if a != "viewed"] == ["held"]


def test_deciding_a_letter_no_longer_held_is_a_conflict_and_the_reason_is_kept(
    live_server: LiveServer,
) -> None:
    rt = live_server.runtime
    c1 = ack(rt, "C1")
    with signed_in_client(live_server, "TM1") as http:
        token = token_in(http.get(f"/letters/{c1.id}"))
        first = http.post(f"/letters/{c1.id}/approve", data={"reason": "safe", "csrf_token": token})
        assert first.status_code == 303
        late = http.post(f"/letters/{c1.id}/reject", data={"reason": "too late now", "csrf_token": token})
    assert late.status_code == 409
    assert "This letter is no longer waiting for approval, so it was not rejected" in late.text
    assert "too late now" in late.text
    assert ack(rt, "C1").status == "queued"


def test_another_teams_worker_gets_not_found_for_the_letter(live_server: LiveServer) -> None:
    rt = live_server.runtime
    c1, e1 = ack(rt, "C1"), ack(rt, "E1")
    with signed_in_client(live_server, "X1") as http:
        assert held_ids(http.get("/letters/held")) == {e1.id}
        token = token_in(http.get("/letters/held"))
        missing = http.get("/letters/999999")
        for path in (f"/letters/{c1.id}", f"/letters/{c1.id}/pdf", f"/letters/{c1.id}/html"):
            answer = http.get(path)
            assert answer.status_code == 404, path
            # The words of a letter that does not exist, whatever the address asked for.
            assert answer.text.replace(f"message {c1.id}", "message N") == missing.text.replace(
                "message 999999", "message N"
            )
        refused = http.post(f"/letters/{c1.id}/approve", data={"reason": "mine now", "csrf_token": token})
        assert refused.status_code == 404
        assert http.get("/letters/99999999999999999999").status_code == 404  # past any id
    assert ack(rt, "C1").status == "held"
    assert all(by != "X1" for _, by, _ in audit_of(rt, c1.id))  # not even a view
    with signed_in_client(live_server, "W2") as http:  # front-door, but C1 is not W2's
        assert c1.id not in held_ids(http.get("/letters/held"))
        assert http.get(f"/letters/{c1.id}").status_code == 404


def test_only_the_letter_content_may_be_framed_and_only_by_our_own_pages(live_server: LiveServer) -> None:
    rt = live_server.runtime
    c1, c2 = ack(rt, "C1"), ack(rt, "C2")
    with signed_in_client(live_server, "TM1") as http:
        pdf, mail = http.get(f"/letters/{c1.id}/pdf"), http.get(f"/letters/{c2.id}/html")
        pages = [http.get("/letters/held"), http.get(f"/letters/{c1.id}"), http.get("/")]
    for content in (pdf, mail):
        assert content.status_code == 200
        assert "frame-ancestors 'self'" in content.headers["content-security-policy"]
        assert content.headers["x-frame-options"] == "SAMEORIGIN"
    mail_policy = mail.headers["content-security-policy"].split("; ")
    assert "sandbox" in mail_policy and "default-src 'none'" in mail_policy
    assert not any(p.startswith("script-src") for p in mail_policy)  # no script allowed at all
    for page in pages:
        assert page.status_code == 200
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"


def test_the_held_list_pages_in_the_database(live_server: LiveServer) -> None:
    rt = live_server.runtime
    more = [
        referral(f"M{n}", "2026-11-03T09:00:00+00:00", id=f"m{n}", flags=["marac"], referrer=EMAILED_REFERRER)
        for n in range(60)
    ]
    assert import_events(rt, *more, now=NOW.isoformat()).ok
    with signed_in_client(live_server, "TM1") as http:
        first, second = http.get("/letters/held"), http.get("/letters/held?page=2")
    ids_first, ids_second = held_ids(first), held_ids(second)
    assert len(ids_first) == 50 and not ids_first & ids_second
    assert "62 letters held" in " ".join(first.text.split())  # C1, C2 and 60 more
    assert ack(rt, "C1").id in ids_first  # oldest first
    assert 'href="/letters/held?page=2"' in first.text
