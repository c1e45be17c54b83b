"""The daily reminder digest for one member of staff: its outbox row, a view-model, text and HTML.

Subjects never carry a child's name, and neither does the body: staff follow the link to the
case, where access is checked.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from letters.rendering import RenderError, Templates
from messaging.email import OUTBOX_ID_HEADER, REFERENCE_HEADER, OutgoingEmail
from messaging.lifecycle import SYSTEM, admit
from messaging.outbox import OutboxMessage, Status
from workflow.clocks import Rulebook
from workflow.happened import DigestOwed
from workflow.model import Case, ClockRow
from workflow.reminders import DIGEST_KIND, ReminderItem
from workflow.staff import Role, Staff

_SITUATION = {
    "warning": "Due on {due}: {left} working day(s) left.",
    "due": "Due today ({due}).",
    "breach": "Overdue: it was due on {due} ({over} working day(s) ago).",
    "escalation": "Escalated to you: it was due on {due} ({over} working day(s) ago).",
    "repeat": "Still overdue: it was due on {due} ({over} working day(s) ago).",
}


def create_digest(session: Session, owed: DigestOwed) -> None:
    """The digest's outbox row (one per person and day, by its key), linked from its items."""
    person = owed.person
    message = OutboxMessage(
        idempotency_key=f"{DIGEST_KIND}:{person.id}:{owed.day.isoformat()}",
        kind=DIGEST_KIND,
        case_id=None,
        recipient_role="worker" if person.role == Role.SOCIAL_WORKER.value else "manager",
        recipient=person.id,
        address=person.email,
        channel=owed.channel,
        office_hours_only=True,
        attempts=0,
        next_attempt_at=owed.at,
        created_at=owed.at,
        payload={"date": owed.day.isoformat(), "items": list(owed.item_ids)},
    )
    admit(session, message, Status.QUEUED, SYSTEM, owed.at)
    session.execute(
        update(ReminderItem).where(ReminderItem.id.in_(owed.item_ids)).values(outbox_id=message.id)
    )


class DigestRenderer:
    def __init__(self, templates: Templates, book: Rulebook, base_url: str) -> None:
        self.templates, self.book, self.base_url = templates, book, base_url.rstrip("/")

    def __call__(self, session: Session, row: OutboxMessage) -> OutgoingEmail:
        person = session.get(Staff, row.recipient)
        if person is None:
            raise RenderError(f"outbox {row.id}: staff member {row.recipient} no longer exists")
        items = session.execute(
            select(ReminderItem, ClockRow, Case)
            .join(ClockRow, ClockRow.id == ReminderItem.clock_id)
            .join(Case, Case.id == ReminderItem.case_id)
            .where(ReminderItem.outbox_id == row.id)
            .order_by(ClockRow.due_on, Case.ref, ReminderItem.id)
        ).all()
        if not items:
            raise RenderError(f"outbox {row.id}: the digest has no reminders")
        day = row.payload["date"]
        views = [self._item(item, clock, case, day) for item, clock, case in items]
        overdue = sum(1 for v in views if v["overdue"])
        subject = f"caseloop: {len(views)} deadline{'s need' if len(views) != 1 else ' needs'} attention"
        subject += f" ({overdue} overdue)" if overdue else ""
        intro = (
            f"These deadlines need your attention on {day}. Overdue ones come first."
            if overdue
            else f"These deadlines are coming up ({day})."
        )
        views.sort(key=lambda v: (not v["overdue"], v["due"]))
        context = {
            "subject": subject,
            "person_name": person.name,
            "person_id": person.id,
            "intro": intro,
            "items": views,
        }
        text, html = self.templates.render("staff/reminder_digest", context)
        return OutgoingEmail(
            to=row.address,
            subject=subject,
            text=text,
            html=html,
            message_id=f"<{row.idempotency_key.replace(':', '.')}@caseloop>",
            headers={OUTBOX_ID_HEADER: str(row.id), REFERENCE_HEADER: row.idempotency_key},
        )

    def _item(self, item: ReminderItem, clock: ClockRow, case: Case, day: str) -> dict[str, Any]:
        rule = self.book.policy.clock(clock.name)

        today = date.fromisoformat(day)
        left = self.book.calendar.working_days_between(today, clock.due_on)
        over = self.book.calendar.working_days_between(clock.due_on, today)
        return {
            "id": item.id,
            "case": case.ref,
            "clock_label": rule.label if rule else clock.name,
            "due": clock.due_on.isoformat(),
            "overdue": clock.due_on < today,
            "situation": _SITUATION[item.step].format(due=clock.due_on.isoformat(), left=left, over=over),
            "link": f"{self.base_url}/cases/{case.ref}",
        }
