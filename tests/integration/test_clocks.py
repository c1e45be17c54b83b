"""Statutory clocks (issue 2, part 5) on both databases, with due dates worked out by hand.

2026 England bank holidays: 1 Jan, 3 Apr, 6 Apr, 4 May, 25 May, 31 Aug, 25 Dec, 28 Dec.
Counting rule: the start date is day 0; the due date is the Nth working day after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import select

from config.settings import DEFAULT_POLICY_FILE, Settings
from config.wiring import Runtime, build_runtime
from tests.factories import clocks_by_name, event, history_of, import_events, instant, referral, update_clocks
from workflow.clocks import Rulebook
from workflow.errors import PolicyError
from workflow.model import Case, ClockRow, ReceivedEvent
from workflow.policy import parse_policy

NOW = "2026-09-01"


def stored(rt: Runtime, case: str) -> dict[str, ClockRow]:
    """The case's clock rows as the database holds them (no display-time breach), newest last."""
    with rt.db.transaction() as session:
        rows = session.scalars(
            select(ClockRow)
            .join(Case, Case.id == ClockRow.case_id)
            .where(Case.ref == case)
            .order_by(ClockRow.episode, ClockRow.seq)
        )
        return {r.name: r for r in rows}


def rulebook_with(change: Callable[[dict[str, Any]], None]) -> Rulebook:
    """The shipped policy with ``change`` applied, as a council would edit config/policy.yaml."""
    data = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    change(data)
    return Rulebook.build(parse_policy(data), ZoneInfo("Europe/London"))


def set_goal(name: str, goal: dict[str, int]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        next(c for c in data["clocks"] if c["name"] == name)["goal"] = goal

    return change


def ok(rt: Runtime, *events: dict[str, Any], now: str = NOW) -> None:
    report = import_events(rt, *events, now=now)
    assert report.ok, report.rejected


def test_met_and_met_late_including_easter_and_local_time(runtime: Runtime) -> None:
    ok(
        runtime,
        referral("C1", "2026-03-02"),
        event("decision.made", "C1", "2026-03-03T23:30:00+00:00", outcome="nfa"),  # 23:30 GMT: 3 March
        referral("C2", "2026-03-02"),
        event("decision.made", "C2", "2026-03-04", outcome="nfa"),
        referral("C3", "2026-04-02"),  # Thursday before Easter: 3 and 6 April do not count
        event("decision.made", "C3", "2026-04-07", outcome="nfa"),
        referral("C4", "2026-06-01"),
        event("decision.made", "C4", "2026-06-02T23:30:00+00:00", outcome="nfa"),  # 00:30 BST, 3 June
    )
    seen = {ref: clocks_by_name(runtime, ref, NOW)["decision"] for ref in ("C1", "C2", "C3", "C4")}
    assert {ref: (c["due"], c["stopped"], c["status"]) for ref, c in seen.items()} == {
        "C1": ("2026-03-03", "2026-03-03", "met"),
        "C2": ("2026-03-03", "2026-03-04", "met_late"),
        "C3": ("2026-04-07", "2026-04-07", "met"),
        "C4": ("2026-06-02", "2026-06-03", "met_late"),
    }


def test_a_running_clock_is_breached_by_tick_only_after_its_due_date(runtime: Runtime) -> None:
    ok(runtime, referral("C1", "2026-04-02"), now="2026-04-02")
    on_due_day = update_clocks(runtime, instant("2026-04-07"))
    assert (on_due_day.recalculated, on_due_day.breached) == (0, 0)
    assert stored(runtime, "C1")["decision"].status == "running"

    after = update_clocks(runtime, instant("2026-04-08"))
    assert after.breached == 2  # decision and referrer acknowledgement, both due 7 April
    rows = stored(runtime, "C1")
    assert {n: (r.due_on.isoformat(), r.status) for n, r in rows.items()} == {
        "decision": ("2026-04-07", "breached"),
        "referrer_acknowledgement": ("2026-04-07", "breached"),
    }
    assert len(history_of(runtime, "C1", "clock.breached")) == 2
    assert update_clocks(runtime, instant("2026-04-09")).breached == 0

    ok(runtime, event("decision.made", "C1", "2026-04-09", outcome="nfa"), now="2026-04-09")
    assert stored(runtime, "C1")["decision"].status == "met_late"


def test_cancelled_by_closure_and_by_a_strategy_discussion_without_conference(runtime: Runtime) -> None:
    ok(
        runtime,
        referral("C1", "2026-03-02"),
        event("decision.made", "C1", "2026-03-03", outcome="assessment"),
        event("case.closed", "C1", "2026-03-10", reason="RC5"),
        referral("C2", "2026-03-02"),
        event("decision.made", "C2", "2026-03-03", outcome="strategy"),
        event("strategy.held", "C2", "2026-03-04", icpc_required=True),
        event("strategy.held", "C2", "2026-03-06", icpc_required=False),
    )
    one = clocks_by_name(runtime, "C1", "2026-03-11")
    assert (one["assessment"]["status"], one["assessment"]["stopped"]) == ("cancelled", "2026-03-10")
    assert (one["family_closing_letter"]["due"], one["family_closing_letter"]["status"]) == (
        "2026-03-17",
        "running",
    )
    two = clocks_by_name(runtime, "C2", "2026-03-09")
    assert (two["icpc"]["due"], two["icpc"]["status"], two["icpc"]["stopped"]) == (
        "2026-03-25",
        "cancelled",
        "2026-03-06",
    )
    # No conference: back to assessment, and that clock counts from the referral.
    assert (two["assessment"]["counted_from"], two["assessment"]["due"]) == ("2026-03-02", "2026-05-07")
    assert len(history_of(runtime, "C2", "clock.cancelled")) == 1


# A local clock a council may pause (the statutory ones never pause): counted like the
# assessment, so the arithmetic below is the assessment's.
LOCAL_CLOCK = {
    "name": "family_work",
    "label": "Local: the family's work plan agreed",
    "goal": {"working_days": 45},
    "counted_from": "referral",
    "starts": [{"event": "decision.made", "when": {"outcome": "assessment"}}],
    "stops": [{"event": "assessment.completed"}],
    "cancelled_by": [{"event": "case.closed"}],
    "pausable": True,
}


@pytest.fixture
def local_runtime(runtime: Runtime, tmp_path: Path) -> Iterator[Runtime]:
    """The same database, under the shipped policy plus the pausable local clock."""
    data = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    data["clocks"].append(LOCAL_CLOCK)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(data), encoding="utf-8")
    rt = build_runtime(Settings(database_url=runtime.settings.database_url, policy_file=policy))
    yield rt
    rt.close()


