"""A manager reallocates cases to a worker of the case's team, several at once.

Each reallocation is a ``worker.allocated`` event, as the council's case system would send,
imported as caseloop itself with a source naming the manager (``staff:<id>``), so it takes the
same path as every other allocation: the case history, the clocks' reminders and the next
digests follow the new worker.

All or nothing: every case and the worker are checked before anything is written, and if any
is wrong nothing is reallocated and :class:`ReallocationRefused` says which and why. A case
already with that worker is left as it is. Each event's id is made from the case, the worker
and the moment the form was shown (``as_of``), so the same form sent twice allocates once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from services.actors import SYSTEM, Actor
from services.authorisation import Action, authorise, may_see, require_staff
from services.intake import BATCH, import_events
from services.runtime import Runtime
from services.team_queue import ALLOCATABLE, teams_of
from workflow.errors import Conflict, Invalid, ReceivedStatus
from workflow.limits import CASE_REF, STAFF_ID, fitting_id
from workflow.model import Case, ReceivedEvent
from workflow.staff import Staff

# At most this many cases at once: one import batch, so the events commit together.
MOST_AT_ONCE = BATCH
# A form shown longer ago than this is refused (load the page again): its view of who has
# which case is too old to act on.
FORM_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class Problem:
    """What is wrong with one part of the request: the worker, one case (``case`` names it),
    the selection as a whole, or the form."""

    about: str  # "worker", "case", "selection" or "form"
    words: str
    case: str | None = None


class ReallocationRefused(Invalid):
    """Nothing was reallocated: ``problems`` says, for each case or the worker, what is wrong."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("nothing was reallocated: " + "; ".join(p.words for p in self.problems))


@dataclass(frozen=True)
class Reallocated:
    worker: str
    worker_name: str
    moved: list[str]  # the cases now with the worker
    unchanged: list[str]  # already with the worker, or already moved by this same form


