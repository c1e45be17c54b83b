"""The lifecycle of a referral as one readable transition table (domain: the lifecycle).

Each row says: this event, in one of these states, when its fields match and its guard holds,
moves the case to that state (``None`` keeps the state: a fact is recorded, nothing moves).
:func:`resolve` picks the row for an event or raises an error that names the field and the rule;
:func:`mermaid` draws the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from workflow.census import CLOSURE_REASONS, NEEDS_ASSESSMENT, REFERRAL_NFA
from workflow.errors import CensusRuleBroken, EventRejected, TransitionNotAllowed
from workflow.events import CaseClosed, Event


class State(StrEnum):
    NEW = "new"  # no referral seen yet (or only in a closed earlier episode)
    REFERRAL = "referral"  # received, waiting for a decision
    REFERRAL_NFA = "referral_nfa"  # decided: no further action; only closure follows
    STEPPED_DOWN = "stepped_down"  # decided: step down to early help; only closure follows
    ASSESSMENT = "assessment"  # child and family assessment under way
    STRATEGY = "strategy"  # strategy discussion / section 47 enquiry
    ICPC_PENDING = "icpc_pending"  # a conference is needed and not yet held
    CIN_PLAN = "cin_plan"  # child in need plan
    CP_PLAN = "cp_plan"  # child protection plan
    CONCLUDED = "concluded"  # work concluded, waiting for closure
    CLOSED = "closed"


OPEN_STATES = frozenset(State) - {State.NEW, State.CLOSED}
ANY_RECORDED = frozenset(State) - {State.NEW}


@dataclass(frozen=True)
class CaseFacts:
    """What the guards need to know about a case's current episode."""

    ref: str
    state: State
    assessment_started: bool = False
    assessment_completed: bool = False
    decision: str | None = None


@dataclass(frozen=True)
class Condition:
    """A fact about the case that chooses between rows for the same event and fields."""

    description: str
    holds: Callable[[CaseFacts], bool]


@dataclass(frozen=True)
class Guard:
    """A rule the event must keep: ``check`` returns None when it holds, else the broken rule."""

    description: str
    check: Callable[[CaseFacts, Event], EventRejected | None]


@dataclass(frozen=True)
class Transition:
    event: str
    sources: frozenset[State]
    target: State | None
    when: Mapping[str, Any] = field(default_factory=dict)
    condition: Condition | None = None
    guard: Guard | None = None

    def applies(self, facts: CaseFacts, event: Event) -> bool:
        fields_match = all(getattr(event, name) == value for name, value in self.when.items())
        return fields_match and (self.condition is None or self.condition.holds(facts))

    @property
    def label(self) -> str:
        values = ", ".join(f"{k}={_show(v)}" for k, v in self.when.items())
        extra = [c.description for c in (self.condition, self.guard) if c is not None]
        return self.event + (f" [{values}]" if values else "") + "".join(f" if {e}" for e in extra)


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _census_closure(facts: CaseFacts, event: Event) -> EventRejected | None:
    assert isinstance(event, CaseClosed)  # the guard is only on closing transitions
    reason = event.reason
    if reason in NEEDS_ASSESSMENT and not facts.assessment_completed:
        return CensusRuleBroken(
            "reason",
            f"{reason} ({CLOSURE_REASONS[reason]}) needs a completed assessment, and case "
            f"{facts.ref} has none in this episode",
        )
    if reason == REFERRAL_NFA and facts.assessment_started:
        return CensusRuleBroken(
            "reason",
            f"NFA closes a referral before any assessment, and case {facts.ref} was assessed: "
            "use a reason RC1–RC9",
        )
    return None


def _referral_nfa_closure(facts: CaseFacts, event: Event) -> EventRejected | None:
    assert isinstance(event, CaseClosed)
    if event.reason != REFERRAL_NFA:
        return CensusRuleBroken(
            "reason",
            f"case {facts.ref} was decided at referral ({facts.state}) and nothing follows but "
            f"closure with reason NFA, not {event.reason}",
        )
    return None