def test_pause_and_resume_push_the_due_date_by_the_working_days_paused(local_runtime: Runtime) -> None:
    runtime = local_runtime
    ok(
        runtime,
        referral("C1", "2026-03-02"),
        event("decision.made", "C1", "2026-03-03", outcome="assessment"),
        event("clock.paused", "C1", "2026-03-10", clock="family_work", reason="child in hospital"),
    )
    paused = clocks_by_name(runtime, "C1", "2026-03-12")
    assert (paused["family_work"]["status"], paused["family_work"]["due"]) == ("paused", "2026-05-07")
    assert paused["assessment"]["status"] == "running"  # the statutory clock runs on
    # Paused Tue 10 March, resumed Tue 17 March: 11, 12, 13, 16, 17 March are 5 working days.
    ok(runtime, event("clock.resumed", "C1", "2026-03-17", clock="family_work"))
    resumed = clocks_by_name(runtime, "C1", "2026-03-18")["family_work"]
    assert (resumed["status"], resumed["due"]) == ("running", "2026-05-14")
    # Over Easter, Thu 2 April to Wed 8 April pauses only 7 and 8 April: 14 May + 2 = Mon 18 May.
    ok(
        runtime,
        event("clock.paused", "C1", "2026-04-02", clock="family_work", reason="family abroad"),
        event("clock.resumed", "C1", "2026-04-08", clock="family_work"),
    )
    assert clocks_by_name(runtime, "C1", NOW)["family_work"]["due"] == "2026-05-18"
    assert clocks_by_name(runtime, "C1", NOW)["assessment"]["due"] == "2026-05-07"
    (first_pause, _) = history_of(runtime, "C1", "clock.paused")
    assert first_pause.detail["reason"] == "child in hospital"

    refused = import_events(
        runtime,
        event("clock.paused", "C1", "2026-04-09", clock="assessment", reason="x"),
        event("clock.resumed", "C1", "2026-04-09", clock="family_work"),
        event("clock.paused", "C1", "2026-04-09", clock="icpc", reason="x"),
        event("clock.paused", "C1", "2026-04-09", clock="no_such_clock", reason="x"),
        now=NOW,
    )
    statutory = "is a statutory clock: it runs until its stop event, whatever happens"
    assert refused.rejected == [
        f"line 1: field clock: assessment {statutory}",
        "line 2: field clock: case C1 has no paused clock named 'family_work'",
        f"line 3: field clock: icpc {statutory}",
        "line 4: field clock: 'no_such_clock' is not a clock of the policy "
        "(pausable: failed_letter, family_work)",
    ]
    kinds = {r.reason.split(":")[0]: r.rejection_kind for r in rejected_rows(runtime)}
    assert kinds == {"line 1": "refused", "line 2": "not_allowed", "line 3": "refused", "line 4": "malformed"}


