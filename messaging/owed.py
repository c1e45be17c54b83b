"""Letters owed become outbox rows; what the case reveals later changes the ones still waiting.

Handlers of the domain's announcements (:mod:`workflow.happened`), run in the transaction that
made them: a letter's row exists, or rolls back, with the event that made it owed.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from messaging.lifecycle import SYSTEM, admit, move
from messaging.outbox import OutboxMessage, Status
from workflow import batch
from workflow.happened import DutyDoneByHand, LetterOwed, LettersWithdrawn, RiskCameToLight
from workflow.history import record


def create_letter(session: Session, owed: LetterOwed) -> None:
    """One outbox row per duty, event and recipient (a replay finds the key and adds nothing)."""
    case, who = owed.case, owed.recipient
    key = f"{owed.duty}:{owed.event_id}:{who.key}"
    loaded = batch.current(session)
    if loaded is not None:
        if key in loaded.letter_keys:  # the batch read every letter of its cases
            return
    elif session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)):
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
        episode=case.episode,
        payload={"medium": who.medium, "episode": case.episode, "hold_reasons": list(owed.holds)},
    )
    status = Status.HELD if owed.holds else Status.QUEUED
    if loaded is not None:
        message.id = loaded.ids.next(OutboxMessage)  # known now: admit need not flush for it
        loaded.letters[case.id].append(message)
        loaded.letter_keys.add(key)
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
    """A risk has just become known: letters still waiting to go are held for review too. Those a
    person already approved stay approved, unless the approval lapses (a child's death)."""
    loaded = batch.current(session)
    if loaded is not None:
        waiting = [m for m in loaded.letters[risk.case.id] if m.status == Status.QUEUED.value]
    else:
        waiting = list(
            session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.case_id == risk.case.id, OutboxMessage.status == Status.QUEUED.value)
                .with_for_update()
            )
        )
    for message in waiting:
        approved = message.payload.get("approved_by")
        if approved and not risk.approvals_lapse:
            continue
        payload = {**message.payload, "hold_reasons": list(risk.reasons)}
        if approved:
            payload["approval_lapsed"] = {"by": approved, "why": "; ".join(risk.reasons)}
            payload.pop("approved_by")
        message.payload = payload
        move(session, message, Status.HELD, by=SYSTEM, at=risk.at, note="; ".join(risk.reasons))
        record(
            session, risk.case, "letter.held", risk.at, risk.received_id, outbox=message.id, duty=message.duty
        )


def _unsent(session: Session, case_id: int, duties: tuple[str, ...]) -> list[OutboxMessage]:
    unsent = (Status.QUEUED.value, Status.HELD.value)
    loaded = batch.current(session)
    if loaded is not None:
        return [m for m in loaded.letters[case_id] if m.duty in duties and m.status in unsent]
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.case_id == case_id,
                OutboxMessage.duty.in_(duties),
                OutboxMessage.status.in_([Status.QUEUED.value, Status.HELD.value]),
            )
            .order_by(OutboxMessage.id)
            .with_for_update()
        ).all()
    )


def _episode(message: OutboxMessage) -> int | None:
    value = message.payload.get("episode")
    return int(value) if value is not None else None


def cancel_unsent(session: Session, done: DutyDoneByHand) -> None:
    """The council recorded the duty done by other means: letters not yet gone are not owed.

    Like the duty's clock, it is this episode's letters the record speaks of; only when this
    episode owes none is it a letter still owed from an earlier episode."""
    waiting = _unsent(session, done.case.id, (done.duty,))
    current = [m for m in waiting if _episode(m) in (done.case.episode, None)]
    for message in current or waiting:
        note = f"duty recorded as done by event {done.event_id}"
        move(session, message, Status.CANCELLED, by=SYSTEM, at=done.at, note=note)
        record(
            session,
            done.case,
            "letter.cancelled",
            done.at,
            done.received_id,
            outbox=message.id,
            duty=message.duty,
        )


def withdraw_unsent(session: Session, withdrawn: LettersWithdrawn) -> None:
    """The decision was amended: its letters not yet sent say something no longer true.
    Letters already sent stay sent; the amended decision owes letters of its own."""
    for message in _unsent(session, withdrawn.case.id, withdrawn.duties):
        if _episode(message) not in (withdrawn.case.episode, None):
            continue  # an earlier episode's letters are that episode's, untouched by this one
        move(session, message, Status.CANCELLED, by=SYSTEM, at=withdrawn.at, note=withdrawn.why)
        record(
            session,
            withdrawn.case,
            "letter.cancelled",
            withdrawn.at,
            withdrawn.received_id,
            outbox=message.id,
            duty=message.duty,
            why="decision amended",
        )


def letters_of(session: Session, case_ids: list[int]) -> list[OutboxMessage]:
    """Every letter of these cases, oldest first, locked: what a batch of their events may change."""
    query = select(OutboxMessage).where(OutboxMessage.case_id.in_(case_ids)).order_by(OutboxMessage.id)
    return list(session.scalars(query.with_for_update()))


def letter_key(message: OutboxMessage) -> str:
    return message.idempotency_key


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