def _a_different_decision(facts: CaseFacts, event: Event) -> EventRejected | None:
    outcome = getattr(event, "outcome", None)
    if outcome == facts.decision:
        return CensusRuleBroken(
            "outcome", f"the decision on case {facts.ref} is already {outcome}: there is nothing to amend"
        )
    return None


ASSESSED = Condition("assessed", lambda facts: facts.assessment_completed)
NOT_ASSESSED = Condition("not assessed", lambda facts: not facts.assessment_completed)
CENSUS_CLOSURE = Guard("census rules", _census_closure)
REFERRAL_CLOSURE = Guard("reason NFA", _referral_nfa_closure)
NEW_OUTCOME = Guard("a different outcome", _a_different_decision)

S = State
# The states a decision leads to, while nothing but the decision has happened: where a decision
# recorded in error can still be amended.
DECIDED = frozenset({S.REFERRAL_NFA, S.STEPPED_DOWN, S.ASSESSMENT, S.STRATEGY})
# Where a section 47 route can be: a strategy discussion may be held from any of these.
STRATEGY_FROM = frozenset({S.STRATEGY, S.ICPC_PENDING, S.ASSESSMENT})
# Later stages on which an assessment still under way can be completed without moving the case.
BEYOND_ASSESSMENT = frozenset({S.STRATEGY, S.ICPC_PENDING, S.CIN_PLAN, S.CP_PLAN})


def _decided(event: str, sources: frozenset[State], guard: Guard | None = None) -> tuple[Transition, ...]:
    targets = {"nfa": S.REFERRAL_NFA, "early_help": S.STEPPED_DOWN, "assessment": S.ASSESSMENT}
    targets["strategy"] = S.STRATEGY
    condition = NOT_ASSESSED if guard is not None else None
    return tuple(
        Transition(event, sources, target, {"outcome": outcome}, condition=condition, guard=guard)
        for outcome, target in targets.items()
    )


TRANSITIONS: tuple[Transition, ...] = (
    Transition("referral.received", frozenset({S.NEW, S.CLOSED}), S.REFERRAL),
    *_decided("decision.made", frozenset({S.REFERRAL})),
    *_decided("decision.amended", DECIDED, guard=NEW_OUTCOME),
    Transition("assessment.completed", frozenset({S.ASSESSMENT}), S.CONCLUDED, {"outcome": "nfa"}),
    Transition("assessment.completed", frozenset({S.ASSESSMENT}), S.CONCLUDED, {"outcome": "early_help"}),
    Transition("assessment.completed", frozenset({S.ASSESSMENT}), S.CIN_PLAN, {"outcome": "cin_plan"}),
    Transition("assessment.completed", frozenset({S.ASSESSMENT}), S.STRATEGY, {"outcome": "strategy"}),
    # On the section 47 route or a plan the assessment finishes alongside: its factors and the
    # clock are recorded, and the route (conference, plan) decides where the case goes.
    Transition("assessment.completed", BEYOND_ASSESSMENT, None, condition=NOT_ASSESSED),
    # A strategy discussion on a plan: a conference only for a child not already on a CP plan.
    Transition("strategy.held", frozenset({S.CIN_PLAN}), S.ICPC_PENDING, {"icpc_required": True}),
    Transition("strategy.held", frozenset({S.CIN_PLAN}), S.CIN_PLAN, {"icpc_required": False}),
    Transition("strategy.held", frozenset({S.CP_PLAN}), S.CP_PLAN, {"icpc_required": False}),
    Transition("strategy.held", STRATEGY_FROM, S.ICPC_PENDING, {"icpc_required": True}),
    Transition(
        "strategy.held",
        STRATEGY_FROM,
        S.ASSESSMENT,
        {"icpc_required": False},
        condition=NOT_ASSESSED,
    ),
    Transition(
        "strategy.held",
        STRATEGY_FROM,
        S.CONCLUDED,
        {"icpc_required": False},
        condition=ASSESSED,
    ),
    Transition("icpc.held", frozenset({S.ICPC_PENDING}), S.CP_PLAN, {"outcome": "cp_plan"}),
    Transition("icpc.held", frozenset({S.ICPC_PENDING}), S.CIN_PLAN, {"outcome": "cin_plan"}),
    Transition("icpc.held", frozenset({S.ICPC_PENDING}), S.CONCLUDED, {"outcome": "nfa"}),
    Transition("review.held", frozenset({S.CP_PLAN}), S.CP_PLAN, {"outcome": "continue"}),
    Transition("review.held", frozenset({S.CP_PLAN, S.CIN_PLAN}), S.CIN_PLAN, {"outcome": "cin_plan"}),
    Transition("review.held", frozenset({S.CIN_PLAN}), S.CIN_PLAN, {"outcome": "continue"}),
    Transition("review.held", frozenset({S.CP_PLAN, S.CIN_PLAN}), S.CONCLUDED, {"outcome": "nfa"}),
    Transition("case.closed", frozenset({S.REFERRAL_NFA, S.STEPPED_DOWN}), S.CLOSED, guard=REFERRAL_CLOSURE),
    Transition(
        "case.closed",
        frozenset({S.ASSESSMENT, S.STRATEGY, S.ICPC_PENDING, S.CIN_PLAN, S.CP_PLAN, S.CONCLUDED}),
        S.CLOSED,
        guard=CENSUS_CLOSURE,
    ),
    # Facts that do not move the case. Updates and recorded duties are still taken after closure,
    # because closing letters and notices are owed after a case ends (and a risk learned late
    # must still hold them).
    Transition("worker.allocated", OPEN_STATES - {S.REFERRAL_NFA}, None),
    Transition("case.transferred", OPEN_STATES, None),
    Transition("clock.paused", OPEN_STATES, None),
    Transition("clock.resumed", OPEN_STATES, None),
    Transition("household.updated", ANY_RECORDED, None),
    Transition("referrer.updated", ANY_RECORDED, None),
    Transition("child.updated", ANY_RECORDED, None),
    Transition("flags.updated", ANY_RECORDED, None),
    Transition("duty.fulfilled", ANY_RECORDED, None),
    Transition("letter.failed", ANY_RECORDED, None),
)


