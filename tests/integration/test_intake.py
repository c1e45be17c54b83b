"""Events in (issue 2, part 2): duplicates, rejections that name line, field and rule, and order."""

from __future__ import annotations

import json

from sqlalchemy import select

from config.wiring import Runtime
from services import intake
from services.actors import SYSTEM
from tests.factories import (
    case_view,
    clocks_by_name,
    event,
    history_of,
    import_events,
    instant,
    jsonl,
    referral,
)
from workflow import casework
from workflow.events import parse_line, validate_event
from workflow.intake import list_rejected
from workflow.model import ReceivedEvent

NOW = "2026-03-20"


def received(rt: Runtime) -> list[ReceivedEvent]:
    with rt.db.transaction() as session:
        return list(session.scalars(select(ReceivedEvent).order_by(ReceivedEvent.id)))


def test_counts_and_a_duplicate_id_is_skipped_and_says_so(runtime: Runtime) -> None:
    """The same line again is a duplicate; the same id with other content is a conflict that
    says so, and the first event stands (issue 8: one id names one event)."""
    events = [
        referral("C1", "2026-03-02", id="r1"),
        event("decision.made", "C1", "2026-03-03", id="d1", outcome="assessment"),
        event("decision.made", "C1", "2026-03-04", id="d1", outcome="nfa"),  # same id, other content
    ]
    report = import_events(runtime, *events, now=NOW)
    conflict = (
        "line 3: field id: event d1 was already received with different content (line 2 of t.jsonl); "
        "one id names one event: send the change as a new event with its own id"
    )
    assert (report.accepted, report.duplicates, report.rejected, report.ok) == (2, [], [conflict], False)
    assert case_view(runtime, "C1", NOW)["state"] == "assessment"  # the first d1 stands

    again = import_events(runtime, *events, now=NOW)
    assert (again.accepted, len(again.duplicates), again.rejected) == (0, 2, [conflict])
    assert again.duplicates[0] == "line 1: event r1 was already accepted; skipped"
    kept = received(runtime)
    assert [(r.event_id, r.status, r.rejection_kind) for r in kept] == [
        ("r1", "accepted", None),
        ("d1", "accepted", None),
        (None, "rejected", "conflict"),
        (None, "rejected", "conflict"),
    ]
    assert intake.retry_rejected(runtime, SYSTEM, instant(NOW)).accepted == 0  # a conflict is never retried
    assert len(history_of(runtime, "C1", "event.accepted")) == 2


def test_malformed_lines_are_rejected_precisely_kept_and_the_rest_taken(runtime: Runtime) -> None:
    missing = event("decision.made", "C1", "2026-03-03", id="m1")  # no outcome
    census = referral("C2", "2026-03-02", id="m2", source="2Z")
    lines = [
        *jsonl(referral("C1", "2026-03-02", id="ok1")),
        '{"id": "m0", "case": "C1", "type": \n',
        *jsonl(missing, census, event("decision.made", "C1", "2026-03-03", id="ok2", outcome="assessment")),
    ]
    report = intake.import_events(runtime, SYSTEM, lines, "mixed.jsonl", instant(NOW))

    assert report.accepted == 2 and not report.ok
    assert len(report.rejected) == 3
    assert report.rejected[0].startswith("line 2: field (line): not valid JSON (")
    assert report.rejected[1] == "line 3: field outcome: Field required"
    assert report.rejected[2] == (
        "line 4: field referrer.source: '2Z' is not a census referral source code (1A–10)"
    )
    rows = received(runtime)
    assert [(r.line_no, r.status, r.rejection_kind) for r in rows] == [
        (1, "accepted", None),
        (2, "rejected", "malformed"),
        (3, "rejected", "malformed"),
        (4, "rejected", "malformed"),
        (5, "accepted", None),
    ]
    assert [r.raw for r in rows] == [line.rstrip("\n") for line in lines]  # raw text kept as sent
    assert all(r.source == "mixed.jsonl" for r in rows)
    assert rows[2].claimed_id == "m1" and rows[2].event_id is None
    with runtime.db.transaction() as session:
        kept = list_rejected(session)
    assert [r.line_no for r in kept] == [2, 3, 4]
    assert case_view(runtime, "C1", NOW)["state"] == "assessment"


def test_an_event_in_the_future_is_rejected(runtime: Runtime) -> None:
    report = import_events(runtime, referral("C1", "2026-03-02T12:06:00+00:00"), now="2026-03-02")
    assert report.rejected == ["line 1: field at: 2026-03-02T12:06:00+00:00 is in the future"]
    ok = import_events(runtime, referral("C2", "2026-03-02T12:04:00+00:00"), now="2026-03-02")
    assert ok.ok and ok.accepted == 1  # within the five-minute tolerance


