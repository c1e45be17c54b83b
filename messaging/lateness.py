"""Why a deadline is late, and what to do about it: for the overdue queue and the staff digest.

A deadline is late for one of a few reasons, and each has its own next step: its letter waits
for a reviewer (approve or reject it), its letter failed or was rejected (reach the person another
way and record it), no letter can go to a professional with no email or address (tell them by
phone and record it), its letter is still on its way, or simply nobody has done it yet (record it
in the case system). The answer is read from the outbox and the case history as they stand, in
the caller's reading transaction, for many clocks at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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


def explain(
    session: Session, book: Rulebook, clocks: Sequence[tuple[ClockRow, Case]], by: str
) -> dict[int, Lateness]:
    """Why each clock is late and what to do, by clock id; ``by`` is the staff id the commands name."""
    case_ids = sorted({case.id for _, case in clocks})
    letters = _letters(session, case_ids)
    by_hand = _by_hand(session, case_ids)
    found: dict[int, Lateness] = {}
    for clock, case in clocks:
        # Letters of the clock's episode (a letter made before episodes were recorded counts too).
        episode = [m for m in letters[case.id] if _episode(m) in (None, clock.episode)]
        if book.policy.duty(clock.name) is not None:
            mine = [m for m in episode if m.duty == clock.name]
            task = by_hand.get((case.id, clock.episode, clock.name))
            found[clock.id] = _duty(case.ref, clock.name, mine, task, by)
        elif clock.name == FAILED_LETTER_CLOCK:
            failed = [m for m in episode if m.status in _GONE_WRONG]
            found[clock.id] = _failed_letter(case.ref, failed, by)
        else:
            found[clock.id] = _not_recorded(book, clock.name)
    return found


_GONE_WRONG = (Status.FAILED.value, Status.REJECTED.value)


def _duty(ref: str, duty: str, letters: list[OutboxMessage], task: str | None, by: str) -> Lateness:
    done = f"caseloop duty done {ref} {duty} --by {by} --how {_HOW}"
    statuses = {m.status for m in letters}
    held = [m for m in letters if m.status == Status.HELD.value]
    if held:
        letter = held[0]
        reasons = "; ".join(letter.payload.get("hold_reasons") or []) or letter.last_error or "to review"
        return Lateness(
            "held",
            f"held for approval: {reasons}",
            f"review it: caseloop outbox show {letter.id}, then caseloop outbox approve {letter.id} "
            f"--by {by} (or reject it with a reason and tell them another way)",
        )
    if Status.FAILED.value in statuses:
        letter = next(m for m in letters if m.status == Status.FAILED.value)
        return Lateness(
            "failed",
            f"the letter failed ({letter.last_error or 'no reason given'})",
            f"reach them another way, then record it: {done}",
        )
    if Status.REJECTED.value in statuses:
        return Lateness("rejected", "a reviewer rejected the letter", f"tell them another way, then: {done}")
    if Status.UNKNOWN.value in statuses:
        return Lateness(
            "uncertain",
            "the letter may not have arrived (its sending was interrupted)",
            f"check it: caseloop outbox list --case {ref} --status unknown",
        )
    if statuses & {Status.QUEUED.value, Status.SENDING.value}:
        return Lateness(
            "sending",
            "the letter is still waiting to go (retrying, or outside office hours)",
            f"if it is still here tomorrow: caseloop outbox list --case {ref}",
        )
    if task is not None:
        return Lateness(
            "by_hand",
            f"nobody to write to (no email or address): {task}",
            f"{task}, then record it: caseloop duty done {ref} {duty} --by {by} --how phone",
        )
    return Lateness("not_done", "not done yet", f"do it, then record it: {done}")


def _failed_letter(ref: str, failed: list[OutboxMessage], by: str) -> Lateness:
    duties = sorted({m.duty for m in failed if m.duty})
    duty = duties[0] if len(duties) == 1 else "DUTY"
    error = failed[-1].last_error if failed else None
    return Lateness(
        "failed",
        "a letter failed or came back" + (f" ({error})" if error else ""),
        f"reach them another way (caseloop outbox list --case {ref} --status failed), then record it: "
        f"caseloop duty done {ref} {duty} --by {by} --how {_HOW}",
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


def _episode(message: OutboxMessage) -> int | None:
    episode = (message.payload or {}).get("episode")
    return episode if isinstance(episode, int) else None


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _letters(session: Session, case_ids: list[int]) -> dict[int, list[OutboxMessage]]:
    found: dict[int, list[OutboxMessage]] = defaultdict(list)
    for chunk in _chunks(case_ids):
        query = (
            select(OutboxMessage)
            .where(OutboxMessage.case_id.in_(chunk), OutboxMessage.duty.is_not(None))
            .order_by(OutboxMessage.id)
        )
        for message in session.scalars(query):
            assert message.case_id is not None
            found[message.case_id].append(message)
    return found


def _by_hand(session: Session, case_ids: list[int]) -> dict[tuple[int, int, str], str]:
    """The duties a worker must do by hand (recorded as ``duty.by_hand``): the task, by case,
    episode and duty."""
    found: dict[tuple[int, int, str], str] = {}
    for chunk in _chunks(case_ids):
        query = select(HistoryEntry).where(
            HistoryEntry.case_id.in_(chunk), HistoryEntry.kind == "duty.by_hand"
        )
        for entry in session.scalars(query):
            duty, task = str(entry.detail.get("duty")), str(entry.detail.get("task"))
            found[(entry.case_id, entry.episode, duty)] = task
    return found