def reallocate(
    rt: Runtime,
    actor: Actor,
    refs: Sequence[str],
    worker: str,
    as_of: str,
    now: datetime | None = None,
) -> Reallocated:
    """Allocate each case of ``refs`` to ``worker``, or none of them (see the module)."""
    require_staff(actor, Action.ALLOCATE_CASE)
    authorise(actor, Action.ALLOCATE_CASE)
    teams = teams_of(actor)
    now = now or rt.clock()
    shown = _form_time(as_of, now)
    wanted = list(dict.fromkeys(r for r in refs if r))  # each case once, in the order selected
    if not wanted:
        raise ReallocationRefused([Problem("selection", "select at least one case to reallocate")])
    if len(wanted) > MOST_AT_ONCE:
        too_many = f"select at most {MOST_AT_ONCE} cases at once ({len(wanted)} selected)"
        raise ReallocationRefused([Problem("selection", too_many)])
    if not worker:
        raise ReallocationRefused([Problem("worker", "choose the worker to reallocate the cases to")])
    today = rt.book.local_date(now)
    problems: list[Problem] = []
    ids: dict[str, str] = {}
    with rt.reading() as uow:
        person = uow.session.get(Staff, worker) if len(worker) <= STAFF_ID else None
        if person is None:
            problems.append(Problem("worker", f"worker {worker!r} is not a member of staff"))
        elif not person.present_on(today):
            left = f" on {person.left_on.isoformat()}" if person.left_on else ""
            gone = f"{person.name} ({worker}) left{left}: choose a present worker"
            problems.append(Problem("worker", gone))
        lookable = [r for r in wanted if _may_be_ref(r)]
        found = {c.ref: c for c in uow.session.scalars(select(Case).where(Case.ref.in_(lookable)))}
        moving: list[str] = []
        unchanged: list[str] = []
        for ref in wanted:
            case = found.get(ref)
            if case is None or not may_see(actor, case):
                # The words of a case that does not exist: no answer says a hidden case is there.
                problems.append(Problem("case", f"case {ref}: no such case", ref))
                continue
            if case.team not in teams:
                not_theirs = f"case {ref} is in team {case.team}, which you do not manage"
                problems.append(Problem("case", not_theirs, ref))
            elif case.state not in ALLOCATABLE:
                state = case.state.replace("_", " ")
                problems.append(Problem("case", f"case {ref} is {state}: it cannot be allocated now", ref))
            elif person is not None and person.team != case.team:
                other_team = (
                    f"case {ref} is in team {case.team} and {person.name} ({worker}) is in team "
                    f"{person.team}: choose a worker of the case's team"
                )
                problems.append(Problem("case", other_team, ref))
            elif case.worker == worker:
                unchanged.append(ref)
            else:
                moving.append(ref)
                ids[ref] = fitting_id("caseloop", "allocated", ref, worker, shown.isoformat())
        if problems:
            raise ReallocationRefused(problems)
        assert person is not None
        name = person.name
        # Sent before from this same form (a double submit): not sent again.
        done_before = set(
            uow.session.scalars(
                select(ReceivedEvent.event_id).where(ReceivedEvent.event_id.in_(ids.values()))
            )
        )
    again = [ref for ref in moving if ids[ref] in done_before]
    sending = [ref for ref in moving if ref not in again]
    if not sending:
        return Reallocated(worker, name, [], unchanged + again)
    # Imported as caseloop itself (a manager may not import events): the source names them.
    lines = [_allocation_line(ids[ref], ref, worker, now) for ref in sending]
    report = import_events(rt, SYSTEM, lines, f"staff:{actor.id}", now)
    outcome = {result.id: result.status for result in report.results}
    moved = [ref for ref in sending if outcome.get(ids[ref]) == ReceivedStatus.ACCEPTED.value]
    refused = [ref for ref in sending if outcome.get(ids[ref]) == ReceivedStatus.REJECTED.value]
    if refused:
        # The same form sent twice at once: the other request's event, at another instant, took
        # the id first (this one is kept as a conflict). Anything else changed the case between
        # our checks and the import (it closed meanwhile).
        taken = _accepted(rt, [ids[ref] for ref in refused])
        if any(ids[ref] not in taken for ref in refused):
            why = "; ".join(report.rejected)
            raise Conflict(f"the cases changed while they were being reallocated: {why}")
    kept = [ref for ref in [*unchanged, *again, *sending] if ref not in moved]
    return Reallocated(worker, name, moved, kept)


def _accepted(rt: Runtime, event_ids: list[str]) -> set[str]:
    with rt.reading() as uow:
        query = select(ReceivedEvent.event_id).where(
            ReceivedEvent.event_id.in_(event_ids), ReceivedEvent.status == ReceivedStatus.ACCEPTED.value
        )
        return {eid for eid in uow.session.scalars(query) if eid is not None}


def _allocation_line(event_id: str, ref: str, worker: str, at: datetime) -> str:
    event = {"id": event_id, "case": ref, "type": "worker.allocated", "at": at.isoformat(), "worker": worker}
    return json.dumps(event)


def _may_be_ref(ref: str) -> bool:
    # PostgreSQL refuses a NUL in a query; a reference longer than the column names no case.
    return "\x00" not in ref and len(ref) <= CASE_REF


def _form_time(as_of: str, now: datetime) -> datetime:
    """When the form was shown, as the page wrote it; refused when missing, unreadable, to
    come, or too old to act on."""
    try:
        shown = datetime.fromisoformat(as_of)
    except ValueError:
        shown = None
    if shown is None or shown.tzinfo is None or shown > now + timedelta(minutes=5):
        raise _form_problem("the form is not one this page made: load the page again")
    if now - shown > FORM_LIFETIME:
        raise _form_problem("the form is out of date: load the page again and choose again")
    return shown


def _form_problem(words: str) -> ReallocationRefused:
    return ReallocationRefused([Problem("form", words)])
