"""Why a deadline is late, and what to do about it: for the overdue queue and the staff digest.

A deadline is late for one of a few reasons, and each has its own next step: its letter waits
for a reviewer (approve or reject it), its letter failed or was rejected (reach the person another
way and record it), no letter can go to a professional with no email or address (tell them by
phone and record it), its letter is still on its way, or simply nobody has done it yet (record it
in the case system). The answer is read from the outbox and the case history as they stand, in
the caller's reading transaction, for many clocks at once.

The next step names a command for the command line and the API (``caseloop duty done …``), or,
given the pages' address, the page where it is done: the staff digest and the team queue point
at the pages, where a click does what the command would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from messaging.outbox import OutboxMessage, Status
from workflow.clocks import Rulebook
from workflow.events import HOW_DONE
from workflow.model import Case, ClockRow, HistoryEntry

FAILED_LETTER_CLOCK = "failed_letter"
_HOW = "|".join(HOW_DONE)
_CHUNK = 500


@dataclass(frozen=True)
class Lateness:
    why: str  # held | failed | rejected | uncertain | sending | by_hand | not_done
    reason: str  # the reason in words
    to_do: str  # the next step: a command, or an action in the case system

    def as_dict(self) -> dict[str, str]:
        return {"why": self.why, "reason": self.reason, "to_do": self.to_do}


@dataclass(frozen=True)
class Steps:
    """How a next step is put: as the command ``by`` would run, or (``pages`` set: the pages'
    address, "" for links within the site) as the page where it is done."""

    by: str
    pages: str | None = None

    def review(self, letter_id: int) -> str:
        if self.pages is not None:
            return (
                f"review it on {self.pages}/letters/{letter_id}: approve it, or reject it with a "
                "reason and tell them another way"
            )
        return (
            f"review it: caseloop outbox show {letter_id}, then caseloop outbox approve {letter_id} "
            f"--by {self.by} (or reject it with a reason and tell them another way)"
        )

    def record(self, ref: str, duty: str, how: str = _HOW) -> str:
        if self.pages is not None:
            return f"record it on {self.pages}/my-work"
        return f"caseloop duty done {ref} {duty} --by {self.by} --how {how}"

    def look(self, ref: str, status: str | None = None) -> str:
        if self.pages is not None:
            return f"{self.pages}/deliveries" if status else f"{self.pages}/cases/{quote(ref, safe='')}"
        return f"caseloop outbox list --case {ref}" + (f" --status {status}" if status else "")


@dataclass(frozen=True)
class LateClock:
    """What :func:`explain_clocks` needs of a clock and its case: ids and names, no case data
    (the queues select these columns alone rather than whole clocks and cases)."""

    clock_id: int
    case_id: int
    ref: str
    episode: int
    name: str


def explain(
    session: Session,
    book: Rulebook,
    clocks: Sequence[tuple[ClockRow, Case]],
    by: str,
    pages: str | None = None,
) -> dict[int, Lateness]:
    """Why each clock is late and what to do, by clock id; ``by`` is the staff id the commands
    name, and with ``pages`` (the pages' address) each step names its page instead."""
    wanted = [LateClock(clock.id, case.id, case.ref, clock.episode, clock.name) for clock, case in clocks]
    return explain_clocks(session, book, wanted, by, pages)


def explain_clocks(
    session: Session,
    book: Rulebook,
    clocks: Sequence[LateClock],
    by: str,
    pages: str | None = None,
) -> dict[int, Lateness]:
    """:func:`explain` for clocks given by their ids and names alone."""
    steps = Steps(by, pages)
    # Only a duty's clock or a failed letter's is explained by letters and tasks: the cases of
    # the others (most of a digest's: a decision, an assessment) are not read for them at all.
    duties = {c.name for c in clocks if book.policy.duty(c.name) is not None}
    lettered = sorted({c.case_id for c in clocks if c.name in duties or c.name == FAILED_LETTER_CLOCK})
    letters = _letters(session, lettered) if lettered else defaultdict(list)
    dutied = sorted({c.case_id for c in clocks if c.name in duties})
    by_hand = _by_hand(session, dutied) if dutied else {}
    found: dict[int, Lateness] = {}
    for clock in clocks:
        # Letters of the clock's episode (a letter made before episodes were recorded counts too).
        episode = [m for m in letters[clock.case_id] if m.episode in (None, clock.episode)]
        if book.policy.duty(clock.name) is not None:
            mine = [m for m in episode if m.duty == clock.name]
            task = by_hand.get((clock.case_id, clock.episode, clock.name))
            found[clock.clock_id] = _duty(clock.ref, clock.name, mine, task, steps)
        elif clock.name == FAILED_LETTER_CLOCK:
            failed = [m for m in episode if m.status in _GONE_WRONG]
            found[clock.clock_id] = _failed_letter(clock.ref, failed, steps)
        else:
            found[clock.clock_id] = _not_recorded(book, clock.name)
    return found


_GONE_WRONG = (Status.FAILED.value, Status.REJECTED.value)


def _duty(ref: str, duty: str, letters: list[_Letter], task: str | None, steps: Steps) -> Lateness:
    done = steps.record(ref, duty)
    statuses = {m.status for m in letters}
    held = [m for m in letters if m.status == Status.HELD.value]
    if held:
        letter = held[0]
        reasons = "; ".join(letter.hold_reasons) or letter.last_error or "to review"
        return Lateness(
            "held",
            f"held for approval: {reasons}",
            steps.review(letter.id),
        )
    if Status.FAILED.value in statuses:
        letter = next(m for m in letters if m.status == Status.FAILED.value)
        return Lateness(
            "failed",
            f"the letter failed ({letter.last_error or 'no reason given'})",
            f"reach them another way, then {done}"
            if steps.pages is not None
            else f"reach them another way, then record it: {done}",
        )
    if Status.REJECTED.value in statuses:
        return Lateness(
            "rejected",
            "a reviewer rejected the letter",
            f"tell them another way, then: {done}"
            if steps.pages is None
            else f"tell them another way, then {done}",
        )
    if Status.UNKNOWN.value in statuses:
        return Lateness(
            "uncertain",
            "the letter may not have arrived (its sending was interrupted)",
            f"check it: {steps.look(ref, Status.UNKNOWN.value)}",
        )
    if statuses & {Status.QUEUED.value, Status.SENDING.value}:
        return Lateness(
            "sending",
            "the letter is still waiting to go (retrying, or outside office hours)",
            f"if it is still here tomorrow: {steps.look(ref)}",
        )
    if task is not None:
        return Lateness(
            "by_hand",
            f"nobody to write to (no email or address): {task}",
            f"{task}, then {steps.record(ref, duty)}"
            if steps.pages is not None
            else f"{task}, then record it: {steps.record(ref, duty, 'phone')}",
        )
    return Lateness(
        "not_done",
        "not done yet",
        f"do it, then {done}" if steps.pages is not None else f"do it, then record it: {done}",
    )


def _failed_letter(ref: str, failed: list[_Letter], steps: Steps) -> Lateness:
    duties = sorted({m.duty for m in failed if m.duty})
    duty = duties[0] if len(duties) == 1 else "DUTY"
    error = failed[-1].last_error if failed else None
    where = steps.look(ref, Status.FAILED.value)
    return Lateness(
        "failed",
        "a letter failed or came back" + (f" ({error})" if error else ""),
        f"reach them another way ({where}), then {steps.record(ref, duty)}"
        if steps.pages is not None
        else f"reach them another way ({where}), then record it: {steps.record(ref, duty)}",
    )


def _not_recorded(book: Rulebook, name: str) -> Lateness:
    rule = book.policy.clock(name)
    stops = sorted({t.event for t in rule.stops}) if rule else []
    what = " or ".join(stops) or "its outcome"
    return Lateness(
        "not_done",
        "not recorded yet",
        f"record it in the case system ({what}); caseloop takes it from there",
    )


@dataclass(frozen=True)
class _Letter:
    """What the reasons read of a duty's letter: its columns alone, not the whole row (its
    payload and content are the widest part of the outbox)."""

    id: int
    case_id: int
    duty: str | None
    status: str
    episode: int | None  # None: made before episodes were recorded
    hold_reasons: tuple[str, ...]
    last_error: str | None


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _letters(session: Session, case_ids: list[int]) -> dict[int, list[_Letter]]:
    found: dict[int, list[_Letter]] = defaultdict(list)
    for chunk in _chunks(case_ids):
        query = (
            select(
                OutboxMessage.id,
                OutboxMessage.case_id,
                OutboxMessage.duty,
                OutboxMessage.status,
                OutboxMessage.episode,
                OutboxMessage.payload["hold_reasons"],
                OutboxMessage.last_error,
            )
            .where(OutboxMessage.case_id.in_(chunk), OutboxMessage.duty.is_not(None))
            .order_by(OutboxMessage.id)
        )
        for letter_id, case_id, duty, status, episode, reasons, error in session.execute(query):
            held = tuple(str(r) for r in reasons) if isinstance(reasons, list) else ()
            found[case_id].append(_Letter(letter_id, case_id, duty, status, episode, held, error))
    return found


def _by_hand(session: Session, case_ids: list[int]) -> dict[tuple[int, int, str], str]:
    """The duties a worker must do by hand (recorded as ``duty.by_hand``): the task, by case,
    episode and duty."""
    found: dict[tuple[int, int, str], str] = {}
    for chunk in _chunks(case_ids):
        query = select(HistoryEntry.case_id, HistoryEntry.episode, HistoryEntry.detail).where(
            HistoryEntry.case_id.in_(chunk), HistoryEntry.kind == "duty.by_hand"
        )
        for case_id, episode, detail in session.execute(query):
            duty, task = str(detail.get("duty")), str(detail.get("task"))
            found[(case_id, episode, duty)] = task
    return found
