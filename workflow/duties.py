"""Duties: the letters a transition makes owed, announced as :class:`LetterOwed` in its transaction.

For every duty of the policy that an accepted event fires, one letter per recipient:

- **family**: each household member who is safe to contact (never one who is not; that is
  recorded in the case history instead);
- **referrer**: the referrer, by email or post, when there are contact details; a professional
  with neither is still owed: the duty stays open as a task for the worker to tell them by phone
  (recorded as ``duty.by_hand``), and only a referrer no one can tell cancels it;
- **school**: the child's recorded school's safeguarding lead, or the referring school (told
  the involvement has ended only if it was told a worker was involved: a trigger's ``met``).

A case with domestic abuse (a flag, or assessment factors 3A–3C) or with a confidential address
in the household holds every letter for a worker's review: such letters are never sent
automatically. Messaging turns each announcement into an outbox row keyed by the duty, the event
and the recipient, so a replayed or retried event cannot owe a letter twice. When the last letter
of a duty is sent the duty's clock stops (:mod:`workflow.fulfilment`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow import batch, limits
from workflow.bus import publish
from workflow.census import (
    DOMESTIC_ABUSE_FACTORS,
    FLAG_HOLDS,
    SCHOOL_SOURCES,
    SELF_SOURCE,
    SENSITIVE_CLOSURES,
    Flag,
    reachable_professional,
)
from workflow.clocks import ACTIVE, ClockStatus, Rulebook, matches, met_this_episode
from workflow.events import CaseClosed, DecisionAmended, DutyFulfilled, Event
from workflow.happened import DutyDoneByHand, LetterOwed, LettersWithdrawn, Recipient, RiskCameToLight
from workflow.history import record
from workflow.model import Case, ClockRow
from workflow.policy import DutyRule

# The events that can reveal a risk: domestic abuse (a flag, or factors 3A–3C), another warning
# flag, a confidential address, or a closure after which nothing goes unread (death, adoption).
HOLD_CHANGING_EVENTS = frozenset(
    {"assessment.completed", "household.updated", "flags.updated", "case.closed"}
)


def hold_reasons(case: Case) -> list[str]:
    """Why every letter on this case must wait for a worker's review (empty: none)."""
    reasons: list[str] = []
    flags = set(case.flags or ())
    if DOMESTIC_ABUSE_FACTORS & set(case.factors or ()):
        flags.add(Flag.DOMESTIC_ABUSE.value)
    reasons.extend(FLAG_HOLDS[flag] for flag in Flag if flag.value in flags)
    if any(p.get("confidential_address") for p in case.household):
        reasons.append("a household member's address is confidential")
    if case.closure_reason in SENSITIVE_CLOSURES:
        reasons.append(SENSITIVE_CLOSURES[case.closure_reason])
    return reasons


def approval_lapses(case: Case) -> bool:
    """Whether an approval given before now no longer stands: after a child's death or adoption
    a letter approved earlier is read again before it goes."""
    return case.closure_reason in SENSITIVE_CLOSURES


def school_contact(case: Case) -> dict[str, Any] | None:
    """Where a school is told: the child's recorded school, else the referring school."""
    school = case.child.get("school")
    if school:
        return {
            "name": school.get("dsl_name"),
            "school": school.get("name"),
            "email": school.get("email"),
            "address": school.get("address"),
        }
    if case.referral_source in SCHOOL_SOURCES:
        referrer = case.referrer
        return {
            "name": referrer.get("name"),
            "school": referrer.get("organisation"),
            "email": referrer.get("email"),
            "address": referrer.get("address"),
        }
    return None


def _by_email_or_post(email: str | None, address: str | None) -> tuple[str, str] | None:
    if email:
        return "email", email
    if address:
        return "post", address
    return None


def recipients(case: Case, duty: DutyRule) -> tuple[list[Recipient], list[str]]:
    """Who gets this duty's letter, and why anyone who might have did not."""
    found: list[Recipient] = []
    skipped: list[str] = []
    if duty.audience == "family":
        for person in case.household:
            if not person.get("safe_to_contact"):
                skipped.append(f"household member {person['id']}: not safe to contact")
                continue
            medium = person.get("preferred_channel", "post")
            address = person.get("email") if medium == "email" else person.get("address")
            template = duty.template
            if person.get("easy_read") and duty.easy_read_template:
                template = duty.easy_read_template
            if not address:
                skipped.append(f"household member {person['id']}: no {medium} address")
                continue
            found.append(Recipient(str(person["id"]), "family", medium, address, template))
    elif duty.audience == "referrer":
        route = _by_email_or_post(case.referrer.get("email"), case.referrer.get("address"))
        if route is None:
            skipped.append("referrer: no contact details (anonymous or not given)")
        else:
            found.append(Recipient("referrer", "referrer", route[0], route[1], duty.template))
    else:
        contact = school_contact(case)
        route = _by_email_or_post(contact.get("email"), contact.get("address")) if contact else None
        if route is None:
            skipped.append("school: no safeguarding lead's contact details")
        else:
            found.append(Recipient("school", "school", route[0], route[1], duty.template))
    return found, skipped


BY_PHONE = "tell them by phone"


def by_hand(case: Case, duty: DutyRule) -> str | None:
    """How a worker must do a duty no letter can do, or None when no one can be told at all."""
    if duty.audience == "referrer" and reachable_professional(case.referrer):
        return BY_PHONE
    return None


