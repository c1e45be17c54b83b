"""Failed and returned deliveries, and messages whose outcome is unknown: each with what to do.

What really happens next, which the advice says in plain words:

- a message is ``failed`` when its channel refused it for good (an SMTP 5xx, Notify's 400), when
  it ran out of attempts, or afterwards when GOV.UK Notify reported it failed or the letter came
  back (``returned-letter``, :mod:`messaging.status_reads`). ``failed`` is final: caseloop never
  sends that message again, not even once the address is corrected. A failed letter gives the
  case's worker a task instead (the ``failed_letter`` clock): reach the person another way, then
  record the task and the letter's duty done, which stops both clocks;
- a message is ``unknown`` when its attempt handed it over and then lost the answer. caseloop
  asks the channel once where it can tell (:mod:`messaging.reconcile`); what is still unknown
  after that stays so, and is never resent by itself: a person checks with the recipient.

The list is paged in the database, newest first, and holds only the letters of cases the person
may see and the digests sent to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from messaging.lateness import FAILED_LETTER_CLOCK
from messaging.outbox import OutboxAudit, OutboxMessage, Status
from services.actors import Actor
from services.authorisation import Action, authorise
from services.message_words import MEDIA, kind_in_words, medium_of, medium_sql
from services.queries import visible_messages
from services.runtime import Runtime
from workflow.clocks import Rulebook
from workflow.errors import Invalid
from workflow.model import Case

STATUSES = (Status.FAILED.value, Status.UNKNOWN.value)
ERROR_SHOWN = 160  # characters of a channel's error: enough to say what it was, no more
RETURNED = "returned-letter"
WHO = {"family": "the family member", "referrer": "the referrer", "school": "the school"}


@dataclass(frozen=True)
class Delivery:
    id: int
    case_ref: str | None  # None: a staff digest
    kind: str  # in words
    recipient_role: str
    medium: str  # email | post
    status: str  # failed | unknown
    returned: bool  # a posted letter that came back
    attempts: int
    last_error: str | None  # cut short
    at: datetime  # when it failed or became unknown, in the council's time zone
    to_do: str  # what to do, in plain words


@dataclass(frozen=True)
class Deliveries:
    rows: list[Delivery]
    total: int


def check_filters(status: str | None, medium: str | None) -> None:
    """Refuse a filter value the page does not offer, naming it."""
    if status and status not in STATUSES:
        raise Invalid(f"status: {status!r} is not one of {', '.join(STATUSES)}")
    if medium and medium not in MEDIA:
        raise Invalid(f"channel: {medium!r} is not one of {', '.join(MEDIA)}")


def deliveries(
    rt: Runtime,
    actor: Actor,
    limit: int,
    offset: int = 0,
    *,
    status: str | None = None,
    medium: str | None = None,
) -> Deliveries:
    """Failed and unknown messages ``actor`` may see, newest first (``status`` and ``medium``
    narrow it), ``limit`` of them from ``offset``."""
    authorise(actor, Action.READ_OUTBOX)
    check_filters(status, medium)
    went_wrong = (
        select(func.max(OutboxAudit.at))
        .where(OutboxAudit.outbox_id == OutboxMessage.id, OutboxAudit.action.in_(STATUSES))
        .correlate(OutboxMessage)
        .scalar_subquery()
    )
    condition = OutboxMessage.status.in_([status] if status else STATUSES) & visible_messages(actor)
    if medium:
        condition = condition & (medium_sql() == medium)
    joined = select(
        OutboxMessage.id,
        OutboxMessage.kind,
        OutboxMessage.duty,
        OutboxMessage.recipient_role,
        OutboxMessage.payload,
        OutboxMessage.status,
        OutboxMessage.attempts,
        OutboxMessage.last_error,
        OutboxMessage.created_at,
        went_wrong.label("went_wrong_at"),
        Case.ref,
    ).outerjoin(Case, Case.id == OutboxMessage.case_id)
    newest = func.coalesce(went_wrong, OutboxMessage.created_at)
    paged = joined.where(condition).order_by(newest.desc(), OutboxMessage.id.desc())
    counted = (
        select(func.count()).select_from(OutboxMessage).outerjoin(Case, Case.id == OutboxMessage.case_id)
    )
    with rt.reading() as uow:
        total = uow.session.scalar(counted.where(condition)) or 0
        rows = [_row(rt.book, found) for found in uow.session.execute(paged.offset(offset).limit(limit))]
    return Deliveries(rows, total)


def _row(book: Rulebook, found: Any) -> Delivery:
    payload: dict[str, Any] = found.payload or {}
    medium = medium_of(found.duty, payload)
    returned = payload.get("delivery_status") == RETURNED
    error = found.last_error
    if error and len(error) > ERROR_SHOWN:
        error = error[: ERROR_SHOWN - 1].rstrip() + "…"
    advice = what_to_do(
        book,
        status=found.status,
        medium=medium,
        recipient_role=found.recipient_role,
        digest=found.duty is None,
        returned=returned,
        out_of_attempts=bool(found.last_error and found.last_error.startswith("out of attempts")),
    )
    return Delivery(
        id=found.id,
        case_ref=found.ref,
        kind=kind_in_words(found.kind),
        recipient_role=found.recipient_role,
        medium=medium,
        status=found.status,
        returned=returned,
        attempts=found.attempts,
        last_error=error,
        at=(found.went_wrong_at or found.created_at).astimezone(book.zone),
        to_do=advice,
    )


def what_to_do(
    book: Rulebook,
    *,
    status: str,
    medium: str,
    recipient_role: str,
    digest: bool,
    returned: bool,
    out_of_attempts: bool,
) -> str:
    """The next step for one message, in plain words, as caseloop will (and will not) act."""
    if digest:
        if status == Status.UNKNOWN.value:
            return (
                "This reminder email to you may not have arrived, and caseloop does not send it again. "
                "The deadlines it listed are on My work."
            )
        return (
            "This reminder email to you could not be delivered, and caseloop does not send it again. "
            "The deadlines it listed are on My work. If your email address is wrong, ask for it to "
            "be corrected in the staff list."
        )
    who = WHO.get(recipient_role, f"the {recipient_role}")
    record = "then record it done in the case management system (the letter's duty"
    if status == Status.UNKNOWN.value:
        return (
            "It was handed over but caseloop never heard whether it arrived, and it never sends a "
            f"message like this again by itself. Check with {who} whether they got it before "
            f"sending anything again. If they did not, reach them another way (phone, or post or "
            f"email the letter yourself), {record})."
        )
    task = _task(book)
    reach = f"The case's worker has a task{task} to reach {who} another way; {record} and the task)."
    if returned:
        return (
            "The letter came back: the address on the case is wrong or out of date. Correct it in "
            "the case management system. caseloop does not post this letter again, even to the "
            "corrected address: phone them, or post or hand it to them yourself. " + reach
        )
    if out_of_attempts:
        cause = "caseloop tried several times and could not hand it over, and does not try again."
    elif medium == "email":
        cause = (
            "The email was refused: the address on the case may be wrong. Check it in the case "
            "management system. caseloop does not send this letter again, even once the address "
            "is corrected: phone them, or post the letter yourself."
        )
    else:
        cause = (
            "The letter could not be posted, and caseloop does not try again: phone them, or post "
            "or hand it to them yourself."
        )
    return f"{cause} {reach}"


def _task(book: Rulebook) -> str:
    rule = book.policy.clock(FAILED_LETTER_CLOCK)
    days = rule.goal.working_days if rule is not None else None
    return f" (due within {days} working days)" if days else ""
