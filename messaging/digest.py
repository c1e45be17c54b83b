"""The daily reminder digest for one member of staff: its outbox row, a view-model, text and HTML.

Subjects never carry a child's name, and neither does the body: staff follow the link to the
case, where access is checked. Reasons and next steps come from :mod:`messaging.lateness`.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

from sqlalchemy import Row, Select, Table, select, update
from sqlalchemy.orm import Session, aliased

from letters.rendering import RenderError, Templates
from messaging import lateness
from messaging.email import OUTBOX_ID_HEADER, REFERENCE_HEADER, OutgoingEmail
from messaging.lateness import LateClock, Lateness
from messaging.lifecycle import SYSTEM, admit
from messaging.outbox import OutboxMessage, Status
from workflow import bulk
from workflow.batch import Ids
from workflow.clocks import Rulebook
from workflow.happened import DigestsOwed
from workflow.model import Case, ClockRow
from workflow.queries import allocation_words
from workflow.reminders import DIGEST_KIND, FALLBACK_ROLE, ReminderItem
from workflow.staff import Role, Staff
from workflow.timeutil import Clock, utc_now

_SITUATION = {
    "warning": "Due on {due}: {left} working day(s) left.",
    "due": "Due today ({due}).",
    "breach": "Overdue: it was due on {due} ({over} working day(s) ago).",
    "escalation": "Escalated to you: it was due on {due} ({over} working day(s) ago).",
    "repeat": "Still overdue: it was due on {due} ({over} working day(s) ago).",
}


def create_digests(session: Session, owed: DigestsOwed) -> None:
    """Each digest's outbox row (one per person and day, by its key), linked from its items.

    The rows get their ids up front, so the day's digests and their audit rows are written a few
    statements per table and their items linked in one more, not a flush and an update each."""
    ids = Ids(session)
    links: list[dict[str, int]] = []
    for one in owed.digests:
        person = one.person
        message = OutboxMessage(
            id=ids.next(OutboxMessage),
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
            payload={"date": owed.day.isoformat(), "items": list(one.item_ids)},
        )
        admit(session, message, Status.QUEUED, SYSTEM, owed.at)
        links.extend({"id": item_id, "outbox_id": message.id} for item_id in one.item_ids)
    session.flush()  # the digests exist before their items name them
    _link(session, links)


_ITEMS: Table = ReminderItem.__table__  # type: ignore[assignment]
_LINKS = [_ITEMS.c.id, _ITEMS.c.outbox_id]
_GIVEN_LINKS = bulk.unnested(_LINKS)
_LINK_PG = update(_ITEMS).where(_ITEMS.c.id == _GIVEN_LINKS.c.id).values(outbox_id=_GIVEN_LINKS.c.outbox_id)


def _link(session: Session, links: list[dict[str, int]]) -> None:
    """Set each item's digest: one statement on PostgreSQL (see :mod:`workflow.bulk`), an update
    by primary key per item elsewhere."""
    if not links:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LINK_PG, bulk.as_arrays(_LINKS, links))
    else:
        session.execute(update(ReminderItem), links)


class DigestRenderer:
    """A person's digest: their deadlines grouped by case, the most urgent case first, each with
    why it is late and what to do; past the policy's ``digest_limit`` cases, a count of the rest."""

    def __init__(self, templates: Templates, book: Rulebook, base_url: str, clock: Clock = utc_now) -> None:
        self.templates, self.book, self.base_url = templates, book, base_url.rstrip("/")
        self.clock = clock  # the Date header comes from the runtime's clock, as letters' do

    def __call__(self, session: Session, row: OutboxMessage) -> OutgoingEmail:
        person = session.get(Staff, row.recipient)
        if person is None:
            raise RenderError(f"outbox {row.id}: staff member {row.recipient} no longer exists")
        day = row.payload["date"]
        today = date.fromisoformat(day)
        if not person.present_on(today):
            raise RenderError(f"outbox {row.id}: {person.id} has left: digests no longer reach them")
        # Everything the digest shows of its items, their clocks and cases and each case's worker,
        # in one query of the columns shown: not the cases' data, nor the whole staff directory.
        items = session.execute(_items(row.id)).all()
        if not items:
            raise RenderError(f"outbox {row.id}: the digest has no reminders")
        # Staff read it in their email: each step names the page where it is done.
        late = [LateClock(i.clock_id, i.case_id, i.ref, i.episode, i.name) for i in items]
        notes = lateness.explain_clocks(session, self.book, late, person.id, pages=self.base_url)
        fallbacks = {i.team for i in items if i.recipient_role == FALLBACK_ROLE}
        staffed = _teams_with_staff(session, fallbacks, today) if fallbacks else set()
        cases: dict[int, dict[str, Any]] = {}
        for item in items:
            group = cases.get(item.case_id)
            if group is None:
                group = cases[item.case_id] = self._case(item, today)
            group["deadlines"].append(self._item(item, today, notes[item.clock_id]))
            if item.recipient_role == FALLBACK_ROLE:
                group["fallback"] = _why_fallback(item.team, item.team in staffed)
        groups = list(cases.values())
        for group in groups:
            group["deadlines"].sort(key=lambda v: (-v["over"], v["due"], v["clock_label"]))
            group["over"] = max(v["over"] for v in group["deadlines"])
        # The most urgent case first: the longest overdue, then the earliest due.
        groups.sort(key=lambda g: (-g["over"], g["deadlines"][0]["due"], g["case"]))
        limit = self.book.policy.reminders.digest_limit
        shown, rest = groups[:limit], groups[limit:]

        deadlines = len(items)
        overdue = sum(1 for g in groups for v in g["deadlines"] if v["overdue"])
        subject = f"caseloop: {deadlines} deadline{'s need' if deadlines != 1 else ' needs'} attention"
        subject += f" ({overdue} overdue)" if overdue else ""
        on = f"{len(groups)} case{'s' if len(groups) != 1 else ''}"
        intro = (
            f"These deadlines on {on} need your attention on {day}, the most urgent first."
            if overdue
            else f"These deadlines on {on} are coming up ({day})."
        )
        more = None
        if rest:
            more = {
                "cases": len(rest),
                "deadlines": sum(len(g["deadlines"]) for g in rest),
                "command": f"caseloop queue overdue --as {person.id}",
            }
        context = {
            "subject": subject,
            "person_name": person.name,
            "person_id": person.id,
            "my_work": f"{self.base_url}/my-work",
            "intro": intro,
            "cases": shown,
            "more": more,
        }
        text, html = self.templates.render("staff/reminder_digest", context)
        return OutgoingEmail(
            to=row.address,
            subject=subject,
            text=text,
            html=html,
            message_id=f"<{row.idempotency_key.replace(':', '.')}@caseloop>",
            headers={OUTBOX_ID_HEADER: str(row.id), REFERENCE_HEADER: row.idempotency_key},
            date=self.clock(),
        )

    def _case(self, item: Row[Any], today: date) -> dict[str, Any]:
        present = item.worker_active is True and (item.worker_left_on is None or today < item.worker_left_on)
        return {
            "case": item.ref,
            "team": item.team,
            "allocation": allocation_words(
                item.worker, item.worker_known is not None, present, item.worker_left_on
            ),
            "link": f"{self.base_url}/cases/{quote(item.ref, safe='')}",
            "fallback": None,
            "deadlines": [],
        }

    def _item(self, item: Row[Any], today: date, late: Lateness) -> dict[str, Any]:
        rule = self.book.policy.clock(item.name)
        due_on = item.due_on
        left = self.book.calendar.working_days_between(today, due_on)
        over = self.book.calendar.working_days_between(due_on, today) if due_on < today else 0
        return {
            "id": item.id,
            "clock_label": rule.label if rule else item.name,
            "due": due_on.isoformat(),
            "over": over,
            "overdue": due_on < today,
            "situation": _SITUATION[item.step].format(due=due_on.isoformat(), left=left, over=over),
            "reason": late.reason,
            "to_do": late.to_do,
        }


