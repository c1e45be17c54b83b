"""Applying one validated event to its case: lifecycle, case data, history and clocks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow import batch, clocks, duties, episodes
from workflow.census import DOMESTIC_ABUSE_FACTORS, Flag
from workflow.errors import EventRefused, UnknownCase
from workflow.events import (
    AssessmentCompleted,
    CaseClosed,
    CaseTransferred,
    ChildUpdated,
    DecisionAmended,
    DecisionMade,
    Event,
    FlagsUpdated,
    HouseholdUpdated,
    ReferralReceived,
    ReferrerUpdated,
    WorkerAllocated,
)
from workflow.history import record
from workflow.lifecycle import CaseFacts, State, resolve
from workflow.model import Case


def facts_of(case: Case | None, ref: str) -> CaseFacts:
    if case is None:
        return CaseFacts(ref=ref, state=State.NEW)
    return CaseFacts(
        ref=case.ref,
        state=State(case.state),
        assessment_started=case.assessment_started,
        assessment_completed=case.assessment_completed,
        decision=case.decision,
    )


# The kind of fact each updating event changes: a late event older than the fact's last change
# is recorded in the history but does not overwrite what a newer event said.
FACT_OF = {
    "worker.allocated": "worker",
    "case.transferred": "team",
    "household.updated": "household",
    "referrer.updated": "referrer",
    "child.updated": "child",
    "flags.updated": "flags",
}
STATE = "state"


def _changed_at(case: Case, fact: str) -> datetime | None:
    value = (case.fact_times or {}).get(fact)
    return datetime.fromisoformat(value) if value else None


def _mark_changed(case: Case, fact: str, at: datetime) -> None:
    case.fact_times = {**(case.fact_times or {}), fact: at.isoformat()}


def _in_order(case: Case | None, event: Event) -> None:
    """Refuse, for good, an event that contradicts the case's history by its own time."""
    if case is None:
        return
    if isinstance(event, ReferralReceived):
        if case.closed_at is not None and event.at < case.closed_at:
            raise EventRefused(
                "at",
                f"a new referral dated {event.at.isoformat()} is before case {case.ref} closed "
                f"({case.closed_at.isoformat()}): it cannot open a later episode",
            )
        return
    if event.at < case.referral_at:
        raise EventRefused(
            "at",
            f"dated {event.at.isoformat()}, before the referral that opened this episode of case "
            f"{case.ref} ({case.referral_at.isoformat()}): it belongs to an earlier episode",
        )


def apply(
    session: Session,
    book: clocks.Rulebook,
    event: Event,
    received_id: int | None,
    *,
    by_caseloop: bool = False,
) -> Case:
    """Apply ``event`` to its case inside the caller's transaction, or raise an ``EventRejected``.

    The case row is locked (``FOR UPDATE`` on PostgreSQL; SQLite transactions already hold the
    write lock) so two importers cannot interleave on one case. ``by_caseloop`` marks an event
    caseloop records for itself (:mod:`workflow.fulfilment`), never one from the integration feed.
    """
    loaded = batch.current(session)
    if loaded is not None:
        case = loaded.cases.get(event.case)  # locked with the rest of the batch's cases
    else:
        case = session.scalar(select(Case).where(Case.ref == event.case).with_for_update())
    if case is None and event.type != "referral.received":
        raise UnknownCase(
            "case", f"unknown case {event.case!r}: no referral.received has been accepted for it yet"
        )
    _in_order(case, event)
    transition = resolve(facts_of(case, event.case), event)
    if case is not None and transition.target is not None:
        moved = _changed_at(case, STATE)
        if moved is not None and event.at < moved:
            raise EventRefused(
                "at",
                f"{event.type} dated {event.at.isoformat()} is older than the last change of case "
                f"{case.ref} ({moved.isoformat()}): events take effect in the order they happened, "
                "and an older one cannot move the case back",
            )
    if case is not None:
        clocks.check_event(session, book, case, event)
    # Every check that can refuse the event is above this line: nothing has changed yet, so a
    # refused event leaves nothing to undo. A batch relies on it (it keeps no savepoint).
    if loaded is not None:
        loaded.mutated = True

    team_before = case.team if case is not None else None
    if isinstance(event, ReferralReceived):
        case = _open_episode(session, book, case, event)
    assert case is not None
    before = case.state
    fact = FACT_OF.get(event.type)
    superseded = fact is not None and (_changed_at(case, fact) or event.at) > event.at
    if superseded:
        assert fact is not None
        record(session, case, "fact.superseded", event.at, received_id, type=event.type, fact=fact)
    else:
        worker_before = case.worker
        later_allocation = (_changed_at(case, "worker") or event.at) > event.at
        _record_facts(case, event)
        if isinstance(event, CaseTransferred) and later_allocation:
            case.worker = worker_before  # an allocation made after this move stands
        if fact is not None:
            _mark_changed(case, fact, event.at)
        if isinstance(event, CaseTransferred) and not later_allocation:
            _mark_changed(case, "worker", event.at)  # the move also says who (if anyone) has it
    if team_before is not None and case.team != team_before:
        clocks.follow_team(session, case)  # a new case has no clocks yet
    if transition.target is not None:
        case.state = transition.target.value
        _mark_changed(case, STATE, event.at)
        if transition.target in (State.ASSESSMENT, State.STRATEGY):
            case.assessment_started = True  # a section 47 enquiry assesses too
    case.updated_at = max(case.updated_at, event.at)

    record(session, case, "event.accepted", event.at, received_id, type=event.type)
    if case.state != before:
        record(session, case, "state.changed", event.at, received_id, before=before, after=case.state)
    if superseded:
        return case  # nothing newer is undone: no clock or letter follows a superseded fact
    clocks.apply_event(session, book, case, event, received_id)
    duties.on_event(session, book, case, event, received_id, by_caseloop=by_caseloop)
    return case