def test_a_pause_dated_before_its_clock_began_is_refused_for_good(local_runtime: Runtime) -> None:
    """It arrived first and waited; the clock it names began after its time, so it is refused
    when retried, never applied to the later clock."""
    runtime = local_runtime
    ok(runtime, referral("C1", "2026-03-02"))
    waiting = import_events(
        runtime, event("clock.paused", "C1", "2026-03-03", clock="family_work", reason="x"), now=NOW
    )
    assert waiting.rejected == ["line 1: field clock: case C1 has no running clock named 'family_work'"]
    ok(runtime, event("decision.made", "C1", "2026-03-04", outcome="assessment"))
    (row,) = rejected_rows(runtime)
    assert row.rejection_kind == "refused"
    assert "the clock it names did not exist at its time" in (row.reason or "")
    assert clocks_by_name(runtime, "C1", NOW)["family_work"]["status"] != "paused"
    # Refused for good: later imports do not retry it.
    ok(runtime, event("worker.allocated", "C1", "2026-03-05", worker="W1"))
    (again,) = rejected_rows(runtime)
    assert again.attempts == row.attempts


def test_no_policy_may_make_a_statutory_clock_pausable() -> None:
    data = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    next(c for c in data["clocks"] if c["name"] == "icpc")["pausable"] = True
    with pytest.raises(PolicyError, match="icpc is a statutory clock and cannot be pausable"):
        parse_policy(data)


def rejected_rows(rt: Runtime) -> list[ReceivedEvent]:
    with rt.db.transaction() as session:
        return list(
            session.scalars(
                select(ReceivedEvent).where(ReceivedEvent.status == "rejected").order_by(ReceivedEvent.id)
            )
        )


def test_the_icpc_clock_restarts_from_the_last_strategy_discussion(runtime: Runtime) -> None:
    ok(
        runtime,
        referral("C1", "2026-03-02"),
        event("decision.made", "C1", "2026-03-03", outcome="strategy"),
        event("strategy.held", "C1", "2026-03-04", icpc_required=True),
    )
    assert clocks_by_name(runtime, "C1", NOW)["icpc"]["due"] == "2026-03-25"
    ok(runtime, event("strategy.held", "C1", "2026-03-20", icpc_required=True))
    # From Fri 20 March: 9 working days to 2 April, Easter skipped, day 15 is Tue 14 April.
    icpc = clocks_by_name(runtime, "C1", NOW)["icpc"]
    assert (icpc["started"], icpc["counted_from"], icpc["due"], icpc["seq"]) == (
        "2026-03-20",
        "2026-03-20",
        "2026-04-14",
        1,
    )
    assert len(history_of(runtime, "C1", "clock.restarted")) == 1
    ok(runtime, event("icpc.held", "C1", "2026-04-14", outcome="cp_plan"))
    assert clocks_by_name(runtime, "C1", NOW)["icpc"]["status"] == "met"


