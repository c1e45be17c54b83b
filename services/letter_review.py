"""Letters awaiting approval, for the pages: the held list, and one letter as its reviewer sees it.

The list holds only the held letters of cases the person may see (a worker's own cases, a
manager's team's), oldest first, paged in the database. One letter shows everything a reviewer
needs: why it waits, who has acted on it (its audit trail, the reviewer's own views included)
and its text exactly as it will go, which :func:`services.letters.show_message` renders and
records as viewed before handing it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select

from letters.rendering import RenderError
from messaging.archive import StoredContentAltered
from messaging.outbox import OutboxAudit, OutboxMessage, Status
from services.actors import Actor
from services.authorisation import Action, authorise, visible_cases
from services.letters import may_approve_on, message_for, show_message
from services.message_words import duty_in_words, kind_in_words, medium_of
from services.runtime import Runtime
from workflow.errors import Invalid, NotFound
from workflow.model import Case


@dataclass(frozen=True)
class HeldLetter:
    """One row of the held list."""

    id: int
    case_ref: str
    kind: str  # in words
    recipient_role: str
    medium: str  # email | post
    held_on: date  # the local date it was (last) held
    working_days_held: int  # working days since then
    reasons: list[str]
    may_approve: bool


@dataclass(frozen=True)
class HeldLetters:
    rows: list[HeldLetter]
    total: int


def _held_since() -> Any:
    """When each letter was last held (the newest ``held`` audit row), as a correlated subquery."""
    return (
        select(func.max(OutboxAudit.at))
        .where(OutboxAudit.outbox_id == OutboxMessage.id, OutboxAudit.action == "held")
        .correlate(OutboxMessage)
        .scalar_subquery()
    )


def held_letters(
    rt: Runtime, actor: Actor, limit: int, offset: int = 0, now: datetime | None = None
) -> HeldLetters:
    """Held letters on the cases ``actor`` may see, oldest first: ``limit`` of them from ``offset``."""
    authorise(actor, Action.READ_OUTBOX)
    today = rt.book.local_date(now or rt.clock())
    since = func.coalesce(_held_since(), OutboxMessage.created_at)
    condition = (OutboxMessage.status == Status.HELD.value) & visible_cases(actor)
    columns = select(
        OutboxMessage.id,
        OutboxMessage.kind,
        OutboxMessage.duty,
        OutboxMessage.recipient_role,
        OutboxMessage.payload,
        OutboxMessage.created_at,
        _held_since().label("held_at"),
        Case.ref,
        Case.worker,
        Case.team,
    ).join(Case, Case.id == OutboxMessage.case_id)
    paged = columns.where(condition).order_by(since, OutboxMessage.id).offset(offset).limit(limit)
    counted = select(func.count()).select_from(OutboxMessage).join(Case, Case.id == OutboxMessage.case_id)
    with rt.reading() as uow:
        total = uow.session.scalar(counted.where(condition)) or 0
        rows = []
        for found in uow.session.execute(paged):
            held_on = rt.book.local_date(found.held_at or found.created_at)
            rows.append(
                HeldLetter(
                    id=found.id,
                    case_ref=found.ref,
                    kind=kind_in_words(found.kind),
                    recipient_role=found.recipient_role,
                    medium=medium_of(found.duty, found.payload),
                    held_on=held_on,
                    working_days_held=rt.book.calendar.working_days_between(held_on, today),
                    reasons=list((found.payload or {}).get("hold_reasons") or []),
                    may_approve=may_approve_on(actor, found.worker, found.team),
                )
            )
    return HeldLetters(rows, total)


@dataclass(frozen=True)
class AuditEntry:
    action: str  # held, approved, rejected, viewed, sent, failed …
    by: str
    at: datetime  # in the council's time zone
    note: str | None


@dataclass(frozen=True)
class LetterUnderReview:
    """One outbox message as the letter page shows it."""

    id: int
    case_ref: str | None  # None: a staff digest
    kind: str  # in words
    duty: str | None  # the duty it fulfils, in words
    recipient_role: str
    recipient: str  # the household member's id, "referrer", "school", or a staff id
    address: str  # where it goes: staff may see what the case holds
    medium: str  # email | post
    status: str
    reasons: list[str]  # why it is held (empty: it is not)
    approved_by: str | None
    lapsed_approval: str | None  # an approval given earlier that no longer stands, and why
    last_error: str | None
    attempts: int
    may_approve: bool
    as_sent: bool  # the content is the copy kept when it was handed over, not a fresh rendering
    text: str | None  # the text exactly as it goes (or went); None when it cannot be shown
    text_problem: str | None  # why the text cannot be shown
    audit: list[AuditEntry]

    @property
    def held(self) -> bool:
        return self.status == Status.HELD.value

    @property
    def has_pdf(self) -> bool:
        return self.medium == "post"


def letter_under_review(rt: Runtime, actor: Actor, outbox_id: int) -> LetterUnderReview:
    """Message ``outbox_id`` with its text and audit trail, if ``actor`` may see it (else the
    NotFound of a message that does not exist). Showing the text records a ``viewed`` audit row,
    so the trail returned includes this very view."""
    authorise(actor, Action.READ_OUTBOX)
    with rt.reading() as uow:
        message_for(uow.session, actor, outbox_id)  # NotFound before anything is shown
    text: str | None = None
    problem: str | None = None
    try:
        shown = show_message(rt, actor, outbox_id, "text")
        text = shown.content if isinstance(shown.content, str) else shown.content.decode("utf-8")
    except (RenderError, StoredContentAltered, NotFound, Invalid) as exc:
        # A letter held because it cannot be filled in whole, or a kept copy that fails its
        # check: the page still says why it waits and who has acted on it.
        problem = str(exc)
    with rt.reading() as uow:
        row, case = message_for(uow.session, actor, outbox_id)
        trail = uow.session.scalars(
            select(OutboxAudit).where(OutboxAudit.outbox_id == outbox_id).order_by(OutboxAudit.id)
        )
        audit = [AuditEntry(a.action, a.by, a.at.astimezone(rt.book.zone), a.note) for a in trail]
        payload: dict[str, Any] = row.payload or {}
        lapsed = payload.get("approval_lapsed")
        return LetterUnderReview(
            id=row.id,
            case_ref=case.ref if case is not None else None,
            kind=kind_in_words(row.kind),
            duty=duty_in_words(rt.book, row.duty),
            recipient_role=row.recipient_role,
            recipient=row.recipient,
            address=row.address,
            medium=medium_of(row.duty, payload),
            status=row.status,
            reasons=list(payload.get("hold_reasons") or []) if row.status == Status.HELD.value else [],
            approved_by=payload.get("approved_by"),
            lapsed_approval=(
                f"{lapsed.get('by')} had approved it; that no longer stands: {lapsed.get('why')}"
                if isinstance(lapsed, dict)
                else None
            ),
            last_error=row.last_error,
            attempts=row.attempts,
            may_approve=case is not None and may_approve_on(actor, case.worker, case.team),
            as_sent=row.status in (Status.SENT.value, Status.UNKNOWN.value) or row.sent_at is not None,
            text=text,
            text_problem=problem,
            audit=audit,
        )


def letter_content(rt: Runtime, actor: Actor, outbox_id: int, form: str) -> str | bytes:
    """A letter's PDF (posted letters only) or HTML, for the frame on its page; the view is
    recorded as every view is."""
    authorise(actor, Action.READ_OUTBOX)
    if form == "pdf":
        with rt.reading() as uow:
            row, _ = message_for(uow.session, actor, outbox_id)
            if medium_of(row.duty, row.payload) != "post":
                raise Invalid(f"outbox {outbox_id} goes by email: it has no PDF")
        return show_message(rt, actor, outbox_id, "pdf").content
    if form == "html":
        return show_message(rt, actor, outbox_id, "html").content
    raise Invalid(f"a letter is shown as pdf or html, not {form!r}")
