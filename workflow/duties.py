"""Duties: the letters a transition makes owed, announced as :class:`LetterOwed` in its transaction.

For every duty of the policy that an accepted event fires, one letter per recipient:

- **family**: each household member who is safe to contact (never one who is not; that is
  recorded in the case history instead);
- **referrer**: the referrer, by email or post, when there are contact details;
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

from workflow.bus import publish
from workflow.census import DOMESTIC_ABUSE_FACTORS, SCHOOL_SOURCES, Flag
from workflow.clocks import ACTIVE, ClockStatus, Rulebook, matches, met_this_episode
from workflow.events import DutyFulfilled, Event
from workflow.happened import DutyDoneByHand, LetterOwed, Recipient, RiskCameToLight
from workflow.history import record
from workflow.model import Case, ClockRow
from workflow.policy import DutyRule

# The events that can reveal domestic abuse (factors 3A–3C) or a confidential address.
HOLD_CHANGING_EVENTS = frozenset({"assessment.completed", "household.updated"})


def hold_reasons(case: Case) -> list[str]:
    """Why every letter on this case must wait for a worker's review (empty: none)."""
    reasons = []
    if Flag.DOMESTIC_ABUSE.value in case.flags or DOMESTIC_ABUSE_FACTORS & set(case.factors):
        reasons.append("domestic abuse: a worker must review every letter")
    if any(p.get("confidential_address") for p in case.household):
        reasons.append("a household member's address is confidential")
    return reasons


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
        publish(session, DutyDoneByHand(case, event.duty, event.id, event.at, received_id))
    if event.type in HOLD_CHANGING_EVENTS:
        reasons = hold_reasons(case)
        if reasons:
            publish(session, RiskCameToLight(case, tuple(reasons), event.at, received_id))
    episode = select(ClockRow).where(ClockRow.case_id == case.id, ClockRow.episode == case.episode)
    met = met_this_episode(session.scalars(episode), case)
    for duty in book.policy.duties:
        if not any(matches(t, event, case, met) for t in duty.after):
            continue
        found, skipped = recipients(case, duty)
        for reason in skipped:
            record(session, case, "letter.not_made", event.at, received_id, duty=duty.name, why=reason)
        if not found:
            # Nobody can be told (an anonymous referrer, no one safe to contact): the duty is moot.
            _cancel_clock(session, book, case, duty.name, event, received_id, "; ".join(skipped))
            continue
        holds = tuple(hold_reasons(case))
        for who in found:
            channel = book.letter_channels[who.medium]
            publish(
                session, LetterOwed(case, duty.name, who, channel, event.id, event.at, received_id, holds)
            )


def _cancel_clock(
    session: Session, book: Rulebook, case: Case, name: str, event: Event, received_id: int | None, why: str
) -> None:
    clock = session.scalar(
        select(ClockRow).where(
            ClockRow.case_id == case.id,
            ClockRow.episode == case.episode,
            ClockRow.name == name,
            ClockRow.status.in_([s.value for s in ACTIVE]),
        )
    )
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
        why=f"no one can be told: {why}",
    )


def fulfilment_event(duty: str, source_event: str, case: Case, at: datetime) -> dict[str, Any]:
    """The ``duty.fulfilled`` event caseloop records for itself when a duty's letters have gone."""
    return {
        "id": f"caseloop:{duty}:{source_event}",
        "case": case.ref,
        "type": "duty.fulfilled",
        "at": at.isoformat(),
        "duty": duty,
    }