def test_the_assessment_clock_counts_from_the_referral_date(runtime: Runtime) -> None:
    ok(
        runtime,
        referral("C1", "2026-03-02"),
        event("decision.made", "C1", "2026-03-05", outcome="assessment"),
        event("assessment.completed", "C1", "2026-05-07", outcome="cin_plan", factors=["16A"]),
        referral("C2", "2026-03-02"),
        event("decision.made", "C2", "2026-03-05", outcome="assessment"),
        event("assessment.completed", "C2", "2026-05-08", outcome="cin_plan", factors=["16A"]),
    )
    # 45 working days from Mon 2 March, skipping 3 and 6 April and 4 May: Thu 7 May.
    one = clocks_by_name(runtime, "C1", NOW)["assessment"]
    assert (one["started"], one["counted_from"], one["due"], one["status"]) == (
        "2026-03-05",
        "2026-03-02",
        "2026-05-07",
        "met",
    )
    assert clocks_by_name(runtime, "C2", NOW)["assessment"]["status"] == "met_late"


def test_review_clocks_first_at_three_months_then_every_six(runtime: Runtime) -> None:
    ok(
        runtime,
        referral("C1", "2025-11-03"),
        event("decision.made", "C1", "2025-11-04", outcome="strategy"),
        event("strategy.held", "C1", "2025-11-05", icpc_required=True),
        event("icpc.held", "C1", "2025-11-28", outcome="cp_plan"),
        event("review.held", "C1", "2026-02-20"),
        event("review.held", "C1", "2026-08-31"),
    )
    latest = clocks_by_name(runtime, "C1", NOW).values()
    seen = {(c["name"], c["seq"]): (c["counted_from"], c["due"], c["status"]) for c in latest}
    assert seen[("icpc", 1)] == ("2025-11-05", "2025-11-26", "met_late")
    # Calendar months, then the working day before a non-working day (issue 8): 28 Feb 2026 is a
    # Saturday; 31 Feb 2027 clamps to Sunday 28 Feb, so Friday 26 Feb.
    assert seen[("first_review", 1)] == ("2025-11-28", "2026-02-27", "met")
    assert seen[("later_review", 2)] == ("2026-08-31", "2027-02-26", "running")
    with runtime.db.transaction() as session:
        reviews = session.scalars(
            select(ClockRow).where(ClockRow.name == "later_review").order_by(ClockRow.seq)
        ).all()
    assert [(r.seq, r.due_on.isoformat(), r.status) for r in reviews] == [
        (1, "2026-08-20", "met_late"),
        (2, "2027-02-26", "running"),
    ]


def test_referrer_clocks_run_only_for_professional_referrers(runtime: Runtime) -> None:
    for ref, source in (("FAM", "1A"), ("ANON", "9"), ("POL", "6")):
        ok(
            runtime,
            referral(ref, "2026-03-02", source=source),
            event("decision.made", ref, "2026-03-03", outcome="nfa"),
            event("case.closed", ref, "2026-03-04", reason="NFA"),
        )
    for ref in ("FAM", "ANON"):
        assert set(clocks_by_name(runtime, ref, NOW)) == {
            "decision",
            "referrer_acknowledgement",
            "family_decision",
            "family_closing_letter",
        }
    police = clocks_by_name(runtime, "POL", NOW)
    assert (police["referrer_outcome"]["counted_from"], police["referrer_outcome"]["due"]) == (
        "2026-03-03",
        "2026-03-04",
    )
    assert police["referrer_closure_notice"]["due"] == "2026-03-11"
    ok(runtime, event("duty.fulfilled", "POL", "2026-03-04", duty="referrer_outcome"))
    assert clocks_by_name(runtime, "POL", NOW)["referrer_outcome"]["status"] == "met"


