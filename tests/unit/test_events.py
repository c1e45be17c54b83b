"""The integration contract: parse_line and validate_event, and errors that name the exact field."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from tests.factories import event, jsonl, person, referral
from workflow.errors import MalformedEvent, RejectionKind
from workflow.events import (
    EVENT_TYPES,
    AssessmentCompleted,
    CaseClosed,
    CaseTransferred,
    ChildUpdated,
    ClockPaused,
    ClockResumed,
    DecisionAmended,
    DecisionMade,
    DutyFulfilled,
    FlagsUpdated,
    HouseholdUpdated,
    IcpcHeld,
    LetterFailed,
    ReferralReceived,
    ReferrerUpdated,
    ReviewHeld,
    StrategyHeld,
    WorkerAllocated,
    parse_line,
    validate_event,
)

AT = "2026-03-02T09:30:00+00:00"

VALID: dict[str, tuple[dict[str, Any], type]] = {
    "referral.received": (referral("C1", AT), ReferralReceived),
    "worker.allocated": (event("worker.allocated", "C1", AT, worker="W1"), WorkerAllocated),
    "decision.made": (event("decision.made", "C1", AT, outcome="assessment"), DecisionMade),
    "strategy.held": (event("strategy.held", "C1", AT, icpc_required=True), StrategyHeld),
    "assessment.completed": (
        event("assessment.completed", "C1", AT, outcome="cin_plan", factors=["3A", "16A"]),
        AssessmentCompleted,
    ),
    "icpc.held": (event("icpc.held", "C1", AT, outcome="cp_plan"), IcpcHeld),
    "review.held": (event("review.held", "C1", AT), ReviewHeld),
    "case.closed": (event("case.closed", "C1", AT, reason="RC8"), CaseClosed),
    "household.updated": (event("household.updated", "C1", AT, household=[person()]), HouseholdUpdated),
    "referrer.updated": (event("referrer.updated", "C1", AT, referrer={"source": "6"}), ReferrerUpdated),
    "duty.fulfilled": (event("duty.fulfilled", "C1", AT, duty="family_closing_letter"), DutyFulfilled),
    "letter.failed": (
        event("letter.failed", "C1", AT, outbox=7, duty="family_closing_letter", why="returned-letter"),
        LetterFailed,
    ),
    "clock.paused": (event("clock.paused", "C1", AT, clock="assessment", reason="in hospital"), ClockPaused),
    "clock.resumed": (event("clock.resumed", "C1", AT, clock="assessment"), ClockResumed),
    "decision.amended": (
        event("decision.amended", "C1", AT, outcome="assessment", reason="recorded against the wrong child"),
        DecisionAmended,
    ),
    "case.transferred": (event("case.transferred", "C1", AT, team="south"), CaseTransferred),
    "child.updated": (event("child.updated", "C1", AT, dob="2015-01-02"), ChildUpdated),
    "flags.updated": (event("flags.updated", "C1", AT, flags=["marac", "domestic_abuse"]), FlagsUpdated),
}


def test_there_is_a_valid_example_for_every_event_type() -> None:
    assert set(VALID) == set(EVENT_TYPES)
    assert len(EVENT_TYPES) == 18


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_valid_example_of_each_type(kind: str) -> None:
    data, model = VALID[kind]
    parsed = validate_event(data)
    assert type(parsed) is model
    assert parsed.type == kind
    assert parsed.case == "C1"
    assert parsed.at == datetime(2026, 3, 2, 9, 30, tzinfo=parsed.at.tzinfo)
    assert parsed.at.utcoffset() == timedelta(0)


def test_referral_fields_are_typed() -> None:
    parsed = validate_event(referral("C1", AT, source="6", flags=["domestic_abuse"]))
    assert isinstance(parsed, ReferralReceived)
    assert parsed.child.dob == date(2016, 5, 1)
    assert parsed.child.school is not None and parsed.child.school.dsl_name == "Lead Example"
    assert parsed.referrer.source == "6"
    assert [p.id for p in parsed.household] == ["P1"]
    assert parsed.household[0].safe_to_contact is True
    assert parsed.flags == ["domestic_abuse"]


def test_defaults_and_whitespace() -> None:
    review = validate_event(event("review.held", "C1", AT))
    assert isinstance(review, ReviewHeld) and review.outcome == "continue"
    assessed = validate_event(event("assessment.completed", "C1", AT, outcome="nfa"))
    assert isinstance(assessed, AssessmentCompleted) and assessed.factors == []
    worker = validate_event(event("worker.allocated", " C1 ", AT, worker="  W1 "))
    assert isinstance(worker, WorkerAllocated)
    assert (worker.case, worker.worker) == ("C1", "W1")


def test_offsets_other_than_utc_are_kept() -> None:
    parsed = validate_event(event("decision.made", "C1", "2026-07-01T09:00:00+01:00", outcome="nfa"))
    assert parsed.at.utcoffset() == timedelta(hours=1)
    zulu = validate_event(event("decision.made", "C1", "2026-07-01T08:00:00Z", outcome="nfa"))
    assert zulu.at == parsed.at


def test_person_not_safe_to_contact_needs_no_address() -> None:
    hidden = person("P2", address=None, safe_to_contact=False, confidential_address=True)
    parsed = validate_event(referral("C1", AT, household=[person(), hidden]))
    assert isinstance(parsed, ReferralReceived)
    assert parsed.household[1].address is None


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def _without(base: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in base.items() if k != key}


REF = referral("C1", AT)
DEC = event("decision.made", "C1", AT, outcome="nfa")
CHILD = REF["child"]

ERRORS: list[Any] = [
    pytest.param(_with(REF, child={**CHILD, "dob": "2016-13-01"}), "child.dob", "month", id="child.dob"),
    pytest.param(
        _with(REF, child=_without(CHILD, "dob")), "child.dob", "Field required", id="child.dob-missing"
    ),
    pytest.param(
        _with(REF, child={**CHILD, "school": {"name": "X"}}),
        "child.school.dsl_name",
        "Field required",
        id="child.school.dsl_name",
    ),
    pytest.param(_with(REF, household=[person(address=None)]), "household.0", "no address", id="household.0"),
    pytest.param(
        _with(REF, household=[person(), person("P2", preferred_channel="email")]),
        "household.1",
        "no email",
        id="household.1-email",
    ),
    pytest.param(
        _with(REF, household=[person(safe_to_contact="maybe")]),
        "household.0.safe_to_contact",
        "boolean",
        id="household.0.safe_to_contact",
    ),
    pytest.param(
        _with(REF, household=[person("P1"), person("P1")]),
        "household",
        "'P1' appears twice",
        id="household-duplicate-ids",
    ),
    pytest.param(
        _with(REF, household=[person(f"P{i}") for i in range(51)]),
        "household",
        "at most 50",
        id="household-too-many",
    ),
    pytest.param(
        referral("C1", AT, source="2Z"),
        "referrer.source",
        "'2Z' is not a census referral source",
        id="referrer.source",
    ),
    pytest.param(_with(DEC, at="2026-03-02T09:30:00"), "at", "with a UTC offset", id="at-no-offset"),
    pytest.param(_with(DEC, at="2026-03-02"), "at", "with a UTC offset", id="at-date-only"),
    pytest.param(_with(DEC, at="yesterday"), "at", "datetime", id="at-not-a-date"),
    pytest.param(_with(DEC, outcme="nfa"), "outcme", "is not a field of decision.made", id="unknown-field"),
    pytest.param(
        _with(REF, child={**CHILD, "nickname": "X"}),
        "child.nickname",
        "is not a field",
        id="unknown-nested-field",
    ),
    pytest.param(
        _with(DEC, outcome="maybe"),
        "outcome",
        "'nfa', 'early_help', 'assessment' or 'strategy'",
        id="outcome-value",
    ),
    pytest.param(_without(DEC, "outcome"), "outcome", "Field required", id="outcome-missing"),
    pytest.param(_without(DEC, "case"), "case", "Field required", id="case-missing"),
    pytest.param(_with(DEC, id="   "), "id", "at least 1 character", id="id-blank"),
    pytest.param(
        _with(DEC, type="decision.taken"), "type", "unknown event type 'decision.taken'", id="unknown-type"
    ),
    pytest.param(_without(DEC, "type"), "type", "is required", id="missing-type"),
    pytest.param(
        event("assessment.completed", "C1", AT, outcome="nfa", factors=["3A", "99Z"]),
        "factors",
        "not census assessment factor codes: 99Z",
        id="factor-code",
    ),
    pytest.param(
        event("case.closed", "C1", AT, reason="RC10"),
        "reason",
        "'RC10' is not a closure reason",
        id="closure-reason",
    ),
    pytest.param(
        event("case.closed", "C1", AT, reason="rc8"),
        "reason",
        "'rc8' is not a closure reason",
        id="closure-reason-lowercase",
    ),
    pytest.param(
        event("strategy.held", "C1", AT, icpc_required="perhaps"),
        "icpc_required",
        "boolean",
        id="icpc_required",
    ),
    pytest.param(
        event("household.updated", "C1", AT, household=[person("A"), person("A")]),
        "household",
        "'A' appears twice",
        id="household.updated-duplicate-ids",
    ),
]


@pytest.mark.parametrize(("data", "field", "fragment"), ERRORS)
def test_errors_name_the_precise_field(data: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(MalformedEvent) as caught:
        validate_event(data)
    err = caught.value
    assert err.field == field
    assert fragment in err.rule
    assert err.reason == f"field {field}: {err.rule}"
    assert err.kind is RejectionKind.MALFORMED and not err.kind.retryable


def test_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(MalformedEvent) as caught:
        validate_event(_with(DEC, type="referral"))
    assert "known: referral.received, worker.allocated" in caught.value.rule


def test_parse_line_returns_the_object() -> None:
    (line,) = jsonl(DEC)
    assert parse_line(line) == DEC
    parsed = validate_event(parse_line(line))
    assert isinstance(parsed, DecisionMade) and parsed.outcome == "nfa"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("{", "not valid JSON"),
        ('{"type": "decision.made",}', "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"decision.made"', "must be a JSON object"),
        ("null", "must be a JSON object"),
        ("42", "must be a JSON object"),
    ],
)
def test_parse_line_refuses_what_is_not_a_json_object(raw: str, fragment: str) -> None:
    with pytest.raises(MalformedEvent) as caught:
        parse_line(raw)
    assert caught.value.field == "(line)"
    assert fragment in caught.value.rule


def test_parse_line_reports_the_column() -> None:
    with pytest.raises(MalformedEvent) as caught:
        parse_line('{"a": 1,, "b": 2}')
    assert "at column 9" in caught.value.rule


def test_line_number_is_added_to_the_reason() -> None:
    err = MalformedEvent("child.dob", "is required", line=7)
    assert err.reason == "line 7: field child.dob: is required"
    assert str(err) == err.reason
