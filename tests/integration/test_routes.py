"""The routes real cases take (issue 8), walked through the real intake on SQLite and PostgreSQL:
a re-referral while letters still wait, events arriving late or out of order, a decision
amended, the section 47 route, a step-down to early help, transfers and later risks, and a
child's death. Each test reads what the letters say, not only which rows exist.

Dates: Tuesday 3 November 2026 is "now"; the weeks before it have no bank holidays.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from config.wiring import Runtime
from messaging.compose import order_of
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
    sweep_and_deliver,
)
from workflow.model import Case, ReceivedEvent

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # Tuesday, office hours
NEIGHBOUR = {"source": "1B", "name": "Nan Neighbour", "email": "nan@home.example"}


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = letter_runtime(database_url, tmp_path / "var", MovableClock(NOW))
    yield runtime
    runtime.close()


def take(rt: Runtime, *events: dict[str, Any], now: datetime = NOW) -> None:
    report = import_events(rt, *events, now=now.isoformat())
    assert report.ok, report.rejected


def refused(rt: Runtime, *events: dict[str, Any]) -> list[str]:
    return list(import_events(rt, *events, now=NOW.isoformat()).rejected)


def kinds_of_rejections(rt: Runtime) -> list[str | None]:
    with rt.db.transaction() as session:
        rows = session.scalars(select(ReceivedEvent).where(ReceivedEvent.status == "rejected"))
        return [r.rejection_kind for r in rows]


def text_of(rt: Runtime, message: Any) -> str:
    """The letter as its recipient would read it (text and HTML), rendered as it would be sent."""
    with rt.db.transaction() as session:
        letter, _ = rt.letters.render(session, order_of(message))
    return " ".join(f"{letter.subject}\n{letter.text}\n{letter.html}".split())


def email_of(rt: Runtime, message: Any) -> str:
    with rt.db.transaction() as session:
        return rt.letters.email_address(session, order_of(message))


# 1. Episodes: a letter is filled from the episode that made it owed.


def test_a_re_referral_never_changes_a_waiting_letter_of_the_earlier_episode(rt: Runtime) -> None:
    family = [person("P1", name="Pat Parent", preferred_channel="email", email="pat@family.example")]
    take(
        rt,
        referral("C1", "2026-10-26", id="one", referrer=NEIGHBOUR, household=family),
        event("decision.made", "C1", "2026-10-26T11:00:00+00:00", outcome="nfa"),
        event("case.closed", "C1", "2026-10-27", reason="NFA"),
        # Referred again, by the school, before any letter of the first episode went.
        referral("C1", "2026-11-02", id="two", household=family),
    )
    acks = [m for m in letters_of(rt, "C1") if m.kind == "referrer_acknowledgement"]
    first, second = acks
    assert (first.payload["episode"], second.payload["episode"]) == (1, 2)
    told_neighbour = text_of(rt, first)
    assert "Nan Neighbour" in told_neighbour
    for never in ("Referrer Example", "Lead Example", "Test Primary", "ref@school.example"):
        assert never not in told_neighbour  # the school's referral is not hers to hear of
    assert email_of(rt, first) == "nan@home.example"
    assert "Referrer Example" in text_of(rt, second) and email_of(rt, second) == "ref@school.example"

    # The first episode's family letters still go, and say the first episode's decision.
    closing = letter_of(rt, "C1", "family_closing_letter", "P1")
    assert closing.payload["episode"] == 1
    assert "no further action" in text_of(rt, closing)
    outcomes = sweep_and_deliver(rt, NOW)
    by_id = {m.id: m for m in letters_of(rt, "C1")}
    assert outcomes[first.id] == "sent" and by_id[first.id].address == "nan@home.example"
    assert outcomes[closing.id] == "sent"
    assert by_id[letter_of(rt, "C1", "family_decision", "P1").id].status == "sent"


def test_a_family_member_of_an_earlier_episode_is_written_to_at_their_address_now(rt: Runtime) -> None:
    take(
        rt,
        referral("C1", "2026-10-26", household=[person("P1", address="1 Old Road, Borough")]),
        event("decision.made", "C1", "2026-10-26T11:00:00+00:00", outcome="nfa"),
        event("case.closed", "C1", "2026-10-27", reason="NFA"),
        referral("C1", "2026-11-02", household=[person("P1", address="9 New Street, Borough")]),
    )
    closing = letter_of(rt, "C1", "family_closing_letter", "P1")
    said = text_of(rt, closing)
    assert "9 New Street" in said and "1 Old Road" not in said


# 2. Events take effect in the order they happened.


def test_an_older_strategy_discussion_arriving_late_never_rewinds_the_icpc_clock(rt: Runtime) -> None:
    take(
        rt,
        referral("C1", "2026-10-26"),
        event("decision.made", "C1", "2026-10-26T11:00:00+00:00", outcome="strategy"),
        event("strategy.held", "C1", "2026-10-28", icpc_required=True),
        event("strategy.held", "C1", "2026-10-30", icpc_required=True),
    )
    # 15 working days from Friday 30 October: Friday 20 November.
    assert clocks_by_name(rt, "C1", NOW.isoformat())["icpc"]["due"] == "2026-11-20"
    late = refused(rt, event("strategy.held", "C1", "2026-10-29", icpc_required=True))
    assert late == [
        "line 1: field at: strategy.held dated 2026-10-29T10:00:00+00:00 is older than the last change "
        "of case C1 (2026-10-30T10:00:00+00:00): events take effect in the order they happened, and an "
        "older one cannot move the case back"
    ]
    assert kinds_of_rejections(rt) == ["refused"]  # for good: waiting will not make it right
    assert clocks_by_name(rt, "C1", NOW.isoformat())["icpc"]["due"] == "2026-11-20"


def test_a_late_fact_does_not_overwrite_a_newer_one_and_nothing_predates_its_episode(rt: Runtime) -> None:
    take(
        rt,
        referral("C1", "2026-10-26"),
        event("decision.made", "C1", "2026-10-26T11:00:00+00:00", outcome="assessment"),
        event("worker.allocated", "C1", "2026-10-30", worker="W1"),
        event("worker.allocated", "C1", "2026-10-28", worker="W2"),  # older, arrived later
    )
    assert case_view(rt, "C1", NOW.isoformat())["worker"] == "W1"
    [superseded] = history_of(rt, "C1", "fact.superseded")
    assert superseded.detail == {"type": "worker.allocated", "fact": "worker"}

    before = refused(rt, event("household.updated", "C1", "2026-10-25", household=[person("P9")]))
    assert before == [
        "line 1: field at: dated 2026-10-25T10:00:00+00:00, before the referral that opened this "
        "episode of case C1 (2026-10-26T10:00:00+00:00): it belongs to an earlier episode"
    ]
    assert kinds_of_rejections(rt) == ["refused"]


# 3. A decision recorded in error, amended.


def test_an_amended_decision_cancels_what_was_not_sent_and_owes_the_new_outcomes_letters(rt: Runtime) -> None:
    take(
        rt,
        referral("C1", "2026-11-02"),
        event("decision.made", "C1", "2026-11-02T11:00:00+00:00", id="wrong", outcome="nfa"),
        event(
            "decision.amended",
            "C1",
            "2026-11-02T15:00:00+00:00",
            id="right",
            outcome="assessment",
            reason="recorded against the wrong referral",
        ),
    )
    status = {(m.kind, m.source_event): m.status for m in letters_of(rt, "C1")}
    assert status[("referrer_outcome", "wrong")] == "cancelled"
    assert status[("family_decision", "wrong")] == "cancelled"
    assert status[("referrer_outcome", "right")] == "queued"
    assert status[("school_worker_involved", "right")] == "queued"
    new_outcome = next(
        m for m in letters_of(rt, "C1") if (m.source_event, m.recipient) == ("right", "referrer")
    )
    told = text_of(rt, new_outcome).lower()
    assert "assessment" in told and "no further action" not in told
    clocks = clocks_by_name(rt, "C1", NOW.isoformat())
    assessment = clocks["assessment"]
    assert (assessment["status"], assessment["counted_from"]) == ("running", "2026-11-02")
    view = case_view(rt, "C1", NOW.isoformat())
    assert (view["state"], view["decision"]) == ("assessment", "assessment")
    cancelled = [a for m in letters_of(rt, "C1") for a in audit_of(rt, m.id) if a[0] == "cancelled"]
    assert {a[2] for a in cancelled} == {
        "the decision was amended to assessment: recorded against the wrong referral"
    }


def test_letters_already_sent_stay_sent_when_the_decision_is_amended(rt: Runtime) -> None:
    take(
        rt,
        referral("C1", "2026-11-02"),
        event("decision.made", "C1", "2026-11-02T11:00:00+00:00", id="first", outcome="early_help"),
    )
    sweep_and_deliver(rt, NOW)
    take(
        rt,
        event(
            "decision.amended",
            "C1",
            "2026-11-03T09:00:00+00:00",
            id="second",
            outcome="strategy",
            reason="new information from the police",
        ),
    )
    status = {(m.kind, m.source_event): m.status for m in letters_of(rt, "C1")}
    assert status[("referrer_outcome", "first")] == "sent"
    assert status[("family_decision", "first")] == "sent"
    assert status[("referrer_outcome", "second")] == "queued"
    same = refused(
        rt, event("decision.amended", "C1", "2026-11-03T09:30:00+00:00", outcome="strategy", reason="again")
    )
    assert same == [
        "line 1: field outcome: the decision on case C1 is already strategy: there is nothing to amend"
    ]


def test_parked_events_are_not_retried_for_ever(rt: Runtime) -> None:
    early = NOW - timedelta(days=40)
    report = import_events(
        rt,
        event("decision.made", "C9", (early - timedelta(days=1)).isoformat(), outcome="nfa"),
        now=early.isoformat(),
    )
    assert kinds_of_rejections(rt) == ["unknown_case"] and len(report.rejected) == 1
    take(rt, referral("C1", "2026-11-02"))  # any later import retries what waits, and gives up
    assert kinds_of_rejections(rt) == ["expired"]
    with rt.db.transaction() as session:
        row = session.scalar(select(ReceivedEvent).where(ReceivedEvent.status == "rejected"))
        assert row is not None and "no longer retried" in (row.reason or "")


# 4. Section 47.


def test_the_section_47_route_assesses_from_the_referral_and_on_a_plan(rt: Runtime) -> None:
    take(
        rt,
        referral("C1", "2026-10-05"),
        event("decision.made", "C1", "2026-10-05T11:00:00+00:00", outcome="strategy"),
    )
    clocks = clocks_by_name(rt, "C1", "2026-10-06")
    assert (clocks["assessment"]["status"], clocks["assessment"]["counted_from"]) == ("running", "2026-10-05")
    take(
        rt,
        event("strategy.held", "C1", "2026-10-06", icpc_required=True),
        event("icpc.held", "C1", "2026-10-20", outcome="cp_plan"),
        # The assessment completes on the plan, and tells of domestic abuse.
        event("assessment.completed", "C1", "2026-10-21", outcome="strategy", factors=["3A", "21"]),
        event("strategy.held", "C1", "2026-10-22", icpc_required=False),  # a new worry, on the plan
        event("review.held", "C1", "2026-10-23", outcome="nfa"),
        event("case.closed", "C1", "2026-10-26", reason="RC8"),
    )
    assert case_view(rt, "C1", NOW.isoformat())["state"] == "closed"
    assert clocks_by_name(rt, "C1", NOW.isoformat())["assessment"]["status"] == "met"
    closing = letter_of(rt, "C1", "family_closing_letter", "P1")
    assert closing.status == "held"
    assert closing.payload["hold_reasons"] == ["domestic abuse: a worker must review every letter"]


def test_a_strategy_discussion_during_an_assessment_and_on_a_child_in_need_plan(rt: Runtime) -> None:
    take(
        rt,
        referral("C1", "2026-10-05"),
        event("decision.made", "C1", "2026-10-05T11:00:00+00:00", outcome="assessment"),
        event("strategy.held", "C1", "2026-10-07", icpc_required=True),
    )
    assert case_view(rt, "C1", NOW.isoformat())["state"] == "icpc_pending"
    take(
        rt,
        event("icpc.held", "C1", "2026-10-20", outcome="cin_plan"),
        event("strategy.held", "C1", "2026-10-27", icpc_required=True),
    )
    assert case_view(rt, "C1", NOW.isoformat())["state"] == "icpc_pending"
    # The assessment is still the one started on 5 October: its clock never restarted.
    assert clocks_by_name(rt, "C1", NOW.isoformat())["assessment"]["counted_from"] == "2026-10-05"


# 5. Step-down to early help.


def test_a_step_down_closed_later_says_early_help_not_no_further_action(rt: Runtime) -> None:
    take(
        rt,
        referral("C1", "2026-10-26"),
        event("decision.made", "C1", "2026-10-26T11:00:00+00:00", outcome="early_help"),
        event("case.closed", "C1", "2026-10-28", reason="NFA"),
    )
    said = text_of(rt, letter_of(rt, "C1", "family_closing_letter", "P1"))
    assert "early help services are the right support" in said
    assert "no further action" not in said.lower()


def test_a_household_is_not_sent_a_decision_and_a_closing_letter_the_same_day(rt: Runtime) -> None:
    take(
        rt,
        referral("C1", "2026-11-02T09:00:00+00:00"),
        event("decision.made", "C1", "2026-11-02T11:00:00+00:00", outcome="early_help"),
        event("case.closed", "C1", "2026-11-02T15:00:00+00:00", reason="NFA"),
    )
    kinds = [m.kind for m in letters_of(rt, "C1") if m.recipient_role == "family"]
    assert kinds == ["family_decision"]
    [not_made] = [h.detail for h in history_of(rt, "C1", "letter.not_made")]
    assert not_made == {
        "duty": "family_closing_letter",
        "why": "the family_decision letter owed the same day already tells the household",
    }
    assert clocks_by_name(rt, "C1", NOW.isoformat())["family_closing_letter"]["status"] == "cancelled"


# 6. New events.


def test_a_transfer_moves_the_case_to_its_new_team(rt: Runtime) -> None:
    take(
        rt,
        referral("C1", "2026-11-02"),
        event("worker.allocated", "C1", "2026-11-02T10:30:00+00:00", worker="W1"),
        event("decision.made", "C1", "2026-11-02T11:00:00+00:00", outcome="assessment"),
        event("case.transferred", "C1", "2026-11-02T14:00:00+00:00", team="assessment-south"),
    )
    view = case_view(rt, "C1", NOW.isoformat())
    assert (view["team"], view["worker"]) == ("assessment-south", None)
    said = text_of(rt, letter_of(rt, "C1", "school_worker_involved", "school"))
    assert "Assessment South" in said and "front-door" not in said
    # A move recorded late, older than an allocation in the new team, keeps that allocation.
    take(
        rt,
        event("worker.allocated", "C1", "2026-11-02T16:00:00+00:00", worker="S7"),
        event("case.transferred", "C1", "2026-11-02T15:00:00+00:00", team="assessment-south"),
    )
    assert case_view(rt, "C1", NOW.isoformat())["worker"] == "S7"


def test_a_risk_reported_later_holds_every_waiting_letter_with_its_reason(rt: Runtime) -> None:
    take(
        rt,
        referral("C1", "2026-11-02"),
        event("decision.made", "C1", "2026-11-02T11:00:00+00:00", outcome="nfa"),
        event("flags.updated", "C1", "2026-11-02T12:00:00+00:00", flags=["marac"]),
    )
    letters = letters_of(rt, "C1")
    assert {m.status for m in letters} == {"held"}
    assert all(
        m.payload["hold_reasons"] == ["the case was discussed at MARAC: a worker must review every letter"]
        for m in letters
    )
    assert refused(rt, event("flags.updated", "C1", "2026-11-02T13:00:00+00:00", flags=["vip"])) == [
        "line 1: field flags: unknown flags: vip (known: domestic_abuse, marac, protection_order, "
        "do_not_disclose, restricted)"
    ]
    take(
        rt,
        event(
            "child.updated",
            "C1",
            "2026-11-02T14:00:00+00:00",
            school={"name": "New School", "dsl_name": "New Lead", "email": "lead@new.example"},
        ),
    )
    with rt.db.transaction() as session:
        child = session.scalars(select(Case.child).where(Case.ref == "C1")).one()
    assert child["school"] == {
        "name": "New School",
        "dsl_name": "New Lead",
        "email": "lead@new.example",
        "address": None,
    }
    assert child["name"] == "Child Example"  # only the fields given change


# 10. A child's death holds everything, even what was approved before.


def test_after_a_childs_death_no_letter_goes_without_a_person_reading_it(rt: Runtime) -> None:
    import_staff(rt, *front_door_staff())
    take(
        rt,
        referral("C1", "2026-11-02", household=[person("P1"), person("P2", name="Other Parent")]),
        event("worker.allocated", "C1", "2026-11-02T10:30:00+00:00", worker="W1"),
        event("decision.made", "C1", "2026-11-02T11:00:00+00:00", outcome="assessment"),
        event("flags.updated", "C1", "2026-11-02T11:30:00+00:00", flags=["protection_order"]),
    )
    ack = letter_of(rt, "C1", "referrer_acknowledgement", "referrer")
    approve(rt, ack.id, "W1", "checked: the school may be told", NOW - timedelta(hours=2))
    take(rt, event("case.closed", "C1", "2026-11-03T08:00:00+00:00", reason="RC2"))
    sent = sweep_and_deliver(rt, NOW)  # a reminder digest to the worker may go; no letter does
    letters = letters_of(rt, "C1")
    assert not set(sent) & {m.id for m in letters}
    assert {m.status for m in letters} == {"held"}
    closing = [m for m in letters if m.kind == "family_closing_letter"]
    assert len(closing) == 2
    for letter in closing:
        assert (
            "the child died: a worker must review every letter before anything is sent"
            in (letter.payload["hold_reasons"])
        )
    reheld = next(m for m in letters if m.id == ack.id)
    assert reheld.payload["approval_lapsed"]["by"] == "W1" and "approved_by" not in reheld.payload


def test_a_letter_to_a_child_who_referred_themselves_waits_for_a_worker(rt: Runtime) -> None:
    child = {"source": "1C", "name": "Child Example", "address": "1 Test Street, Borough"}
    take(rt, referral("C1", "2026-11-02", referrer=child))
    ack = letter_of(rt, "C1", "referrer_acknowledgement", "referrer")
    assert ack.status == "held"
    assert ack.payload["hold_reasons"] == [
        "the child referred themselves: a worker decides whether and how a letter reaches them"
    ]


def test_a_staff_digest_is_dated_by_the_same_clock_as_the_letters(rt: Runtime) -> None:
    from email import message_from_bytes, policy
    from email.utils import parsedate_to_datetime

    import_staff(rt, *front_door_staff())
    take(
        rt,
        referral("C1", "2026-10-26", referrer={"source": "1A"}),
        event("worker.allocated", "C1", "2026-10-26T11:00:00+00:00", worker="W1"),
    )
    sweep_and_deliver(rt, NOW)
    mails = [
        message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in rt.settings.outbox_dir.rglob("*.eml")
    ]
    assert any(str(m["Subject"]).startswith("caseloop: ") for m in mails)  # the worker's digest
    for mail in mails:  # the digest and the letters alike
        assert parsedate_to_datetime(str(mail["Date"])) == NOW