_WORKER = aliased(Staff)


def _items(outbox_id: int) -> Select[*tuple[Any, ...]]:
    """A digest's items with their clocks, their cases (the columns shown) and each case's worker
    as the directory knows them (``worker_known`` None: not in it), in the digest's order."""
    return (
        select(
            ReminderItem.id,
            ReminderItem.step,
            ReminderItem.recipient_role,
            ClockRow.id.label("clock_id"),
            ClockRow.name,
            ClockRow.episode,
            ClockRow.due_on,
            Case.id.label("case_id"),
            Case.ref,
            Case.team,
            Case.worker,
            _WORKER.id.label("worker_known"),
            _WORKER.active.label("worker_active"),
            _WORKER.left_on.label("worker_left_on"),
        )
        .join(ClockRow, ClockRow.id == ReminderItem.clock_id)
        .join(Case, Case.id == ReminderItem.case_id)
        .outerjoin(_WORKER, _WORKER.id == Case.worker)
        .where(ReminderItem.outbox_id == outbox_id)
        .order_by(ClockRow.due_on, Case.ref, ReminderItem.id)
    )


def _teams_with_staff(session: Session, teams: set[str], today: date) -> set[str]:
    """Those of ``teams`` with someone in the staff directory still here ``today``."""
    query = select(Staff.team).where(Staff.team.in_(sorted(teams)), Staff.present_on_sql(today)).distinct()
    return set(session.scalars(query))


def _why_fallback(team: str, staffed: bool) -> str:
    """Why a case's reminder came to the fallback manager: no one in the directory could take it."""
    if not staffed:
        return f"team {team!r} is not in the staff directory (or no one in it is still here)"
    return f"team {team!r} has no manager in the staff directory"
