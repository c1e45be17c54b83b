"""What staff do on a case besides reviewing letters: acknowledge a reminder, record a duty done."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from services.actors import SYSTEM, Actor
from services.authorisation import Action, authorise, may_see, require_staff
from services.intake import import_events
from services.runtime import Runtime
from workflow import reminders
from workflow.errors import Invalid, NotFound
from workflow.events import HOW_DONE
from workflow.limits import fitting_id
from workflow.model import Case, ReceivedEvent


@dataclass(frozen=True)
class Acknowledged:
    reminder: int
    acknowledgement: int


def acknowledge_reminder(
    rt: Runtime, actor: Actor, reminder_id: int, note: str | None, now: datetime | None = None
) -> Acknowledged:
    """Record that the actor has seen reminder ``reminder_id``: no repeats to them for that clock
    until it escalates further. Only the person it was sent to may acknowledge it."""
    require_staff(actor, Action.ACKNOWLEDGE_REMINDER)
    authorise(actor, Action.ACKNOWLEDGE_REMINDER)
    with rt.writing() as uow:
        ack = reminders.acknowledge(uow.session, reminder_id, actor.id, note, now or rt.clock())
        result = Acknowledged(reminder_id, ack.id)
        uow.commit()
    return result


def record_duty_done(
    rt: Runtime,
    actor: Actor,
    case_ref: str,
    duty: str,
    now: datetime | None = None,
    *,
    how: str | None = None,
) -> bool:
    """Record that ``duty`` on ``case_ref`` was done by hand, ``how`` (phone, meeting, letter):
    a ``duty.fulfilled`` event like the council's own, naming how and by whom (kept in the case
    history), so its clock stops and its unsent letters are no longer owed. True if it was
    recorded now, False if it was already."""
    require_staff(actor, Action.RECORD_DUTY)
    authorise(actor, Action.RECORD_DUTY)
    now = now or rt.clock()
    if duty not in rt.book.policy.done_by_hand:
        raise Invalid(f"no duty {duty!r} in the policy")
    if how is not None and how not in HOW_DONE:
        raise Invalid(f"how: {how!r} is not one of {', '.join(HOW_DONE)}")
    with rt.reading() as uow:
        case = uow.session.scalar(select(Case).where(Case.ref == case_ref))
        if case is None or not may_see(actor, case):
            raise NotFound(f"no case {case_ref!r}")
        event_id = fitting_id("by-hand", case_ref, str(case.episode), duty)
        # Recorded before (at another time, so another `at`): the same id with other content
        # would be refused as a conflict, so answer from what is kept.
        if uow.session.scalar(select(ReceivedEvent.id).where(ReceivedEvent.event_id == event_id)):
            return False
    event = {
        "id": event_id,
        "case": case_ref,
        "type": "duty.fulfilled",
        "at": now.isoformat(),
        "duty": duty,
        "by": actor.id,
        **({"how": how} if how is not None else {}),
    }
    # Imported as caseloop itself (the staff member may not import events): the source names them.
    report = import_events(rt, SYSTEM, [json.dumps(event)], f"staff:{actor.id}", now)
    if report.rejected:
        raise Invalid(report.rejected[0])
    return report.accepted == 1