def _open_episode(
    session: Session, book: clocks.Rulebook, case: Case | None, event: ReferralReceived
) -> Case:
    re_referral = False
    loaded = batch.current(session)
    if case is None:
        case = Case(ref=event.case, state=State.NEW.value, episode=1)
        if loaded is not None:
            loaded.add_case(case)  # its id now, with no flush
        batch.add(session, case)
    else:
        # A closed case referred again is a new episode; its clocks and facts start afresh.
        re_referral = case.referral_at is not None and episodes.is_re_referral(
            book.local_date(case.referral_at), book.local_date(event.at)
        )
        episodes.keep(session, case, event.at)
        case.episode += 1
        case.state = State.NEW.value
    case.team = event.team
    case.worker = None
    case.referral_at = event.at
    case.referral_source = event.referrer.source
    case.decision = None
    case.assessment_started = case.assessment_completed = False
    case.factors = []
    case.flags = sorted(set(event.flags))
    case.child = event.child.model_dump(mode="json")
    case.referrer = event.referrer.model_dump(mode="json")
    case.household = [p.model_dump(mode="json") for p in event.household]
    case.closed_at = case.closure_reason = None
    case.updated_at = event.at
    case.fact_times = {STATE: event.at.isoformat()}
    if loaded is None:
        session.flush()  # the new case's id, for the rows that follow
    if case.episode > 1:
        record(session, case, "episode.opened", event.at, None, re_referral_within_12_months=re_referral)
    return case


def _record_facts(case: Case, event: Event) -> None:
    match event:
        case WorkerAllocated():
            case.worker = event.worker
        case DecisionMade() | DecisionAmended():
            case.decision = event.outcome
        case CaseTransferred():
            case.team, case.worker = event.team, event.worker
        case ChildUpdated():
            given = event.model_fields_set & {"name", "dob", "school"}
            changed = {name: getattr(event, name) for name in given}
            child = {**case.child, **{k: v for k, v in changed.items() if k != "school"}}
            if "dob" in changed:
                child["dob"] = event.dob.isoformat() if event.dob else None
            if "school" in changed:
                child["school"] = event.school.model_dump(mode="json") if event.school else None
            case.child = child
        case FlagsUpdated():
            case.flags = sorted(set(event.flags))
        case AssessmentCompleted():
            case.assessment_completed = True
            case.factors = sorted(set(event.factors))
            if DOMESTIC_ABUSE_FACTORS & set(event.factors):
                case.flags = sorted({*case.flags, Flag.DOMESTIC_ABUSE.value})
        case HouseholdUpdated():
            case.household = [p.model_dump(mode="json") for p in event.household]
        case ReferrerUpdated():
            case.referrer = event.referrer.model_dump(mode="json")
            case.referral_source = event.referrer.source
        case CaseClosed():
            case.closed_at, case.closure_reason = event.at, event.reason
