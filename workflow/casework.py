"""Applying one validated event to its case: lifecycle, case data, history and clocks."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow import clocks, duties
from workflow.census import DOMESTIC_ABUSE_FACTORS, Flag
from workflow.errors import UnknownCase
from workflow.events import (
    AssessmentCompleted,
    CaseClosed,
    DecisionMade,
    Event,
    HouseholdUpdated,
    ReferralReceived,
    ReferrerUpdated,
    WorkerAllocated,
)
from workflow.history import record
from workflow.lifecycle import CaseFacts, State, resolve
from workflow.model import Case

RE_REFERRAL_WINDOW = timedelta(days=365)


def facts_of(case: Case | None, ref: str) -> CaseFacts:
    if case is None:
        return CaseFacts(ref=ref, state=State.NEW)
    return CaseFacts(
        ref=case.ref,
        state=State(case.state),
        assessment_started=case.assessment_started,
        assessment_completed=case.assessment_completed,
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
    case = session.scalar(select(Case).where(Case.ref == event.case).with_for_update())
    if case is None and event.type != "referral.received":
        raise UnknownCase(
            "case", f"unknown case {event.case!r}: no referral.received has been accepted for it yet"
        )
    transition = resolve(facts_of(case, event.case), event)

    if isinstance(event, ReferralReceived):
        case = _open_episode(session, case, event)
    assert case is not None
    before = case.state
    _record_facts(case, event)
    if transition.target is not None:
        case.state = transition.target.value
        if transition.target is State.ASSESSMENT:
            case.assessment_started = True
    case.updated_at = event.at

    record(session, case, "event.accepted", event.at, received_id, type=event.type)
    if case.state != before:
        record(session, case, "state.changed", event.at, received_id, before=before, after=case.state)
    clocks.apply_event(session, book, case, event, received_id)
    duties.on_event(session, book, case, event, received_id, by_caseloop=by_caseloop)
    return case


def _open_episode(session: Session, case: Case | None, event: ReferralReceived) -> Case:
    re_referral = False
    if case is None:
        case = Case(ref=event.case, state=State.NEW.value, episode=1)
        session.add(case)
    else:
        # A closed case referred again is a new episode; its clocks and facts start afresh.
        re_referral = case.closed_at is not None and event.at - case.closed_at <= RE_REFERRAL_WINDOW
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
    session.flush()
    if case.episode > 1:
        record(session, case, "episode.opened", event.at, None, re_referral_within_12_months=re_referral)
    return case


def _record_facts(case: Case, event: Event) -> None:
    match event:
        case WorkerAllocated():
            case.worker = event.worker
        case DecisionMade():
            case.decision = event.outcome
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