def resolve(facts: CaseFacts, event: Event) -> Transition:
    """The row of :data:`TRANSITIONS` that applies to ``event`` for a case in ``facts.state``.

    Raises :class:`TransitionNotAllowed` when no row takes the event in this state, and the
    guard's own error (for example :class:`CensusRuleBroken`) when a row's rule is broken.
    """
    rows = [t for t in TRANSITIONS if t.event == event.type]
    in_state = [t for t in rows if facts.state in t.sources]
    if not in_state:
        allowed = sorted({s.value for t in rows for s in t.sources})
        raise TransitionNotAllowed(
            "type",
            f"{event.type} is not allowed while case {facts.ref} is in state {facts.state.value} "
            f"(allowed in: {', '.join(allowed)})",
        )
    for row in in_state:
        if row.applies(facts, event):
            problem = row.guard.check(facts, event) if row.guard else None
            if problem is not None:
                raise problem
            return row
    field_names = sorted({k for t in in_state for k in t.when})
    raise TransitionNotAllowed(
        field_names[0] if field_names else "type",
        f"{event.type} with these values is not allowed while case {facts.ref} is in state "
        f"{facts.state.value}",
    )


def mermaid() -> str:
    """The lifecycle as a Mermaid state diagram, generated from :data:`TRANSITIONS`.

    An event that moves the case somewhere but, in some states, only records facts (an
    assessment completed on a plan) is drawn as a loop on those states; events that never move
    the case are listed in a note."""
    lines = ["stateDiagram-v2"]
    movers = {row.event for row in TRANSITIONS if row.target is not None}
    for row in TRANSITIONS:
        if row.target is None and row.event not in movers:
            continue
        for source in (s for s in State if s in row.sources):
            start = "[*]" if source is State.NEW else source.value
            lines.append(f"    {start} --> {(row.target or source).value}: {row.label}")
    lines.append(f"    {State.CLOSED.value} --> [*]")
    facts = sorted({row.event for row in TRANSITIONS} - movers)
    moves = ", ".join(facts)
    lines.append(f"    note right of {State.REFERRAL.value}: also recorded without a move: {moves}")
    return "\n".join(lines) + "\n"
