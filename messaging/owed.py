"""Letters owed become outbox rows; what the case reveals later changes the ones still waiting.

Handlers of the domain's announcements (:mod:`workflow.happened`), run in the transaction that
made them: a letter's row exists, or rolls back, with the event that made it owed.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from messaging.lifecycle import SYSTEM, admit, move
from messaging.outbox import OutboxMessage, Status
from workflow.happened import DutyDoneByHand, LetterOwed, RiskCameToLight
from workflow.history import record


def create_letter(session: Session, owed: LetterOwed) -> None:
    """One outbox row per duty, event and recipient (a replay finds the key and adds nothing)."""
    case, who = owed.case, owed.recipient
    key = f"{owed.duty}:{owed.event_id}:{who.key}"
    if session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)):
        return
    message = OutboxMessage(
        idempotency_key=key,
        kind=who.template,
        case_id=case.id,
        recipient_role=who.role,
        recipient=who.key,
        address=who.address,
        channel=owed.channel,
        office_hours_only=False,
        attempts=0,
        next_attempt_at=owed.at,
        created_at=owed.at,
        duty=owed.duty,
        source_event=owed.event_id,
        payload={"medium": who.medium, "episode": case.episode, "hold_reasons": list(owed.holds)},
    )
    status = Status.HELD if owed.holds else Status.QUEUED
    admit(session, message, status, SYSTEM, owed.at, "; ".join(owed.holds) or None)
    record(
        session,
        case,
        "letter.created",
        owed.at,
        owed.received_id,
        outbox=message.id,
        duty=owed.duty,
        status=message.status,
    )


def hold_waiting(session: Session, risk: RiskCameToLight) -> None:
    """Domestic abuse or a confidential address has just become known: letters still waiting to
    go are held for review too (those a person already approved stay approved)."""
    waiting = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.case_id == risk.case.id, OutboxMessage.status == Status.QUEUED.value)
        .with_for_update()
    ).all()
    for message in waiting:
        if message.payload.get("approved_by"):
            continue
        message.payload = {**message.payload, "hold_reasons": list(risk.reasons)}
        move(session, message, Status.HELD, by=SYSTEM, at=risk.at, note="; ".join(risk.reasons))
        record(
            session, risk.case, "letter.held", risk.at, risk.received_id, outbox=message.id, duty=message.duty
        )


def cancel_unsent(session: Session, done: DutyDoneByHand) -> None:
    """The council recorded the duty done by other means: letters not yet gone are not owed."""
    waiting = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.case_id == done.case.id,
            OutboxMessage.duty == done.duty,
            OutboxMessage.status.in_([Status.QUEUED.value, Status.HELD.value]),
        )
        .with_for_update()
    ).all()
    for message in waiting:
        note = f"duty recorded as done by event {done.event_id}"
        move(session, message, Status.CANCELLED, by=SYSTEM, at=done.at, note=note)
        record(
            session,
            done.case,
            "letter.cancelled",
            done.at,
            done.received_id,
            outbox=message.id,
            duty=done.duty,
        )


def duty_complete(session: Session, message: OutboxMessage) -> bool:
    """Whether ``message``'s duty has no letter left to go and at least one was sent."""
    if message.duty is None:
        return False
    siblings = session.scalars(
        select(OutboxMessage.status).where(
            OutboxMessage.case_id == message.case_id,
            OutboxMessage.duty == message.duty,
            OutboxMessage.source_event == message.source_event,
        )
    ).all()
    # Rejected or failed letters leave the duty owed: someone must reach that person another way.
    return Status.SENT.value in siblings and all(s in (Status.SENT, Status.CANCELLED) for s in siblings)
