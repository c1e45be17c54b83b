"""Letters a person reviews: approve (it is queued) or reject (it never goes), and see one as
its recipient will (or, once sent, as they got it).

Who may see a held letter: whoever may see the case. Who may approve one, with a reason: only
the case's allocated worker, its team's manager, or the service manager over that team (the
people who answer for what it says). Every decision writes one audit row, in the same
transaction, with who, when and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from letters.letters_renderer import LetterOrder
from messaging.archive import stored
from messaging.compose import order_of
from messaging.lifecycle import move
from messaging.outbox import OutboxAudit, OutboxMessage, Status
from services.actors import Actor, Kind
from services.authorisation import Action, authorise, may_see, require_staff
from services.runtime import Runtime
from workflow.duties import recipients
from workflow.errors import Conflict, Forbidden, Invalid, NotFound
from workflow.history import record
from workflow.model import Case
from workflow.staff import Role

Format = Literal["text", "html", "pdf"]


def message_for(
    session: Session, actor: Actor, outbox_id: int, *, lock: bool = False
) -> tuple[OutboxMessage, Case | None]:
    """The message and its case, if ``actor`` may see them; else the same NotFound as for none."""
    row = session.get(OutboxMessage, outbox_id, with_for_update=lock)
    case = session.get(Case, row.case_id) if row is not None and row.case_id is not None else None
    if row is None or not _may_see_message(actor, row, case):
        raise NotFound(f"no outbox message {outbox_id}")
    return row, case


def _may_see_message(actor: Actor, row: OutboxMessage, case: Case | None) -> bool:
    if case is not None:
        return may_see(actor, case)
    # A staff digest: its reader, or caseloop itself.
    return actor.kind is Kind.SYSTEM or (actor.kind is Kind.STAFF and row.recipient == actor.id)


def may_approve(actor: Actor, case: Case) -> bool:
    """Whether ``actor`` answers for the case's letters: its worker, its team manager, or a
    service manager over its team (``Actor.teams``: their own and those whose managers report
    to them, from the staff directory)."""
    return may_approve_on(actor, case.worker, case.team)


def may_approve_on(actor: Actor, worker: str | None, team: str) -> bool:
    """:func:`may_approve` for a case known only by its worker and team (a list's columns)."""
    if actor.kind is not Kind.STAFF:
        return False
    if worker == actor.id:
        return True
    if actor.role is Role.TEAM_MANAGER:
        return actor.team == team
    return actor.role is Role.SERVICE_MANAGER and team in actor.teams


def _held(session: Session, actor: Actor, outbox_id: int) -> tuple[OutboxMessage, Case | None]:
    row, case = message_for(session, actor, outbox_id, lock=True)
    if row.status != Status.HELD:
        raise Conflict(f"outbox {outbox_id} is {row.status}, not held: only held letters are reviewed")
    return row, case


def approve_letter(
    rt: Runtime, actor: Actor, outbox_id: int, note: str | None, now: datetime | None = None
) -> None:
    """Release a held letter: it is queued and sent by the next sweep."""
    require_staff(actor, Action.REVIEW_LETTER)
    authorise(actor, Action.REVIEW_LETTER)
    now = now or rt.clock()
    with rt.writing() as uow:
        row, case = _held(uow.session, actor, outbox_id)
        if case is not None and not may_approve(actor, case):
            raise Forbidden(
                f"{actor.id} may not approve letters on case {case.ref}: only its allocated worker, "
                "its team manager or that team's service manager may"
            )
        if not (note or "").strip():
            raise Invalid("an approval needs a reason: say why the letter is safe to send")
        row.next_attempt_at, row.dispatched_at, row.last_error = now, None, None
        row.payload = {**row.payload, "approved_by": actor.id, "approved_at": now.isoformat()}
        move(uow.session, row, Status.QUEUED, by=actor.id, at=now, note=note)
        if case is not None:
            record(uow.session, case, "letter.approved", now, None, outbox=row.id, by=actor.id)
        uow.commit()


def reject_letter(
    rt: Runtime, actor: Actor, outbox_id: int, reason: str, now: datetime | None = None
) -> None:
    """Stop a held letter for good. The duty it served stays owed until it is met another way."""
    require_staff(actor, Action.REVIEW_LETTER)
    authorise(actor, Action.REVIEW_LETTER)
    if not reason.strip():
        raise Invalid("a rejection needs a reason")
    now = now or rt.clock()
    with rt.writing() as uow:
        row, case = _held(uow.session, actor, outbox_id)
        move(uow.session, row, Status.REJECTED, by=actor.id, at=now, note=reason)
        if case is not None:
            record(uow.session, case, "letter.rejected", now, None, outbox=row.id, by=actor.id)
        uow.commit()


@dataclass(frozen=True)
class Shown:
    summary: str  # what the message is, to whom, by what channel and in what status
    content: str | bytes


def show_message(rt: Runtime, actor: Actor, outbox_id: int, fmt: Format) -> Shown:
    """A message as its recipient got it, or would get it.

    Once an attempt has handed it over (sent, or unknown) it is the copy kept at that moment,
    checked against its SHA-256; a copy that fails the check is reported, never replaced by a
    fresh rendering. Before that, it is rendered now, without sending anything.

    Every view is recorded (an ``outbox_audit`` row ``viewed``, with who and in what form) before
    the content is handed back: a letter nobody may read without it being known.
    """
    authorise(actor, Action.READ_OUTBOX)
    # Rendered in a reading unit of work (a PDF takes a while, and must not hold the write lock),
    # then the view recorded in a short writing one; if that fails, nothing is shown.
    with rt.reading() as uow:
        row, _ = message_for(uow.session, actor, outbox_id)
        as_sent = row.status in (Status.SENT, Status.UNKNOWN) or row.sent_at is not None
        if as_sent:
            if fmt == "pdf" and row.payload.get("medium") != "post":
                raise Invalid(f"outbox {row.id} went by email: it has no PDF")
            kept = stored(uow.session, row.id, fmt)
            content: str | bytes = kept.body if fmt == "pdf" else kept.body.decode("utf-8")
            how = f", as sent (attempt {kept.attempt}, sha256 {kept.sha256[:12]}… checked)"
        elif row.duty is None:
            if fmt == "pdf":
                raise Invalid("only letters have a PDF")
            email = rt.renderers[row.kind](uow.session, row)
            content, how = (email.html if fmt == "html" else email.text), ", rendered now"
        else:
            content, how = _letter(rt, uow.session, order_of(row), fmt), ", rendered now"
        reasons = "; ".join(row.payload.get("hold_reasons") or [])
        summary = (
            f"outbox {row.id}: {row.kind} to {row.recipient_role} {row.recipient} by "
            f"{row.channel}, {row.status}" + (f" ({reasons})" if reasons else "") + how
        )
    with rt.writing() as uow:
        uow.session.add(
            OutboxAudit(outbox_id=outbox_id, action="viewed", by=actor.name, at=rt.clock(), note=f"as {fmt}")
        )
        uow.commit()
    return Shown(summary, content)


def _letter(rt: Runtime, session: Session, order: LetterOrder, fmt: Format) -> str | bytes:
    rendered, _ = rt.letters.render(session, order)
    if fmt == "text":
        return rendered.text
    if fmt == "html":
        return rendered.html
    return rt.letters.pdf(rendered)


def preview_template(rt: Runtime, actor: Actor, key: str, case_ref: str, fmt: Format) -> str | bytes:
    """A template filled for a case's first eligible recipient, without creating a letter."""
    authorise(actor, Action.READ_CASE)
    entry = rt.catalogue.entry(key)
    with rt.reading() as uow:
        found = uow.session.scalar(select(Case).where(Case.ref == case_ref))
        if found is None or not may_see(actor, found):
            raise NotFound(f"no case {case_ref!r}")
        duty = next((d for d in rt.book.policy.duties if d.audience == entry.audience), None)
        if duty is None:
            raise Invalid(f"no duty in the policy writes to {entry.audience}")
        people, skipped = recipients(found, duty)
        if not people:
            raise Conflict(f"case {case_ref} has no {entry.audience} recipient: {'; '.join(skipped)}")
        who = people[0]
        order = LetterOrder(0, key, found.id, who.role, who.key, who.medium)
        return _letter(rt, uow.session, order, fmt)