def on_event(
    session: Session,
    book: Rulebook,
    case: Case,
    event: Event,
    received_id: int | None,
    *,
    by_caseloop: bool = False,
) -> None:
    """Announce the letters the event makes owed, and what it changes for letters still waiting.

    ``by_caseloop`` marks the events caseloop records for itself (a duty whose letters went):
    only a council's own ``duty.fulfilled`` cancels letters not yet sent.
    """
    if isinstance(event, DutyFulfilled) and not by_caseloop:
        record(session, case, "duty.done", event.at, received_id, duty=event.duty, how=event.how, by=event.by)
        publish(session, DutyDoneByHand(case, event.duty, event.id, event.at, received_id))
    if isinstance(event, DecisionAmended):
        withdrawn = tuple(
            d.name for d in book.policy.duties if any(t.event == "decision.made" for t in d.after)
        )
        why = f"the decision was amended to {event.outcome}: {event.reason}"
        publish(session, LettersWithdrawn(case, withdrawn, why, event.at, received_id))
    if event.type in HOLD_CHANGING_EVENTS:
        reasons = hold_reasons(case)
        if reasons:
            lapse = isinstance(event, CaseClosed) and approval_lapses(case)
            publish(session, RiskCameToLight(case, tuple(reasons), event.at, received_id, lapse))
    # Only the duties with a trigger of this event's type can be made owed by it.
    candidates = book.policy.duties_by_event.get(event.type, ())
    met = met_this_episode(_episode_clocks(session, case), case) if candidates else frozenset()
    for duty in candidates:
        if not any(matches(t, event, case, met) for t in duty.after):
            continue
        said_already = _said_the_same_day(session, book, case, duty, event)
        if said_already:
            record(session, case, "letter.not_made", event.at, received_id, duty=duty.name, why=said_already)
            _cancel_clock(session, book, case, duty.name, event, received_id, said_already)
            continue
        found, skipped = recipients(case, duty)
        for reason in skipped:
            record(session, case, "letter.not_made", event.at, received_id, duty=duty.name, why=reason)
        if not found and (task := by_hand(case, duty)):
            # No letter can go, but a professional can still be told: the duty's clock runs on as
            # the worker's task, reminded and escalated like any deadline until it is recorded done.
            record(session, case, "duty.by_hand", event.at, received_id, duty=duty.name, task=task)
            continue
        if not found:
            # Nobody can be told (an anonymous referrer, no one safe to contact): the duty is moot.
            why = f"no one can be told: {'; '.join(skipped)}"
            _cancel_clock(session, book, case, duty.name, event, received_id, why)
            continue
        holds = tuple(hold_reasons(case))
        for who in found:
            channel = book.letter_channels[who.medium]
            mine = holds + _child_who_referred(case, who)
            publish(session, LetterOwed(case, duty.name, who, channel, event.id, event.at, received_id, mine))


def _episode_clocks(session: Session, case: Case) -> list[ClockRow]:
    """The case's clocks of its current episode, oldest first (a batch has them already)."""
    loaded = batch.current(session)
    if loaded is not None:
        return [c for c in loaded.clocks[case.id] if c.episode == case.episode]
    query = select(ClockRow).where(ClockRow.case_id == case.id, ClockRow.episode == case.episode)
    return list(session.scalars(query.order_by(ClockRow.id)))


def _child_who_referred(case: Case, who: Recipient) -> tuple[str, ...]:
    """A child who referred themselves may live with the people they told us about: a letter to
    them at home could be opened by those people, so a worker decides how to reply first."""
    if who.role == "referrer" and case.referral_source == SELF_SOURCE:
        return ("the child referred themselves: a worker decides whether and how a letter reaches them",)
    return ()


def _said_the_same_day(session: Session, book: Rulebook, case: Case, duty: DutyRule, event: Event) -> str:
    """Why this duty's letter would only repeat a letter owed the same day (empty: it would not)."""
    if not duty.not_on_the_same_day_as:
        return ""
    today = book.local_date(event.at)
    earlier = [
        c
        for c in _episode_clocks(session, case)
        if c.name in duty.not_on_the_same_day_as and c.status != ClockStatus.CANCELLED
    ]
    same_day = [c.name for c in earlier if book.local_date(c.started_at) == today]
    if not same_day:
        return ""
    return f"the {same_day[0]} letter owed the same day already tells the household"


def _cancel_clock(
    session: Session, book: Rulebook, case: Case, name: str, event: Event, received_id: int | None, why: str
) -> None:
    clock = next((c for c in _episode_clocks(session, case) if c.name == name and c.status in ACTIVE), None)
    if clock is None:
        return
    clock.status, clock.stopped_at, clock.updated_at = ClockStatus.CANCELLED, event.at, event.at
    clock.stopped_on = book.local_date(event.at)
    record(
        session,
        case,
        "clock.cancelled",
        event.at,
        received_id,
        clock=name,
        seq=clock.seq,
        why=why,
    )


def fulfilment_event(duty: str, source_event: str, case: Case, at: datetime) -> dict[str, Any]:
    """The ``duty.fulfilled`` event caseloop records for itself when a duty's letters have gone."""
    return {
        "id": limits.fitting_id("caseloop", duty, source_event),
        "case": case.ref,
        "type": "duty.fulfilled",
        "at": at.isoformat(),
        "duty": duty,
    }