def test_unknown_case_is_accepted_when_its_referral_arrives_in_a_later_import(runtime: Runtime) -> None:
    first = import_events(runtime, event("decision.made", "C7", "2026-03-03", outcome="assessment"), now=NOW)
    assert first.rejected == [
        "line 1: field case: unknown case 'C7': no referral.received has been accepted for it yet"
    ]
    assert received(runtime)[0].rejection_kind == "unknown_case"

    second = import_events(runtime, referral("C7", "2026-03-02"), now=NOW)
    assert (second.accepted, second.retried_accepted, second.ok) == (1, 1, True)
    decision = received(runtime)[0]
    # Tried on its own import, on that import's retry and on the retry of the second import.
    assert (decision.status, decision.reason, decision.attempts) == ("accepted", None, 3)
    assert case_view(runtime, "C7", NOW)["state"] == "assessment"
    assert clocks_by_name(runtime, "C7", NOW)["decision"]["status"] == "met"


def test_retry_rejected_takes_an_event_once_its_referral_is_there(runtime: Runtime) -> None:
    import_events(runtime, event("decision.made", "C8", "2026-03-03", outcome="nfa"), now=NOW)
    nothing = intake.retry_rejected(runtime, SYSTEM, instant(NOW))
    assert (nothing.accepted, nothing.still_rejected) == (0, 1)
    assert received(runtime)[0].attempts == 3  # import, the import's own retry, this retry

    # The referral reaches the case without an import (so no automatic retry runs).
    ref = validate_event(parse_line(json.dumps(referral("C8", "2026-03-02"))))
    with runtime.db.transaction() as session:
        casework.apply(session, runtime.book, ref, None)
    retry = intake.retry_rejected(runtime, SYSTEM, instant(NOW))
    assert (retry.accepted, retry.still_rejected) == (1, 0)
    with runtime.db.transaction() as session:
        assert list_rejected(session) == []
    assert case_view(runtime, "C8", NOW)["state"] == "referral_nfa"


def test_out_of_order_lines_in_one_file_end_accepted(runtime: Runtime) -> None:
    report = import_events(
        runtime,
        event("decision.made", "C3", "2026-03-03", outcome="assessment"),
        referral("C3", "2026-03-02"),
        event("worker.allocated", "C3", "2026-03-04", worker="w-ann"),
        now=NOW,
    )
    assert (report.accepted, report.retried_accepted, report.rejected) == (2, 1, [])
    assert report.ok
    assert [r.status for r in received(runtime)] == ["accepted"] * 3
    view = case_view(runtime, "C3", NOW)
    assert (view["state"], view["worker"]) == ("assessment", "w-ann")


def test_an_event_not_allowed_in_the_current_state_names_the_state(runtime: Runtime) -> None:
    report = import_events(
        runtime,
        referral("C4", "2026-03-02"),
        event("icpc.held", "C4", "2026-03-03", outcome="cp_plan"),
        event("decision.made", "C4", "2026-03-03", outcome="assessment"),
        event("decision.made", "C4", "2026-03-04", outcome="nfa"),
        now=NOW,
    )
    assert report.rejected == [
        "line 2: field type: icpc.held is not allowed while case C4 is in state referral "
        "(allowed in: icpc_pending)",
        "line 4: field type: decision.made is not allowed while case C4 is in state assessment "
        "(allowed in: referral)",
    ]
    assert {r.rejection_kind for r in received(runtime) if r.status == "rejected"} == {"not_allowed"}
    assert case_view(runtime, "C4", NOW)["state"] == "assessment"


def test_census_rules_rc8_needs_an_assessment_and_nothing_follows_a_referral_nfa(runtime: Runtime) -> None:
    report = import_events(
        runtime,
        referral("C5", "2026-03-02"),
        event("decision.made", "C5", "2026-03-03", outcome="assessment"),
        event("case.closed", "C5", "2026-03-04", reason="RC8"),
        referral("C6", "2026-03-02"),
        event("decision.made", "C6", "2026-03-03", outcome="nfa"),
        event("case.closed", "C6", "2026-03-04", reason="RC7"),
        now=NOW,
    )
    assert report.rejected == [
        "line 3: field reason: RC8 (case closed after assessment, no further action) needs a completed "
        "assessment, and case C5 has none in this episode",
        "line 6: field reason: case C6 was decided at referral (referral_nfa) and nothing follows but "
        "closure with reason NFA, not RC7",
    ]
    assert {r.rejection_kind for r in received(runtime) if r.status == "rejected"} == {"census_rule"}
    assert case_view(runtime, "C5", NOW)["state"] == "assessment"

    # Once the assessment is recorded, the held-back RC8 closure is taken on the automatic retry.
    later = import_events(
        runtime, event("assessment.completed", "C5", "2026-03-04", outcome="nfa", factors=["16A"]), now=NOW
    )
    assert (later.accepted, later.retried_accepted) == (1, 1)
    view = case_view(runtime, "C5", NOW)
    assert (view["state"], view["closure_reason"]) == ("closed", "RC8")


