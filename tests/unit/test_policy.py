"""The policy: the shipped file loads, errors name the key path, the fingerprint tracks the rules."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.policy import load_policy_file
from workflow.calendar import CountingRule
from workflow.errors import PolicyError
from workflow.lifecycle import State
from workflow.policy import Policy, parse_policy

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "policy.yaml"
TEXT = SHIPPED.read_text(encoding="utf-8")
DATA: dict[str, Any] = yaml.safe_load(TEXT)


def from_text(text: str) -> Policy:
    return parse_policy(yaml.safe_load(text), source="policy.yaml")


def changed(mutate: Any) -> dict[str, Any]:
    data = copy.deepcopy(DATA)
    mutate(data)
    return data


def test_shipped_policy_loads() -> None:
    policy = load_policy_file(SHIPPED)
    assert policy.version == "2026.1"
    declared = ["decision", "assessment", "icpc", "first_review", "later_review", "failed_letter"]
    assert [r.name for r in policy.clocks] == declared
    assert [r.name for r in policy.rules] == [
        *declared,
        "referrer_acknowledgement",
        "referrer_outcome",
        "family_decision",
        "school_worker_involved",
        "school_involvement_ended",
        "family_closing_letter",
        "referrer_closure_notice",
    ]
    assert policy.calendar.country == "GB" and policy.calendar.subdivision == "ENG"
    assert policy.calendar.counting is CountingRule.DAY0
    assert policy.calendar.closure_days == ()


@pytest.mark.parametrize(
    ("name", "goal"),
    [
        ("decision", "1 working days"),
        ("referrer_acknowledgement", "1 working days"),
        ("referrer_outcome", "1 working days"),
        ("assessment", "45 working days"),
        ("icpc", "15 working days"),
        ("first_review", "3 calendar months"),
        ("later_review", "6 calendar months"),
        ("family_closing_letter", "5 working days"),
        ("referrer_closure_notice", "5 working days"),
    ],
)
def test_shipped_goals_match_the_domain(name: str, goal: str) -> None:
    rule = load_policy_file(SHIPPED).clock(name)
    assert rule is not None
    assert str(rule.goal) == goal


def test_shipped_clock_details() -> None:
    policy = load_policy_file(SHIPPED)
    assessment, icpc, later = policy.clock("assessment"), policy.clock("icpc"), policy.clock("later_review")
    assert assessment is not None and icpc is not None and later is not None
    assert assessment.counted_from == "referral" and not assessment.restart
    assert [(t.event, t.when, t.state) for t in assessment.starts] == [
        ("decision.made", {"outcome": "assessment"}, None),
        ("decision.made", {"outcome": "strategy"}, None),
        ("strategy.held", {"icpc_required": False}, State.ASSESSMENT),
    ]
    assert icpc.restart and icpc.counted_from == "event"
    assert [t.event for t in icpc.cancelled_by] == ["strategy.held", "case.closed"]
    assert later.starts[0].state is State.CP_PLAN
    outcome = policy.clock("referrer_outcome")
    assert outcome is not None and outcome.starts[0].referrer == "professional"
    assert policy.clock("no_such_clock") is None


def test_working_calendar_follows_the_calendar_section() -> None:
    policy = parse_policy(
        changed(lambda d: d["calendar"].update(counting="day1", closure_days=[date(2026, 12, 24)]))
    )
    cal = policy.working_calendar()
    assert cal.counting is CountingRule.DAY1
    assert cal.closure_days == frozenset({date(2026, 12, 24)})
    assert not cal.is_working_day(date(2026, 12, 24))
    assert cal.fingerprint != load_policy_file(SHIPPED).working_calendar().fingerprint


def _set_goal(index: int, goal: dict[str, int]) -> Any:
    return lambda d: d["clocks"][index].update(goal=goal)


@pytest.mark.parametrize(
    ("mutate", "where", "fragment"),
    [
        pytest.param(
            lambda d: d["clocks"][0]["starts"][0].update(event="referral.recieved"),
            "clocks.0.starts.0.event",
            "unknown event type 'referral.recieved'",
            id="start-event",
        ),
        pytest.param(
            lambda d: d["clocks"][2]["cancelled_by"][1].update(event="case.shut"),
            "clocks.2.cancelled_by.1.event",
            "unknown event type 'case.shut'",
            id="cancel-event",
        ),
        pytest.param(
            _set_goal(1, {"working_days": 45, "months": 2}),
            "clocks.1.goal",
            "exactly one of working_days or months",
            id="goal-both",
        ),
        pytest.param(
            _set_goal(3, {}), "clocks.3.goal", "exactly one of working_days or months", id="goal-neither"
        ),
        pytest.param(
            _set_goal(1, {"working_days": -1}),
            "clocks.1.goal.working_days",
            "greater than",
            id="goal-negative",
        ),
        pytest.param(_set_goal(3, {"months": 0}), "clocks.3.goal.months", "greater than", id="goal-months-0"),
        pytest.param(
            lambda d: d["clocks"].append(copy.deepcopy(d["clocks"][1])),
            "clocks",
            "clock names must be unique: assessment",
            id="duplicate-names",
        ),
        pytest.param(
            lambda d: d["clocks"][1].update(name="Referrer Ack"), "clocks.1.name", "pattern", id="bad-name"
        ),
        pytest.param(
            lambda d: d["clocks"][1].update(stops=[]), "clocks.1.stops", "at least 1", id="no-stops"
        ),
        pytest.param(
            lambda d: d["clocks"][4]["starts"][0].update(state="plan"),
            "clocks.4.starts.0.state",
            "'cp_plan'",
            id="bad-state",
        ),
        pytest.param(
            lambda d: d["calendar"].update(counting="day2"),
            "calendar.counting",
            "'day0' or 'day1'",
            id="counting",
        ),
        pytest.param(
            lambda d: d["calendar"].update(closure_days=["2026-13-01"]),
            "calendar.closure_days.0",
            "month",
            id="closure-day",
        ),
        pytest.param(lambda d: d.update(reminder={}), "reminder", "Extra inputs", id="unknown-top-key"),
        pytest.param(lambda d: d.pop("version"), "version", "Field required", id="no-version"),
    ],
)
def test_errors_name_the_key_path(mutate: Any, where: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(changed(mutate), source="policy.yaml")
    message = str(caught.value)
    assert message.startswith(f"policy.yaml: {where}: ")
    assert fragment in message


def _school_ended(d: dict[str, Any]) -> dict[str, Any]:
    return next(duty for duty in d["duties"] if duty["name"] == "school_involvement_ended")


def test_a_duty_owed_only_after_another_names_a_real_one() -> None:
    assert _school_ended(changed(lambda d: None))["after"] == [
        {"event": "case.closed", "met": "school_worker_involved"}
    ]
    typo = changed(lambda d: _school_ended(d)["after"][0].update(met="school_worker_invloved"))
    with pytest.raises(
        PolicyError,
        match=r"school_involvement_ended: met names no clock or duty: "
        r"'school_worker_invloved'",
    ):
        parse_policy(typo)


def test_two_duplicate_names_are_both_listed() -> None:
    twice = changed(lambda d: d["clocks"].extend(copy.deepcopy(d["clocks"][:2])))
    with pytest.raises(PolicyError, match=r"unique: assessment, decision$"):
        parse_policy(twice)


@pytest.mark.parametrize(("key", "value"), [("subdivision", "XX"), ("country", "ZZ")])
def test_unknown_calendar_is_refused_at_load(key: str, value: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(changed(lambda d: d["calendar"].update({key: value})), source="policy.yaml")
    message = str(caught.value)
    assert value in message
    # like every other policy error, it should say which file and which section
    assert message.startswith("policy.yaml: calendar")


@pytest.mark.parametrize("data", [[], "clocks: []", None, 3, [DATA]])
def test_a_policy_must_be_a_mapping(data: Any) -> None:
    with pytest.raises(PolicyError, match=r"^site.yaml: the policy must be a mapping$"):
        parse_policy(data, source="site.yaml")


# fingerprint --------------------------------------------------------------------------------------

BASE = from_text(TEXT).fingerprint


def test_fingerprint_shape() -> None:
    version, digest = BASE.split("+")
    assert version == "2026.1"
    assert len(digest) == 8
    int(digest, 16)
    assert load_policy_file(SHIPPED).fingerprint == BASE


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("goal: {working_days: 45}", "goal: {working_days: 40}"),
        ("goal: {working_days: 15}", "goal: {working_days: 10}"),
        ("goal: {months: 3}", "goal: {months: 4}"),
        ("goal: {months: 6}", "goal: {working_days: 120}"),
        ("counted_from: referral", "counted_from: event"),
        ("restart: true ", "restart: false"),
    ],
)
def test_fingerprint_changes_when_a_rule_changes(old: str, new: str) -> None:
    assert TEXT.count(old) == 1
    edited = from_text(TEXT.replace(old, new))
    assert edited.version == "2026.1"
    assert edited.fingerprint != BASE


def test_fingerprint_changes_with_the_version() -> None:
    assert (
        from_text(TEXT.replace('version: "2026.1"', 'version: "2026.2"')).fingerprint
        == "2026.2+" + (BASE.split("+")[1])
    )


def test_fingerprint_ignores_whitespace_comments_and_yaml_style() -> None:
    assert TEXT.count("    goal: {working_days: 45}\n") == 1
    restyled = "# a comment the council added\n\n" + TEXT.replace(
        "    goal: {working_days: 45}\n", "    goal:    # statutory\n      working_days: 45\n"
    ).replace("goal: {months: 3}", "goal: {  months:   3  }   # first review").replace("\n\n", "\n\n\n")
    assert restyled != TEXT
    assert from_text(restyled).fingerprint == BASE


def test_the_rules_an_event_type_can_fire_are_every_rule_naming_it_in_their_order() -> None:
    policy = load_policy_file(SHIPPED)
    for event_type in ("referral.received", "decision.made", "case.closed", "duty.fulfilled"):
        naming = [
            r.name
            for r in policy.rules
            if any(t.event == event_type for t in (*r.starts, *r.stops, *r.cancelled_by))
        ]
        assert [r.name for r in policy.rules_by_event.get(event_type, ())] == naming
        duties = [d.name for d in policy.duties if any(t.event == event_type for t in d.after)]
        assert [d.name for d in policy.duties_by_event.get(event_type, ())] == duties

    # An amended decision fires what the decision it corrects would have fired.
    def names(rules: Any) -> set[str]:
        return {r.name for r in rules}

    assert names(policy.rules_by_event["decision.made"]) <= names(policy.rules_by_event["decision.amended"])
    assert names(policy.duties_by_event["decision.made"]) <= names(policy.duties_by_event["decision.amended"])
    assert "worker.unknown" not in policy.rules_by_event
