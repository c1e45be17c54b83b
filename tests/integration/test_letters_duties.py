"""Letter duties (issue 4, parts 1 and 4): which transition owes which letter to whom, once, and the
safety holds, reviews and audit trail around them. On SQLite and PostgreSQL, through the real intake.

Emails go to the outbox folder and posted letters to the print folder (no SMTP or Notify here).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from config.wiring import Runtime
from messaging.outbox import OutboxAudit
from services import intake
from services.actors import SYSTEM
from services.letters import approve_letter
from services.people import identify
from tests.factories import (
    MovableClock,
    approve,
    audit_of,
    case_view,
    clocks_by_name,
    event,
    front_door_staff,
    history_of,
    import_events,
    import_staff,
    letter_of,
    letter_runtime,
    letters_of,
    person,
    referral,
    reject,
    staff_row,
    sweep_and_deliver,
)
from workflow.errors import Conflict, Forbidden, Invalid, NotFound
from workflow.model import ReceivedEvent

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # Tuesday, office hours
DA_HOLD = "domestic abuse: a worker must review every letter"


def at(hhmm: str, day: int = 3) -> str:
    return f"2026-11-{day:02d}T{hhmm}:00+00:00"


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = letter_runtime(database_url, tmp_path / "var", MovableClock(NOW))
    yield runtime
    runtime.close()


def take(rt: Runtime, *events: dict[str, Any]) -> None:
    report = import_events(rt, *events, now=NOW.isoformat())
    assert report.ok, report.rejected


def owed(rt: Runtime, case: str = "C1") -> list[tuple[str, str, str, str]]:
    """(kind, recipient, channel, status) of every letter of the case, oldest first."""
    return [(m.kind, m.recipient, m.channel, m.status) for m in letters_of(rt, case)]


def clock_status(rt: Runtime, name: str, case: str = "C1") -> str | None:
    found = clocks_by_name(rt, case, NOW.isoformat()).get(name)
    return None if found is None else found["status"]


def household() -> list[dict[str, Any]]:
    return [
        person("P1", name="Parent One"),
        person("P2", name="Parent Two", preferred_channel="email", email="p2@family.example"),
        person("P3", name="Unsafe Adult", safe_to_contact=False, address="9 Hidden Row"),
    ]


def to_closure(outcome: str = "assessment", case: str = "C1", **referral_fields: Any) -> list[dict[str, Any]]:
    """Referral, decision and closure of a case (RC8 after an assessment, else NFA). A referral
    closed at the referral stage is decided the day before (the same day, the decision letter
    would be the household's closing letter too)."""
    day = 3 if outcome == "assessment" else 2
    steps = [
        referral(case, at("08:00", day), id=f"{case}-ref", **referral_fields),
        event("decision.made", case, at("08:10", day), id=f"{case}-dec", outcome=outcome),
    ]
    if outcome == "assessment":
        steps.append(event("assessment.completed", case, at("08:20"), id=f"{case}-asm", outcome="nfa"))
    reason = "RC8" if outcome == "assessment" else "NFA"
    return [*steps, event("case.closed", case, at("08:30"), id=f"{case}-end", reason=reason)]


def test_each_transition_owes_its_letters_to_each_recipient(rt: Runtime) -> None:
    ref, decision, assessed, closed = to_closure(household=household())
    take(rt, ref)
    assert owed(rt) == [("referrer_acknowledgement", "referrer", "file", "queued")]
    take(rt, decision)
    assert owed(rt)[1:] == [
        ("referrer_outcome", "referrer", "file", "queued"),
        ("school_worker_involved", "school", "file", "queued"),
    ]
    take(rt, assessed, closed)
    assert owed(rt)[3:] == [
        ("family_closing_letter", "P1", "print", "queued"),
        ("family_closing_letter", "P2", "file", "queued"),
        ("referrer_closure_notice", "referrer", "file", "queued"),
    ]
    school = letter_of(rt, "C1", "school_worker_involved", "school")
    assert (school.recipient_role, school.address, school.idempotency_key, school.duty) == (
        "school",
        "dsl@school.example",
        "school_worker_involved:C1-dec:school",
        "school_worker_involved",
    )
    p1 = letter_of(rt, "C1", "family_closing_letter", "P1")
    assert (p1.recipient_role, p1.address, p1.payload["medium"]) == (
        "family",
        "1 Test Street, Borough",
        "post",
    )
    [not_made] = [h.detail for h in history_of(rt, "C1", "letter.not_made")]
    assert not_made == {"duty": "family_closing_letter", "why": "household member P3: not safe to contact"}


def test_no_further_action_tells_the_referrer_and_each_safe_member_but_not_the_school(rt: Runtime) -> None:
    take(rt, *to_closure("nfa", household=household()))
    assert owed(rt) == [
        ("referrer_acknowledgement", "referrer", "file", "queued"),
        ("referrer_outcome", "referrer", "file", "queued"),
        ("family_decision", "P1", "print", "queued"),
        ("family_decision", "P2", "file", "queued"),
        ("family_closing_letter", "P1", "print", "queued"),
        ("family_closing_letter", "P2", "file", "queued"),
        ("referrer_closure_notice", "referrer", "file", "queued"),
    ]
    assert [(h.detail["duty"], h.detail["why"]) for h in history_of(rt, "C1", "letter.not_made")] == [
        ("family_decision", "household member P3: not safe to contact"),
        ("family_closing_letter", "household member P3: not safe to contact"),
    ]
    assert all(m.address != "9 Hidden Row" for m in letters_of(rt, "C1"))


def test_a_member_of_the_public_who_referred_gets_an_acknowledgement_only(rt: Runtime) -> None:
    neighbour = {"source": "1A", "name": "Nan Relative", "email": "nan@home.example"}
    take(rt, *to_closure("nfa", referrer=neighbour))
    assert [(k, r) for k, r, _, _ in owed(rt)] == [
        ("referrer_acknowledgement", "referrer"),
        ("family_decision", "P1"),
        ("family_closing_letter", "P1"),
    ]
    clocks = clocks_by_name(rt, "C1", NOW.isoformat())
    assert "referrer_outcome" not in clocks and "referrer_closure_notice" not in clocks


def test_replays_retries_and_repeated_sweeps_make_and_send_each_letter_once(
    rt: Runtime, tmp_path: Path
) -> None:
    ref, decision = to_closure()[:2]
    early = import_events(rt, decision, now=NOW.isoformat(), source="early.jsonl")
    assert len(early.rejected) == 1 and owed(rt) == []  # the decision came before its referral
    late = import_events(rt, ref, now=NOW.isoformat(), source="late.jsonl")
    assert (late.accepted, late.retried_accepted) == (1, 1)
    first = owed(rt)
    assert [k for k, *_ in first] == [
        "referrer_acknowledgement",
        "referrer_outcome",
        "school_worker_involved",
    ]
    for source in ("early.jsonl", "late.jsonl"):  # the same files sent again
        assert import_events(rt, decision, ref, now=NOW.isoformat(), source=source).accepted == 0
    assert intake.retry_rejected(rt, SYSTEM, NOW).accepted == 0
    assert owed(rt) == first
    ids = [m.id for m in letters_of(rt, "C1")]
    assert sweep_and_deliver(rt, NOW) == dict.fromkeys(ids, "sent")
    assert sweep_and_deliver(rt, NOW) == {}
    assert sweep_and_deliver(rt, NOW + timedelta(minutes=30)) == {}  # past the re-dispatch window
    assert [rt.deliverer().deliver(i) for i in ids] == ["skipped: already sent"] * 3
    assert [[a for a, _, _ in audit_of(rt, i)] for i in ids] == [["sent"]] * 3
    assert [m.attempts for m in letters_of(rt, "C1")] == [1, 1, 1]
    assert sorted(p.name for p in (tmp_path / "var" / "outbox").iterdir()) == sorted(
        f"outbox-{i}.eml" for i in ids
    )
    with rt.db.transaction() as session:
        fulfilled = session.scalars(
            select(ReceivedEvent.event_id).where(ReceivedEvent.type == "duty.fulfilled")
        )
        assert sorted(str(f) for f in fulfilled) == [  # each duty fulfilled once
            "caseloop:referrer_acknowledgement:C1-ref",
            "caseloop:referrer_outcome:C1-dec",
            "caseloop:school_worker_involved:C1-dec",
        ]


def test_a_duty_clock_is_met_when_the_last_of_its_letters_is_sent(rt: Runtime) -> None:
    take(rt, *to_closure(household=household()))
    assert clock_status(rt, "family_closing_letter") == "running"
    p1, p2 = (letter_of(rt, "C1", "family_closing_letter", p).id for p in ("P1", "P2"))
    assert rt.deliverer().deliver(p1) == "sent"
    assert clock_status(rt, "family_closing_letter") == "running"  # P2 has not been told yet
    assert rt.deliverer().deliver(p2) == "sent"
    assert clock_status(rt, "family_closing_letter") == "met"
    assert clock_status(rt, "referrer_closure_notice") == "running"


def test_a_duty_the_council_records_as_done_cancels_its_unsent_letters(rt: Runtime) -> None:
    take(rt, *to_closure(household=household()))
    closing = [letter_of(rt, "C1", "family_closing_letter", p).id for p in ("P1", "P2")]
    notice = letter_of(rt, "C1", "referrer_closure_notice", "referrer").id
    take(rt, event("duty.fulfilled", "C1", at("09:00"), id="cms-77", duty="family_closing_letter"))
    assert [m.status for m in letters_of(rt, "C1") if m.id in closing] == ["cancelled", "cancelled"]
    assert audit_of(rt, closing[0]) == [("cancelled", "caseloop", "duty recorded as done by event cms-77")]
    assert clock_status(rt, "family_closing_letter") == "met"
    delivered = sweep_and_deliver(rt, NOW)
    assert set(delivered) & set(closing) == set() and delivered[notice] == "sent"


@pytest.mark.parametrize(
    ("why", "fields", "factors"),
    [
        (DA_HOLD, {"flags": ["domestic_abuse"]}, []),
        (DA_HOLD, {}, ["3A"]),
        (
            "a household member's address is confidential",
            {"household": [person("P1"), person("P2", confidential_address=True, address="Refuge, Secret")]},
            [],
        ),
    ],
    ids=["flag", "factor-3A", "confidential-address"],
)
def test_a_case_needing_review_holds_every_letter(
    rt: Runtime, why: str, fields: Any, factors: list[str]
) -> None:
    steps = to_closure(**fields)
    steps[2] = event("assessment.completed", "C1", at("08:20"), id="C1-asm", outcome="nfa", factors=factors)
    take(rt, *steps)
    assessed = datetime.fromisoformat(at("08:20"))
    # With factors, domestic abuse is known from the assessment on: the closing letters are held.
    checked = [m for m in letters_of(rt, "C1") if not factors or m.created_at >= assessed]
    assert {m.kind for m in checked} >= {"family_closing_letter", "referrer_closure_notice"}
    assert [(m.status, m.payload["hold_reasons"]) for m in checked] == [("held", [why])] * len(checked)
    assert [audit_of(rt, m.id) for m in checked] == [[("held", "caseloop", why)]] * len(checked)
    assert set(sweep_and_deliver(rt, NOW)) & {m.id for m in checked} == set()  # never sent by itself


def test_letters_unsent_when_domestic_abuse_becomes_known_are_not_sent_automatically(rt: Runtime) -> None:
    # A day's export arrives as one file: the letters owed by the referral and the decision are
    # made before the assessment records domestic abuse (3A), and the sweep runs after all of it.
    steps = to_closure()[:3]
    steps[2] = event("assessment.completed", "C1", at("08:20"), id="C1-asm", outcome="nfa", factors=["3A"])
    take(rt, *steps)
    assert case_view(rt, "C1", NOW.isoformat())["flags"] == ["domestic_abuse"]
    assert sweep_and_deliver(rt, NOW) == {}  # nothing goes without a worker's review...
    assert {m.kind: m.status for m in letters_of(rt, "C1")} == {  # ...and each waits in the queue
        "referrer_acknowledgement": "held",
        "referrer_outcome": "held",
        "school_worker_involved": "held",
    }


def held_case(rt: Runtime, worker: str = "W1", members: int = 1) -> list[int]:
    """A domestic-abuse case allocated to ``worker`` and closed: its held closing letters' ids."""
    people = [person(f"P{n}", name=f"Parent {n}") for n in range(1, members + 1)]
    steps = to_closure(flags=["domestic_abuse"], household=people)
    take(rt, *steps[:1], event("worker.allocated", "C1", at("08:05"), id="C1-w", worker=worker), *steps[1:])
    return [letter_of(rt, "C1", "family_closing_letter", p["id"]).id for p in people]


def test_only_the_allocated_worker_the_team_manager_or_its_service_manager_may_approve(rt: Runtime) -> None:
    import_staff(
        rt,
        *front_door_staff(),
        staff_row("SM9", "service_manager", team="east"),
        staff_row("X1", team="east"),
        staff_row("X2", team="east"),
    )
    held_case(rt, worker="X2")
    rows = [m.id for m in letters_of(rt, "C1")]
    assert len(rows) == 5
    # Someone who may not see the case hears what they would of a letter that does not exist.
    refusals: list[tuple[str, type[Exception], str]] = [
        ("X1", NotFound, f"no outbox message {rows[0]}"),
        # A service manager over other teams no longer sees the case at all (issue 9).
        ("SM9", NotFound, f"no outbox message {rows[0]}"),
        ("NOBODY", Forbidden, "NOBODY is not a known member of staff"),
        # A colleague in the team sees only the cases allocated to them.
        ("W2", NotFound, f"no outbox message {rows[0]}"),
    ]
    for staff, error, message in refusals:
        with pytest.raises(error) as refused:
            approve(rt, rows[0], staff, None, NOW)
        assert str(refused.value) == message
    with pytest.raises(Invalid) as refused:
        reject(rt, rows[0], "X2", "  ", NOW)
    assert str(refused.value) == "a rejection needs a reason"
    with pytest.raises(Invalid) as refused:
        approve_letter(rt, identify(rt, "X2"), rows[0], "  ", NOW)
    assert str(refused.value) == "an approval needs a reason: say why the letter is safe to send"
    approve(rt, rows[0], "X2", "allocated, other team", NOW)  # the allocated worker
    approve(rt, rows[1], "TM1", "team manager", NOW)
    approve(rt, rows[2], "SM1", "the team's service manager", NOW)
    reject(rt, rows[3], "TM1", "team manager: not safe to send", NOW)
    with pytest.raises(Conflict) as refused:
        approve(rt, rows[0], "X2", None, NOW)
    assert str(refused.value) == f"outbox {rows[0]} is queued, not held: only held letters are reviewed"
    assert [audit_of(rt, i)[1:] for i in rows] == [
        [("approved", "X2", "allocated, other team")],
        [("approved", "TM1", "team manager")],
        [("approved", "SM1", "the team's service manager")],
        [("rejected", "TM1", "team manager: not safe to send")],
        [],
    ]
    assert [m.status for m in letters_of(rt, "C1")] == ["queued", "queued", "queued", "rejected", "held"]
    assert [h.detail["by"] for h in history_of(rt, "C1", "letter.approved")] == ["X2", "TM1", "SM1"]


def test_a_rejected_letter_is_never_sent_and_its_duty_stays_owed(rt: Runtime) -> None:
    import_staff(rt)
    [closing] = held_case(rt)
    reject(rt, closing, "W1", "the mother asked for no post", NOW)
    for hours in (0, 1, 30):
        assert closing not in sweep_and_deliver(rt, NOW + timedelta(hours=hours))
    assert rt.deliverer().deliver(closing) == "skipped: already rejected"
    assert [a for a, _, _ in audit_of(rt, closing)] == ["held", "rejected"]
    assert clock_status(rt, "family_closing_letter") == "running"


@pytest.mark.parametrize("reject_first", [True, False], ids=["rejected-then-sent", "sent-then-rejected"])
def test_a_rejected_letter_keeps_its_duty_owed_whatever_its_siblings_do(
    rt: Runtime, reject_first: bool
) -> None:
    # reject_letter: "The duty it served stays owed until it is met another way."
    import_staff(rt)
    p1, p2 = held_case(rt, members=2)
    approve(rt, p1, "W1", "safe", NOW)
    if reject_first:
        reject(rt, p2, "W1", "not safe", NOW)
    assert rt.deliverer().deliver(p1) == "sent"
    if not reject_first:
        reject(rt, p2, "W1", "not safe", NOW)
    assert clock_status(rt, "family_closing_letter") == "running"


def test_the_audit_trail_cannot_be_changed_or_deleted(rt: Runtime) -> None:
    held_case(rt)
    with rt.db.transaction() as session:
        before = session.scalar(select(func.count()).select_from(OutboxAudit))
    assert before == 5
    for sql in ("UPDATE outbox_audit SET note = 'rewritten', by = 'someone'", "DELETE FROM outbox_audit"):
        with pytest.raises(DBAPIError, match="append-only"), rt.db.engine.begin() as conn:
            conn.execute(text(sql))
    with rt.db.transaction() as session:
        kept = session.scalars(select(OutboxAudit.note).distinct()).all()
    assert list(kept) == [DA_HOLD]