def test_a_re_referral_is_counted_from_the_previous_referral_not_its_closure(runtime: Runtime) -> None:
    """The census's measure: a long episode closed last month, referred again more than 12
    months after it began, is not a re-referral within 12 months."""
    import_events(
        runtime,
        referral("C8", "2025-02-03"),
        event("decision.made", "C8", "2025-02-04", outcome="nfa"),
        event("case.closed", "C8", "2026-02-20", reason="NFA"),
        referral("C8", "2026-03-02"),
        now="2026-03-03",
    )
    (opened,) = history_of(runtime, "C8", "episode.opened")
    assert opened.detail == {"re_referral_within_12_months": False}


def test_a_re_referral_of_a_closed_case_opens_episode_2_with_fresh_clocks(runtime: Runtime) -> None:
    import_events(
        runtime,
        referral("C9", "2026-03-02"),
        event("decision.made", "C9", "2026-03-03", outcome="nfa"),
        event("case.closed", "C9", "2026-03-04", reason="NFA"),
        now=NOW,
    )
    report = import_events(
        runtime,
        referral("C9", "2026-06-01"),
        event("decision.made", "C9", "2026-06-02", outcome="assessment"),
        now="2026-06-03",
    )
    assert report.ok and report.accepted == 2
    view = case_view(runtime, "C9", "2026-06-03")
    assert (view["episode"], view["state"], view["referred"]) == (2, "assessment", "2026-06-01")
    (opened,) = history_of(runtime, "C9", "episode.opened")
    assert (opened.episode, opened.detail) == (2, {"re_referral_within_12_months": True})

    first = {c["name"]: c for c in view["clocks"] if c["episode"] == 1}
    assert (first["decision"]["due"], first["decision"]["status"]) == ("2026-03-03", "met")
    fresh = {c["name"]: c for c in view["clocks"] if c["episode"] == 2}
    assert (fresh["decision"]["due"], fresh["decision"]["status"]) == ("2026-06-02", "met")
    # 1 June is day 0; 21 working days left in June, 23 in July, then Monday 3 August is day 45.
    assert (fresh["assessment"]["counted_from"], fresh["assessment"]["due"]) == ("2026-06-01", "2026-08-03")
    # The new referral is owed its own acknowledgement and outcome, whatever episode 1 still owes.
    assert {"decision", "referrer_acknowledgement", "referrer_outcome", "assessment"} <= set(fresh)
    assert fresh["referrer_acknowledgement"]["counted_from"] == "2026-06-01"
    assert fresh["referrer_acknowledgement"]["due"] == "2026-06-02"


def test_a_malformed_line_does_not_claim_its_id(runtime: Runtime) -> None:
    import_events(runtime, referral("C1", "2026-03-02"), now=NOW)
    bad = import_events(runtime, event("decision.made", "C1", "2026-03-03", id="fix-1"), now=NOW)
    assert bad.rejected == ["line 1: field outcome: Field required"]

    fixed = import_events(
        runtime, event("decision.made", "C1", "2026-03-03", id="fix-1", outcome="early_help"), now=NOW
    )
    assert (fixed.accepted, fixed.duplicates, fixed.rejected) == (1, [], [])
    assert case_view(runtime, "C1", NOW)["state"] == "stepped_down"

    # An order rejection does keep its id: resending it waits for the retry instead.
    import_events(runtime, event("worker.allocated", "C2", "2026-03-03", id="w-1", worker="w"), now=NOW)
    resent = import_events(
        runtime, event("worker.allocated", "C2", "2026-03-03", id="w-1", worker="w"), now=NOW
    )
    assert resent.duplicates == ["line 1: event w-1 was already received and is waiting for a retry; skipped"]


def test_the_feed_may_not_record_what_only_caseloop_records_nor_an_unknown_duty(runtime: Runtime) -> None:
    import_events(runtime, referral("C1", "2026-03-02"), now=NOW)
    report = import_events(
        runtime,
        event("letter.failed", "C1", "2026-03-03", outbox=1, duty="family_closing_letter", why="returned"),
        event("duty.fulfilled", "C1", "2026-03-03", duty="referrer_acknowledgment"),  # misspelt
        event("duty.fulfilled", "C1", "2026-03-03", duty="referrer_acknowledgement"),
        now=NOW,
    )
    assert report.accepted == 1
    assert report.rejected[0] == (
        "line 1: field type: letter.failed is recorded by caseloop itself, not sent by a case system"
    )
    assert report.rejected[1].startswith(
        "line 2: field duty: 'referrer_acknowledgment' is not a duty of the policy "
        "(known: referrer_acknowledgement, "
    )
    kinds = [r.rejection_kind for r in received(runtime) if r.status == "rejected"]
    assert kinds == ["malformed", "malformed"]