def test_a_policy_change_recalculates_running_clocks_and_keeps_finished_verdicts(runtime: Runtime) -> None:
    ok(
        runtime,
        referral("C1", "2026-03-02"),
        event("decision.made", "C1", "2026-03-03", outcome="assessment"),
        referral("C2", "2026-03-02"),
        event("decision.made", "C2", "2026-03-04", outcome="nfa"),
        referral("C3", "2026-03-02"),
        now="2026-03-04",
    )
    old = runtime.book.policy.fingerprint
    assert update_clocks(runtime, instant("2026-03-04")).breached == 4  # C3 decision, 3 acks
    assert stored(runtime, "C3")["decision"].status == "breached"

    def edit(data: dict[str, Any]) -> None:
        set_goal("assessment", {"working_days": 40})(data)
        set_goal("decision", {"working_days": 2})(data)

    book = rulebook_with(edit)
    assert book.policy.fingerprint != old
    report = update_clocks(runtime, instant("2026-03-04"), book)
    assert (report.recalculated, report.breached) == (2, 0)

    one, two, three = (stored(runtime, ref) for ref in ("C1", "C2", "C3"))
    # 40 working days from 2 March, skipping 3 and 6 April: Wed 29 April (was Thu 7 May).
    assert (one["assessment"].due_on.isoformat(), one["assessment"].status) == ("2026-04-29", "running")
    assert one["assessment"].policy_version == book.policy.fingerprint
    assert (three["decision"].due_on.isoformat(), three["decision"].status) == ("2026-03-04", "running")
    # Finished verdicts stay, under the policy they were given by.
    assert (one["decision"].due_on.isoformat(), one["decision"].status) == ("2026-03-03", "met")
    assert (two["decision"].due_on.isoformat(), two["decision"].status) == ("2026-03-03", "met_late")
    assert two["decision"].policy_version == old

    (logged,) = history_of(runtime, "C1", "clock.recalculated")
    cal = runtime.book.calendar.fingerprint
    assert logged.detail == {
        "clock": "assessment",
        "seq": 1,
        "old_due": "2026-05-07",
        "new_due": "2026-04-29",
        "old_policy": old,
        "new_policy": book.policy.fingerprint,
        "old_calendar": cal,
        "new_calendar": cal,
    }
    assert history_of(runtime, "C2", "clock.recalculated") == []
    assert update_clocks(runtime, instant("2026-03-04"), book).recalculated == 0


def test_a_council_closure_day_recalculates_running_clocks(runtime: Runtime) -> None:
    ok(
        runtime,
        referral("C1", "2026-03-02"),
        event("decision.made", "C1", "2026-03-03", outcome="assessment"),
        now="2026-03-03",
    )
    book = rulebook_with(lambda data: data["calendar"].update(closure_days=["2026-03-04"]))
    assert book.calendar.fingerprint != runtime.book.calendar.fingerprint
    assert update_clocks(runtime, instant("2026-03-03"), book).recalculated == 3
    rows = stored(runtime, "C1")
    assert rows["assessment"].due_on.isoformat() == "2026-05-08"  # one working day later
    assert rows["referrer_outcome"].due_on.isoformat() == "2026-03-05"  # 4 March is closed
    assert rows["school_worker_involved"].due_on.isoformat() == "2026-03-05"
    assert rows["referrer_acknowledgement"].due_on.isoformat() == "2026-03-03"  # unaffected
    assert rows["decision"].status == "met"
    moved = {h.detail["clock"]: h.detail for h in history_of(runtime, "C1", "clock.recalculated")}
    assert (moved["assessment"]["old_due"], moved["assessment"]["new_due"]) == ("2026-05-07", "2026-05-08")
    assert moved["assessment"]["old_calendar"] == runtime.book.calendar.fingerprint
    assert moved["assessment"]["new_calendar"] == book.calendar.fingerprint


def test_a_review_due_on_a_bank_holiday_is_due_the_working_day_before(runtime: Runtime) -> None:
    ok(
        runtime,
        referral("C1", "2026-02-16"),
        event("decision.made", "C1", "2026-02-17", outcome="strategy"),
        event("strategy.held", "C1", "2026-02-18", icpc_required=True),
        event("icpc.held", "C1", "2026-02-25", outcome="cp_plan"),
    )
    # Three months on is Monday 25 May 2026, the spring bank holiday: due Friday 22 May.
    assert clocks_by_name(runtime, "C1", NOW)["first_review"]["due"] == "2026-05-22"
