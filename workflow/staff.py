"""Staff and teams: social workers, team managers and service managers, and who manages whom.

``import_csv`` is an idempotent upsert from ``id,name,email,role,team,manager_id``; a bad row is
refused with its row number and the reason, and the good rows are still taken.

A leaver (:func:`leave`) is kept, with the day they left: their name stays on the cases and the
history they touched, but from that day they get no reminders or digests, their cases count as
unallocated, and they may no longer act. Importing the staff file again never brings a leaver
back (an HR export often lags by weeks): their other details are updated, the import says it kept
them as a leaver, and only :func:`rejoin` makes them present again.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Boolean, ColumnElement, Date, String, and_, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflow.db import Base, UTCDateTime
from workflow.errors import Conflict, Invalid, NotFound

HEADER = ["id", "name", "email", "role", "team", "manager_id"]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Role(StrEnum):
    SOCIAL_WORKER = "social_worker"
    TEAM_MANAGER = "team_manager"
    SERVICE_MANAGER = "service_manager"


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(32))
    team: Mapped[str] = mapped_column(String(64), index=True)
    manager_id: Mapped[str | None] = mapped_column(String(64))
    # False once the member of staff has left (the day has come); see present_on, the only test.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The first day they are gone: nothing reaches them and they may not act from this day on.
    left_on: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def present_on(self, day: date) -> bool:
        """Whether they are still with the council on ``day`` (a leaving day may be in the future)."""
        return self.active and (self.left_on is None or day < self.left_on)

    @classmethod
    def present_on_sql(cls, day: date) -> ColumnElement[bool]:
        """:meth:`present_on` as a SQL condition on ``staff``."""
        return and_(cls.active.is_(True), or_(cls.left_on.is_(None), cls.left_on > day))


class StaffFileError(Invalid):
    """The staff file cannot be read at all (wrong header, not CSV)."""


@dataclass
class StaffImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[str] = field(default_factory=list)
    # Rows naming someone who has left: taken, but they stay a leaver (not an error: exit 0).
    kept_as_leavers: list[str] = field(default_factory=list)


def import_csv(session: Session, lines: Iterable[str], now: datetime) -> StaffImportReport:
    """Upsert staff rows. Row numbers count the header as row 1, as a spreadsheet shows them."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != HEADER:
        raise StaffFileError(f"row 1: the header must be exactly {','.join(HEADER)}")
    rows: list[tuple[int, dict[str, str]]] = []
    report = StaffImportReport()
    for number, cells in enumerate(reader, start=2):
        if not any(v.strip() for v in cells):
            continue
        if len(cells) != len(HEADER):
            report.rejected.append(f"row {number}: expected {len(HEADER)} columns, found {len(cells)}")
            continue
        rows.append((number, {k: v.strip() for k, v in zip(HEADER, cells, strict=True)}))

    known = {s.id: s for s in session.scalars(select(Staff))}
    problems: dict[int, str] = {}
    seen: set[str] = set()
    for number, row in rows:
        problem = _problem(row, seen)
        if problem:
            problems[number] = problem
        else:
            seen.add(row["id"])
    # A manager must be on record or a good row of this file; a rejected manager's staff wait too.
    changed = True
    while changed:
        changed = False
        valid = set(known) | {r["id"] for n, r in rows if n not in problems}
        for number, row in rows:
            manager = row["manager_id"]
            if number not in problems and manager and manager not in valid:
                problems[number] = f"manager_id {manager!r} is not a known member of staff"
                changed = True
    for number, row in rows:
        if number in problems:
            report.rejected.append(f"row {number}: {problems[number]}")
            continue
        values: dict[str, object] = {
            "name": row["name"],
            "email": row["email"],
            "role": row["role"],
            "team": row["team"],
            "manager_id": row["manager_id"] or None,
        }
        existing = known.get(row["id"])
        if existing is None:
            session.add(Staff(id=row["id"], updated_at=now, active=True, **values))
            report.created += 1
            continue
        if existing.left_on is not None:
            report.kept_as_leavers.append(
                f"row {number}: {existing.id} left on {existing.left_on.isoformat()} and stays a leaver "
                f"(`caseloop staff rejoin {existing.id}` brings them back)"
            )
        elif any(getattr(existing, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(existing, k, v)
            existing.updated_at = now
            report.updated += 1
        else:
            report.unchanged += 1
    return report


def leave(session: Session, staff_id: str, on: date, today: date, now: datetime) -> date | None:
    """Record that ``staff_id`` leaves on ``on`` (today, an earlier day, or a day to come).
    Returns the leaving day recorded before, if any (recording it again corrects the day)."""
    person = session.get(Staff, staff_id)
    if person is None:
        raise NotFound(f"no member of staff {staff_id!r}")
    before = person.left_on
    person.left_on = on
    person.active = on > today
    person.updated_at = now
    return before


def rejoin(session: Session, staff_id: str, now: datetime) -> None:
    """Bring a leaver back: they are reminded and may act again from now."""
    person = session.get(Staff, staff_id)
    if person is None:
        raise NotFound(f"no member of staff {staff_id!r}")
    if person.left_on is None and person.active:
        raise Conflict(f"{staff_id} has not left")
    person.left_on, person.active, person.updated_at = None, True, now


def _problem(row: dict[str, str], seen: set[str]) -> str | None:
    for column in ("id", "name", "email", "role", "team"):
        if not row[column]:
            return f"{column} is empty"
    if row["id"] in seen:
        return f"id {row['id']} appears twice in the file"
    if not _EMAIL.match(row["email"]):
        return f"email {row['email']!r} is not an email address"
    if row["role"] not in {r.value for r in Role}:
        return f"role {row['role']!r} is not one of {', '.join(r.value for r in Role)}"
    if row["manager_id"] == row["id"]:
        return "manager_id: nobody manages themselves"
    return None
