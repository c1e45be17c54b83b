"""The lifecycle table: every row reachable, refusals that name the field, census rules, the diagram."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import event, person, referral
from workflow.errors import CensusRuleBroken, RejectionKind, TransitionNotAllowed
from workflow.events import EVENT_TYPES, DecisionMade, validate_event
from workflow.lifecycle import (
    ASSESSED,
    REFERRAL_CLOSURE,
    TRANSITIONS,
    CaseFacts,
    State,
    Transition,
    mermaid,
    resolve,
)

S = State
AT = "2026-03-02T10:00:00+00:00"
SAMPLE_FIELDS: dict[str, dict[str, Any]] = {
    "worker.allocated": {"worker": "W1"},
    "decision.made": {"outcome": "nfa"},
    "strategy.held": {"icpc_required": True},
    "assessment.completed": {"outcome": "nfa"},
    "icpc.held": {"outcome": "cp_plan"},
    "review.held": {"outcome": "continue"},
    "case.closed": {"reason": "RC7"},
    "household.updated": {"household": [person()]},
    "referrer.updated": {"referrer": {"source": "6"}},
    "duty.fulfilled": {"duty": "referrer_acknowledgement"},
    "letter.failed": {"outbox": 1, "duty": "family_closing_letter", "why": "returned-letter"},
    "clock.paused": {"clock": "assessment", "reason": "child in hospital"},
    "clock.resumed": {"clock": "assessment"},
    "decision.amended": {"outcome": "assessment", "reason": "recorded in error"},
    "case.transferred": {"team": "south"},
    "child.updated": {"name": "Sam Smith"},
    "flags.updated": {"flags": ["marac"]},
}


def ev(kind: str, **fields: Any) -> Any:
    """A real, validated event of ``kind``."""
    if kind == "referral.received":
        return validate_event(referral("C1", AT))
    return validate_event(event(kind, "C1", AT, **{**SAMPLE_FIELDS[kind], **fields}))


def facts(state: State, *, started: bool = False, completed: bool = False) -> CaseFacts:
    return CaseFacts(ref="C1", state=state, assessment_started=started, assessment_completed=completed)


def _row_cases() -> list[Any]:
    cases = []
    for index, row in enumerate(TRANSITIONS):
        for source in sorted(row.sources):
            cases.append(pytest.param(row, source, id=f"{index}-{row.event}-{source.value}"))
    return cases


@pytest.mark.parametrize(("row", "source"), _row_cases())
def test_every_row_is_reachable(row: Transition, source: State) -> None:
    fields: dict[str, Any] = dict(row.when)
    if row.event == "case.closed":
        fields["reason"] = "NFA" if row.guard is REFERRAL_CLOSURE else "RC7"
    assessed = row.condition is ASSESSED
    chosen = resolve(facts(source, started=assessed, completed=assessed), ev(row.event, **fields))
    assert chosen is row


def test_every_event_type_has_a_row() -> None:
    assert {row.event for row in TRANSITIONS} == set(EVENT_TYPES)


def test_a_whole_episode_walks_through_the_table() -> None:
    steps: list[tuple[str, dict[str, Any], State | None]] = [
        ("referral.received", {}, S.REFERRAL),
        ("worker.allocated", {}, None),
        ("decision.made", {"outcome": "assessment"}, S.ASSESSMENT),
        ("assessment.completed", {"outcome": "strategy", "factors": ["3A"]}, S.STRATEGY),
        ("strategy.held", {"icpc_required": True}, S.ICPC_PENDING),
        ("strategy.held", {"icpc_required": True}, S.ICPC_PENDING),
        ("icpc.held", {"outcome": "cp_plan"}, S.CP_PLAN),
        ("review.held", {"outcome": "continue"}, S.CP_PLAN),
        ("review.held", {"outcome": "cin_plan"}, S.CIN_PLAN),
        ("review.held", {"outcome": "nfa"}, S.CONCLUDED),
        ("case.closed", {"reason": "RC8"}, S.CLOSED),
        ("duty.fulfilled", {"duty": "family_closing_letter"}, None),
        ("referral.received", {}, S.REFERRAL),
    ]
    state, started, completed = S.NEW, False, False
    for kind, fields, target in steps:
        row = resolve(facts(state, started=started, completed=completed), ev(kind, **fields))
        assert row.target == target, (kind, state)
        state = row.target or state
        started = started or state is S.ASSESSMENT
        completed = completed or kind == "assessment.completed"
    assert state is S.REFERRAL


@pytest.mark.parametrize(
    ("kind", "state", "allowed"),
    [
        ("decision.made", S.NEW, ["referral"]),
        ("decision.made", S.CLOSED, ["referral"]),
        ("referral.received", S.ASSESSMENT, ["closed", "new"]),
        ("icpc.held", S.STRATEGY, ["icpc_pending"]),
        ("review.held", S.CONCLUDED, ["cin_plan", "cp_plan"]),
        (
            "assessment.completed",
            S.REFERRAL,
            ["assessment", "cin_plan", "cp_plan", "icpc_pending", "strategy"],
        ),
        (
            "case.closed",
            S.REFERRAL,
            [
                "assessment",
                "cin_plan",
                "concluded",
                "cp_plan",
                "icpc_pending",
                "referral_nfa",
                "stepped_down",
                "strategy",
            ],
        ),
        (
            "worker.allocated",
            S.REFERRAL_NFA,
            [
                "assessment",
                "cin_plan",
                "concluded",
                "cp_plan",
                "icpc_pending",
                "referral",
                "stepped_down",
                "strategy",
            ],
        ),
        (
            "clock.paused",
            S.CLOSED,
            [
                "assessment",
                "cin_plan",
                "concluded",
                "cp_plan",
                "icpc_pending",
                "referral",
                "referral_nfa",
                "stepped_down",
                "strategy",
            ],
        ),
        (
            "household.updated",
            S.NEW,
            [
                "assessment",
                "cin_plan",
                "closed",
                "concluded",
                "cp_plan",
                "icpc_pending",
                "referral",
                "referral_nfa",
                "stepped_down",
                "strategy",
            ],
        ),
    ],
)
def test_not_allowed_names_field_state_and_allowed_states(
    kind: str, state: State, allowed: list[str]
) -> None:
    with pytest.raises(TransitionNotAllowed) as caught:
        resolve(facts(state), ev(kind))
    err = caught.value
    assert err.field == "type"
    assert err.kind is RejectionKind.NOT_ALLOWED and err.kind.retryable
    assert f"{kind} is not allowed" in err.reason
    assert f"case C1 is in state {state.value}" in err.reason
    assert f"(allowed in: {', '.join(allowed)})" in err.reason
    assert err.reason.startswith("field type: ")


def test_values_no_row_takes_name_the_field() -> None:
    odd = DecisionMade.model_construct(id="e1", case="C1", at=AT, type="decision.made", outcome="later")
    with pytest.raises(TransitionNotAllowed) as caught:
        resolve(facts(S.REFERRAL), odd)
    assert caught.value.field == "outcome"
    assert "in state referral" in caught.value.reason


@pytest.mark.parametrize(
    "state", [S.ASSESSMENT, S.STRATEGY, S.ICPC_PENDING, S.CIN_PLAN, S.CP_PLAN, S.CONCLUDED]
)
@pytest.mark.parametrize("reason", ["RC8", "RC9"])
def test_rc8_rc9_need_a_completed_assessment(state: State, reason: str) -> None:
    with pytest.raises(CensusRuleBroken) as caught:
        resolve(facts(state, started=True, completed=False), ev("case.closed", reason=reason))
    err = caught.value
    assert err.field == "reason"
    assert err.kind is RejectionKind.CENSUS_RULE
    assert reason in err.reason and "C1" in err.reason and "assessment" in err.reason
    row = resolve(facts(state, started=True, completed=True), ev("case.closed", reason=reason))
    assert row.target is S.CLOSED


@pytest.mark.parametrize("state", [S.ASSESSMENT, S.STRATEGY, S.CIN_PLAN, S.CONCLUDED])
def test_referral_nfa_refused_once_an_assessment_started(state: State) -> None:
    with pytest.raises(CensusRuleBroken) as caught:
        resolve(facts(state, started=True), ev("case.closed", reason="NFA"))
    assert caught.value.field == "reason"
    assert "NFA" in caught.value.reason and "C1" in caught.value.reason


def test_referral_nfa_allowed_before_any_assessment() -> None:
    row = resolve(facts(S.STRATEGY), ev("case.closed", reason="NFA"))
    assert row.target is S.CLOSED


@pytest.mark.parametrize("state", [S.ASSESSMENT, S.CONCLUDED, S.CP_PLAN])
@pytest.mark.parametrize("reason", ["RC1", "RC2", "RC5", "RC7"])
def test_other_reasons_close_any_worked_case(state: State, reason: str) -> None:
    assert resolve(facts(state, started=True), ev("case.closed", reason=reason)).target is S.CLOSED


@pytest.mark.parametrize("state", [S.REFERRAL_NFA, S.STEPPED_DOWN])
@pytest.mark.parametrize("reason", ["RC1", "RC7", "RC8", "RC9"])
def test_after_referral_decision_only_nfa_closes(state: State, reason: str) -> None:
    with pytest.raises(CensusRuleBroken) as caught:
        resolve(facts(state), ev("case.closed", reason=reason))
    assert caught.value.field == "reason"
    assert f"not {reason}" in caught.value.reason
    assert state.value in caught.value.reason
    assert resolve(facts(state), ev("case.closed", reason="NFA")).target is S.CLOSED


@pytest.mark.parametrize("state", [S.STRATEGY, S.ICPC_PENDING])
@pytest.mark.parametrize(
    ("started", "completed", "target"),
    [(False, False, S.ASSESSMENT), (True, False, S.ASSESSMENT), (True, True, S.CONCLUDED)],
)
def test_strategy_without_conference_depends_on_assessment(
    state: State, started: bool, completed: bool, target: State
) -> None:
    case = facts(state, started=started, completed=completed)
    row = resolve(case, ev("strategy.held", icpc_required=False))
    assert row.target is target
    conference = resolve(facts(state, completed=completed), ev("strategy.held", icpc_required=True))
    assert conference.target is S.ICPC_PENDING


@pytest.mark.parametrize("state", [S.CLOSED, S.REFERRAL_NFA, S.CONCLUDED])
@pytest.mark.parametrize("kind", ["household.updated", "referrer.updated", "duty.fulfilled", "letter.failed"])
def test_facts_are_recorded_without_a_move(state: State, kind: str) -> None:
    assert resolve(facts(state), ev(kind)).target is None


def test_mermaid_has_one_line_per_source_target_of_each_row() -> None:
    lines = mermaid().splitlines()
    assert lines[0] == "stateDiagram-v2"
    arrows = [line.strip() for line in lines if " --> " in line]
    movers = {row.event for row in TRANSITIONS if row.target is not None}
    drawn = [row for row in TRANSITIONS if row.event in movers]
    assert len(arrows) == sum(len(row.sources) for row in drawn) + 1
    assert len(arrows) == 60  # the table's moves and loops, plus the final closed --> [*]
    assert arrows[-1] == "closed --> [*]"
    assert len(set(arrows)) == len(arrows)
    for row in drawn:
        for source in row.sources:
            start = "[*]" if source is S.NEW else source.value
            assert f"{start} --> {(row.target or source).value}: {row.label}" in arrows


def test_mermaid_labels_and_note() -> None:
    text = mermaid()
    assert "    referral --> referral_nfa: decision.made [outcome=nfa]\n" in text
    assert "    strategy --> concluded: strategy.held [icpc_required=false] if assessed\n" in text
    assert "    icpc_pending --> icpc_pending: strategy.held [icpc_required=true]\n" in text
    assert "    stepped_down --> closed: case.closed if reason NFA\n" in text
    assert "    [*] --> referral: referral.received\n" in text
    assert "    closed --> referral: referral.received\n" in text
    note = next(line for line in text.splitlines() if "note right of" in line)
    assert note.endswith(
        "case.transferred, child.updated, clock.paused, clock.resumed, duty.fulfilled, flags.updated, "
        "household.updated, letter.failed, referrer.updated, worker.allocated"
    )
    assert "    cp_plan --> cp_plan: assessment.completed if not assessed\n" in text
    assert "    cin_plan --> icpc_pending: strategy.held [icpc_required=true]\n" in text
    assert "    assessment --> icpc_pending: strategy.held [icpc_required=true]\n" in text
    assert text.endswith("\n")
