"""Failed, returned and unknown deliveries through a real uvicorn, on SQLite and PostgreSQL.

Each message goes wrong the way it does in service: an email refused by a real SMTP server
(aiosmtpd, 550), a posted letter that the provider reports came back (the status Notify's
receipts and polling apply), and a send whose worker stopped after the hand-over, settled as
``unknown`` by the sweep's reconciliation. The page lists each with its advice, filters them,
and shows none of another team's.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from config.settings import Settings
from config.wiring import Runtime, build_runtime
from messaging.lifecycle import SYSTEM as CASELOOP
from messaging.lifecycle import move
from messaging.outbox import OutboxMessage, Status
from messaging.reconcile import settle_stale
from messaging.status_reads import apply_status
from migrations import upgrade
from services import access
from services.actors import SYSTEM
from tests.factories import (
    MovableClock,
    SmtpRecorder,
    front_door_staff,
    import_events,
    import_staff,
    letter_of,
    referral,
    smtp_server,
    staff_row,
    sweep_and_deliver,
)
from tests.web.conftest import LiveServer
from tests.web.test_login import NOW, PASSWORD, log_in

ACK = "referrer_acknowledgement"
REFERRER = {"source": "2A", "organisation": "Test Primary", "name": "Referrer Example"}
BY_EMAIL = {**REFERRER, "email": "ref@school.example"}
BY_POST = {**REFERRER, "address": "2 Road, Borough"}


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """Front-door (TM1) and east (TM9) over an SMTP server that refuses every recipient.

    D1's acknowledgement (email) is refused; D2's (post) is printed, then reported returned; D3's
    (post) was handed over when its worker stopped, so it is unknown; E1's (email, east) is refused,
    and so are the managers' reminder digests.
    """
    with smtp_server(SmtpRecorder(rcpt="550 5.1.1 No such user")) as url:
        settings = Settings(
            database_url=database_url, var_dir=tmp_path / "var", password_hashing="fast", smtp_url=url
        )
        upgrade(settings.database_url)
        rt = build_runtime(settings, MovableClock(NOW))
        import_staff(
            rt,
            *front_door_staff(),
            staff_row("SM9", "service_manager", team="east"),
            staff_row("TM9", "team_manager", team="east", manager="SM9"),
        )
        for sid in ("TM1", "TM9"):
            access.add_user(rt, SYSTEM, sid, PASSWORD)
        assert import_events(
            rt,
            referral("D1", "2026-11-03T08:00:00+00:00", id="d1", referrer=BY_EMAIL),
            referral("D2", "2026-11-03T08:10:00+00:00", id="d2", referrer=BY_POST),
            referral("E1", "2026-11-03T08:20:00+00:00", id="e1", team="east", referrer=BY_EMAIL),
            now=NOW.isoformat(),
        ).ok
        outcomes = sweep_and_deliver(rt, NOW)
        # The three acknowledgements, and the digests telling TM1 and TM9 of their unallocated cases.
        assert sorted(outcomes.values()) == ["failed", "failed", "failed", "failed", "sent"]
        returned = NOW + timedelta(hours=1)
        with rt.db.transaction() as session:
            posted = session.get(OutboxMessage, letter_of(rt, "D2", ACK, "referrer").id, with_for_update=True)
            assert posted is not None
            apply_status(session, posted, "returned-letter", returned)
        assert import_events(
            rt, referral("D3", "2026-11-03T09:00:00+00:00", id="d3", referrer=BY_POST), now=NOW.isoformat()
        ).ok
        hand_over_then_stop(rt, letter_of(rt, "D3", ACK, "referrer").id)
        yield rt
        rt.close()


def hand_over_then_stop(rt: Runtime, outbox_id: int) -> None:
    """An attempt that began and handed the letter over, whose worker then died; the sweep's
    reconciliation finds it stale and, as it was handed over, marks it unknown."""
    began = NOW + timedelta(hours=2)
    with rt.db.transaction() as session:
        row = session.get(OutboxMessage, outbox_id, with_for_update=True)
        assert row is not None
        move(session, row, Status.SENDING, by=CASELOOP, at=began)
        row.attempts, row.sending_started_at, row.handed_over_at = 1, began, began
    with rt.db.transaction() as session:
        settled = settle_stale(session, began + timedelta(hours=1), timedelta(minutes=10), 5)
    assert settled.unknown == [outbox_id]


@contextmanager
def signed_in(live_server: LiveServer, staff_id: str) -> Iterator[httpx.Client]:
    with live_server.client() as http:
        assert log_in(http, staff_id).status_code == 303
        yield http


def digest_of(rt: Runtime, staff_id: str) -> OutboxMessage:
    with rt.db.transaction() as session:
        [digest] = session.scalars(
            select(OutboxMessage).where(OutboxMessage.case_id.is_(None), OutboxMessage.recipient == staff_id)
        )
        return digest


def rows(page: httpx.Response) -> dict[int, str]:
    """The listed messages by outbox id, each row as text without tags."""
    assert page.status_code == 200, page.text
    found = re.findall(r'<tr class="govuk-table__row" id="delivery-(\d+)">(.*?)</tr>', page.text, re.S)
    return {int(n): " ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split()) for n, row in found}


def test_failed_returned_and_unknown_deliveries_each_with_what_to_do(live_server: LiveServer) -> None:
    rt = live_server.runtime
    d1, d2, d3, e1 = (letter_of(rt, ref, ACK, "referrer") for ref in ("D1", "D2", "D3", "E1"))
    mine, theirs = digest_of(rt, "TM1"), digest_of(rt, "TM9")
    assert (d1.status, d2.status, d3.status, e1.status) == ("failed", "failed", "unknown", "failed")
    with signed_in(live_server, "TM1") as http:
        page = http.get("/deliveries")
        listed = rows(page)
        # Newest first (D1 and the digest failed together: the later message first); east's E1
        # and TM9's digest are not there.
        assert list(listed) == [d3.id, d2.id, mine.id, d1.id]
        assert "Your reminders" in listed[mine.id]
        assert "This reminder email to you could not be delivered" in listed[mine.id]
        refused, came_back, unknown = listed[d1.id], listed[d2.id], listed[d3.id]
        assert "D1" in refused and "Email" in refused and "Failed" in refused
        assert "SMTP server refused the recipient (550)" in refused
        assert "The email was refused: the address on the case may be wrong" in refused
        assert "caseloop does not send this letter again" in refused
        assert "task (due within 2 working days) to reach the referrer another way" in refused
        assert "Returned" in came_back and "Post" in came_back and "3 November 2026, 11:00" in came_back
        assert "The letter came back: the address on the case is wrong or out of date" in came_back
        assert "Outcome unknown" in unknown and "never heard whether it arrived" in unknown
        assert "Check with the referrer whether they got it before sending anything again" in unknown
        assert 'href="/cases/D1"' in page.text and f'href="/letters/{d1.id}"' in page.text

        assert list(rows(http.get("/deliveries?status=unknown"))) == [d3.id]
        assert list(rows(http.get("/deliveries?status=failed"))) == [d2.id, mine.id, d1.id]
        assert list(rows(http.get("/deliveries?channel=email"))) == [mine.id, d1.id]
        assert list(rows(http.get("/deliveries?status=failed&channel=post"))) == [d2.id]
        assert 'value="post" selected' in http.get("/deliveries?channel=post").text

        bad = http.get("/deliveries?status=lost")
        assert bad.status_code == 422 and "Choose a status from the list" in bad.text
        assert 'href="#status"' in bad.text and "delivery-" not in bad.text

        failed_letter = http.get(f"/letters/{d1.id}")  # each links to the message itself
        assert failed_letter.status_code == 200
        assert "SMTP server refused the recipient (550)" in failed_letter.text
        digest = http.get(f"/letters/{mine.id}")  # a digest's page, as its reader got it
        assert digest.status_code == 200 and "Reminder digest to staff" in digest.text
    with signed_in(live_server, "TM9") as http:
        assert list(rows(http.get("/deliveries"))) == [theirs.id, e1.id]
        assert http.get(f"/letters/{d1.id}").status_code == 404
