"""Letters as they leave and as they were sent (issue 8, points 11, 13, 14, 15), on SQLite and
PostgreSQL: emails go to the address the case holds when they are sent; the Date header and the
letter's date come from the runtime's clock; a sent letter is shown as kept, checked against its
hash; an address the envelope window cannot show holds the letter before it reaches the post room;
the school that was told a worker is involved is told when that ends; easy read is honoured."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from config.wiring import Runtime
from messaging.archive import StoredContentAltered, sha256
from messaging.outbox import SentContent
from services.actors import SYSTEM
from services.letters import show_message
from tests.factories import (
    MovableClock,
    audit_of,
    event,
    import_events,
    letter_of,
    letter_runtime,
    letters_of,
    person,
    referral,
    sweep_and_deliver,
)

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # Tuesday, office hours


def at(hhmm: str) -> str:
    return f"2026-11-03T{hhmm}:00+00:00"


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = letter_runtime(database_url, tmp_path / "var", MovableClock(NOW))  # files and print
    yield runtime
    runtime.close()


def take(rt: Runtime, *events: dict[str, Any]) -> None:
    report = import_events(rt, *events, now=NOW.isoformat())
    assert report.ok, report.rejected


def emailed(rt: Runtime, outbox_id: int) -> EmailMessage:
    data = (rt.settings.outbox_dir / f"outbox-{outbox_id}.eml").read_bytes()
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def plain(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def emailing(pid: str, address: str, **fields: Any) -> dict[str, Any]:
    return person(pid, preferred_channel="email", email=address, **fields)


def nfa(ref: str, *people: dict[str, Any], **fields: Any) -> list[dict[str, Any]]:
    return [
        referral(ref, at("08:00"), id=f"{ref}-r", household=list(people), **fields),
        event("decision.made", ref, at("08:10"), id=f"{ref}-d", outcome="nfa"),
    ]


def test_an_email_goes_to_the_address_held_when_it_is_sent(rt: Runtime) -> None:
    take(rt, *nfa("C1", emailing("P1", "old@family.example")))
    take(rt, event("household.updated", "C1", at("09:00"), household=[emailing("P1", "new@family.example")]))
    letter = letter_of(rt, "C1", "family_decision", "P1")
    assert letter.address == "old@family.example"  # as it stood when the letter became owed
    assert sweep_and_deliver(rt, NOW)[letter.id] == "sent"
    message = emailed(rt, letter.id)
    assert message["To"] == "new@family.example"
    assert letter_of(rt, "C1", "family_decision", "P1").address == "new@family.example"  # as sent


def test_a_recipient_no_longer_safe_to_contact_or_without_an_email_is_not_sent_to(rt: Runtime) -> None:
    take(rt, *nfa("C1", emailing("P1", "p1@family.example")))
    unsafe = person("P1", email="p1@family.example", preferred_channel="email", safe_to_contact=False)
    take(
        rt,
        event("household.updated", "C1", at("09:00"), household=[unsafe]),
        event(
            "referrer.updated",
            "C1",
            at("09:01"),
            referrer={
                "source": "2A",
                "organisation": "Test Primary",
                "name": "Referrer Example",
                "address": "1 School Lane, Borough",
            },
        ),
    )
    family = letter_of(rt, "C1", "family_decision", "P1")
    referrer = letter_of(rt, "C1", "referrer_acknowledgement", "referrer")
    outcome = sweep_and_deliver(rt, NOW)
    assert (outcome[family.id], outcome[referrer.id]) == ("held", "held")
    assert audit_of(rt, family.id)[-1] == (
        "held",
        "caseloop",
        f"outbox {family.id}: P1 is now marked not safe to contact",
    )
    assert audit_of(rt, referrer.id)[-1] == (
        "held",
        "caseloop",
        f"outbox {referrer.id}: the referrer no longer has an email address",
    )
    assert not rt.settings.outbox_dir.exists() or list(rt.settings.outbox_dir.iterdir()) == []


def test_the_date_header_and_the_letters_date_come_from_the_runtimes_clock(rt: Runtime) -> None:
    take(rt, *nfa("C1", emailing("P1", "p1@family.example")))
    late = datetime(2026, 11, 4, 23, 30, tzinfo=UTC)  # GMT: still 4 November in the council's zone
    letter = letter_of(rt, "C1", "family_decision", "P1")
    assert sweep_and_deliver(rt, late)[letter.id] == "sent"
    message = emailed(rt, letter.id)
    assert parsedate_to_datetime(str(message["Date"])) == late
    assert "Date: 4 November 2026" in plain(message)
    summer = MovableClock(datetime(2026, 3, 31, 23, 30, tzinfo=UTC))  # BST: already 1 April locally
    take(rt, *nfa("C2", emailing("P1", "p2@family.example")))
    rt.clock.now = summer.now  # type: ignore[attr-defined]
    shown = show_message(rt, SYSTEM, letter_of(rt, "C2", "family_decision", "P1").id, "text")
    assert "Date: 1 April 2026" in str(shown.content)


def test_a_sent_letter_is_shown_as_it_was_sent_and_checked_against_its_hash(rt: Runtime) -> None:
    take(
        rt,
        *nfa(
            "C1",
            emailing("P1", "p1@family.example", name="Sent Name"),
            person("P2", name="Posted Parent", address="4 Post Lane, Letterton, LT1 1AA"),
        ),
    )
    emailed_id = letter_of(rt, "C1", "family_decision", "P1").id
    posted_id = letter_of(rt, "C1", "family_decision", "P2").id
    delivered = sweep_and_deliver(rt, NOW)
    assert (delivered[emailed_id], delivered[posted_id]) == ("sent", "sent")
    sent_text = plain(emailed(rt, emailed_id))
    # The case moves on: a fresh rendering would now say another name and another date.
    take(
        rt,
        event(
            "household.updated",
            "C1",
            at("09:30"),
            household=[
                emailing("P1", "p1@family.example", name="Renamed Parent"),
                person("P2", name="Posted Parent", address="9 New Road, Letterton, LT1 9ZZ"),
            ],
        ),
    )
    rt.clock.now = NOW + timedelta(days=9)  # type: ignore[attr-defined]
    shown = show_message(rt, SYSTEM, emailed_id, "text")
    assert str(shown.content).replace("\r\n", "\n") == sent_text.replace("\r\n", "\n")
    assert "Dear Sent Name," in str(shown.content) and "Renamed Parent" not in str(shown.content)
    assert shown.summary.endswith(
        "sent, as sent (attempt 1, sha256 " + _hash(rt, emailed_id, "text")[:12] + "… checked)"
    )
    pdf = show_message(rt, SYSTEM, posted_id, "pdf").content
    assert pdf == (rt.settings.print_dir / "pending" / f"outbox-{posted_id}.pdf").read_bytes()
    assert "4 Post Lane" in str(show_message(rt, SYSTEM, posted_id, "html").content)
    with rt.db.transaction() as session:  # someone edits the kept copy behind caseloop's back
        session.execute(
            update(SentContent)
            .where(SentContent.outbox_id == emailed_id, SentContent.form == "text")
            .values(body=b"Dear Someone")
        )
    with pytest.raises(StoredContentAltered) as altered:
        show_message(rt, SYSTEM, emailed_id, "text")
    assert str(altered.value).startswith(
        f"outbox {emailed_id}: the stored text copy does not match the SHA-256 taken when it was sent"
    )


def _hash(rt: Runtime, outbox_id: int, form: str) -> str:
    with rt.db.transaction() as session:
        row = session.get(SentContent, (outbox_id, form))
        assert row is not None and sha256(row.body) == row.sha256
        return row.sha256


def test_an_address_the_window_cannot_show_is_held_before_it_is_printed(rt: Runtime) -> None:
    sprawling = "Flat 3, Block B, Tower House, Estate Lane, Upper Village, Letterton, Countyshire, LT1 1AA"
    take(rt, *nfa("C1", person("P1", name="Long Address", address=sprawling)))
    letter = letter_of(rt, "C1", "family_decision", "P1")
    assert sweep_and_deliver(rt, NOW)[letter.id] == "held"
    assert audit_of(rt, letter.id)[-1] == (
        "held",
        "caseloop",
        (
            f"outbox {letter.id}: the address will not fit the envelope window: the name and address take "
            "10 lines of at most 38 characters; the envelope window shows 7"
        ),
    )
    assert not (rt.settings.print_dir / "pending" / f"outbox-{letter.id}.pdf").exists()


def test_easy_read_is_honoured_for_the_decision_letter(rt: Runtime) -> None:
    take(rt, *nfa("C1", person("P1", easy_read=True), person("P2", name="Other Parent")))
    assert sorted((m.kind, m.recipient) for m in letters_of(rt, "C1") if m.recipient_role == "family") == [
        ("family_decision", "P2"),
        ("family_decision_easy_read", "P1"),
    ]


def assessed(ref: str) -> list[dict[str, Any]]:
    return [
        referral(ref, at("08:00"), id=f"{ref}-r", household=[person("P1")]),
        event("worker.allocated", ref, at("08:05"), id=f"{ref}-w", worker="W1"),
        event("decision.made", ref, at("08:10"), id=f"{ref}-d", outcome="assessment"),
    ]


def closed(ref: str) -> list[dict[str, Any]]:
    return [
        event("assessment.completed", ref, at("09:20"), id=f"{ref}-a", outcome="nfa", factors=["16A"]),
        event("case.closed", ref, at("09:40"), id=f"{ref}-c", reason="RC8"),
    ]


def test_a_school_told_a_worker_is_involved_is_told_when_it_ends(rt: Runtime) -> None:
    take(rt, *assessed("TOLD"))
    told = letter_of(rt, "TOLD", "school_worker_involved", "school").id
    assert sweep_and_deliver(rt, NOW)[told] == "sent"
    take(rt, *assessed("UNTOLD"))
    untold = letter_of(rt, "UNTOLD", "school_worker_involved", "school")
    assert untold.status == "queued"
    take(rt, *closed("TOLD"), *closed("UNTOLD"))
    # UNTOLD's notice that a worker was involved was still waiting: its school hears nothing of an end.
    assert [m.kind for m in letters_of(rt, "UNTOLD") if m.recipient_role == "school"] == [untold.kind]
    ended = letter_of(rt, "TOLD", "school_involvement_ended", "school")
    rt.clock.now = NOW  # type: ignore[attr-defined]
    text = str(show_message(rt, SYSTEM, ended.id, "text").content)
    for said in (
        "OUR SOCIAL WORKER IS NO LONGER INVOLVED",
        "Dear Lead Example,",
        "Child Example",
        "1 May 2016",
        "Our social worker is no longer involved.",
    ):
        assert said in text
    for unsaid in (
        "Parent Example",
        "no further action",
        "assessment",
        "16A",
        "neglect",
        "Referrer Example",
        "Test Street",
    ):
        assert unsaid not in text, unsaid


def test_a_school_never_told_hears_nothing_when_the_case_closes(rt: Runtime) -> None:
    take(rt, *nfa("NFA", person("P1")), event("case.closed", "NFA", at("09:00"), id="NFA-c", reason="NFA"))
    assert [m.kind for m in letters_of(rt, "NFA") if m.recipient_role == "school"] == []
