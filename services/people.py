"""Staff: who they are (the actor for a staff id) and the staff list's import."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from services.actors import Actor, staff_member
from services.authorisation import Action, authorise
from services.runtime import Runtime
from workflow import staff
from workflow.staff import StaffImportReport


def identify(rt: Runtime, staff_id: str) -> Actor:
    """The actor for an active member of staff; :class:`Forbidden` naming the id otherwise."""
    with rt.reading() as uow:
        return staff_member(uow.session, staff_id)


def import_staff(
    rt: Runtime, actor: Actor, lines: Iterable[str], now: datetime | None = None
) -> StaffImportReport:
    """Add or update staff (an idempotent upsert); bad rows are named and the rest taken."""
    authorise(actor, Action.IMPORT_STAFF)
    with rt.writing() as uow:
        report = staff.import_csv(uow.session, lines, now or rt.clock())
        uow.commit()
    return report
