"""Statutory and local clocks: started, stopped, cancelled, paused and breached by events and time.

A clock's deadline is a local date (``due_on``) kept in the database; nothing waits in a broker.
Statuses: ``running``; ``met`` and ``met_late`` (stopped on or before, or after, the due date);
``breached`` (still running past the due date); ``cancelled`` (the path made it moot); ``paused``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from workflow import batch
from workflow.calendar import WorkingCalendar, add_calendar_months
from workflow.census import NON_PROFESSIONAL_SOURCES, SCHOOL_SOURCES
from workflow.errors import EventRefused, MalformedEvent, TransitionNotAllowed
from workflow.events import ClockPaused, ClockResumed, DecisionAmended, Event
from workflow.history import record
from workflow.model import Case, ClockRow
from workflow.policy import STATUTORY_CLOCKS, ClockRule, Policy, Trigger
from workflow.timeutil import local_date


class ClockStatus(StrEnum):
    RUNNING = "running"
    MET = "met"
    MET_LATE = "met_late"
    BREACHED = "breached"
    CANCELLED = "cancelled"
    PAUSED = "paused"


ACTIVE = (ClockStatus.RUNNING, ClockStatus.BREACHED, ClockStatus.PAUSED)


@dataclass(frozen=True)
class Rulebook:
    """The policy, its calendar and the council's time zone: everything a due date depends on."""

    policy: Policy
    calendar: WorkingCalendar
    zone: ZoneInfo
    policy_version: str
    calendar_version: str
    # Which channel carries letters by each medium (email, post): set where channels are wired.
    letter_channels: Mapping[str, str] = field(default_factory=lambda: {"email": "file", "post": "print"})

    @classmethod
    def build(
        cls, policy: Policy, zone: ZoneInfo, letter_channels: Mapping[str, str] | None = None
    ) -> Rulebook:
        calendar = policy.working_calendar()
        book = cls(policy, calendar, zone, policy.fingerprint, calendar.fingerprint)
        return replace(book, letter_channels=dict(letter_channels)) if letter_channels else book

    def local_date(self, instant: datetime) -> date:
        return local_date(instant, self.zone)

    def due_on(self, rule: ClockRule, counted_from: date, paused_days: int = 0) -> date:
        if rule.goal.working_days is not None:
            return self.calendar.add_working_days(counted_from, rule.goal.working_days + paused_days)
        assert rule.goal.months is not None
        due = add_calendar_months(counted_from, rule.goal.months) + timedelta(days=paused_days)
        # A conference due on a Sunday or a bank holiday is due on the working day before it.
        return self.calendar.on_or_before(due)

    def paused_length(self, rule: ClockRule, paused_on: date, resumed_on: date) -> int:
        """How far a pause pushes the due date: working days for working-day goals, else days."""
        if rule.goal.working_days is not None:
            return self.calendar.working_days_between(paused_on, resumed_on)
        return max((resumed_on - paused_on).days, 0)


def referrer_kind(case: Case) -> set[str]:
    source = case.referral_source
    kinds = {"non_professional" if source in NON_PROFESSIONAL_SOURCES else "professional"}
    if source in SCHOOL_SOURCES:
        kinds.add("school")
    return kinds


def school_known(case: Case) -> bool:
    return bool(case.child.get("school")) or case.referral_source in SCHOOL_SOURCES


def met_this_episode(clocks: Iterable[ClockRow], case: Case) -> frozenset[str]:
    """The names of the clocks (duties among them) met in the case's current episode."""
    done = (ClockStatus.MET, ClockStatus.MET_LATE)
    return frozenset(c.name for c in clocks if c.episode == case.episode and c.status in done)


def matches(trigger: Trigger, event: Event, case: Case, met: frozenset[str] = frozenset()) -> bool:
    """Whether an accepted event, with the case as it now stands, fires ``trigger``; ``met`` holds
    the clocks met this episode (:func:`met_this_episode`), for a trigger that asks.

    An amended decision fires what the decision it corrects would have fired for its outcome."""
    if trigger.event != event.type and not (
        trigger.event == "decision.made" and isinstance(event, DecisionAmended)
    ):
        return False
    if trigger.met is not None and trigger.met not in met:
        return False
    if any(getattr(event, k, None) != v for k, v in trigger.when.items()):
        return False
    if trigger.state is not None and case.state != trigger.state.value:
        return False
    if trigger.school_known is not None and trigger.school_known != school_known(case):
        return False
    return trigger.referrer is None or trigger.referrer in referrer_kind(case)


def _case_clocks(session: Session, case: Case) -> list[ClockRow]:
    """The clocks of the case that an event can still touch: all of this episode, and any active."""
    loaded = batch.current(session)
    if loaded is not None:
        return [c for c in loaded.clocks[case.id] if c.episode == case.episode or c.status in ACTIVE]
    return list(
        session.scalars(
            select(ClockRow)
            .where(
                ClockRow.case_id == case.id,
                (ClockRow.episode == case.episode) | ClockRow.status.in_([s.value for s in ACTIVE]),
            )
            .order_by(ClockRow.id)
        )
    )


def apply_event(session: Session, book: Rulebook, case: Case, event: Event, received_id: int | None) -> None:
    """Stop, cancel, pause, resume and start the case's clocks for an accepted event.

    Stops and cancels come first, so one event can end one clock and start the next (a review
    conference ends the current review clock and starts the next one).
    """
    now_date = book.local_date(event.at)
    known = _case_clocks(session, case)
    active = [c for c in known if c.status in ACTIVE]

    if isinstance(event, ClockPaused | ClockResumed):
        _pause_or_resume(session, book, case, event, known, now_date, received_id)
        return
    if isinstance(event, DecisionAmended):
        _withdraw_decision(session, book, case, event, active, now_date, received_id)

    # Only the rules with a trigger of this event's type can start, stop or cancel anything.
    rules = book.policy.rules_by_event.get(event.type, ())
    for rule in rules:
        named = [c for c in active if c.name == rule.name]
        # This episode's clock if it has one; otherwise a duty still owed from an earlier episode.
        mine = [c for c in named if c.episode == case.episode] or named
        if not mine:
            continue
        if any(matches(t, event, case) for t in rule.stops):
            for clock in mine:
                _finish(clock, event.at, now_date)
                _log(session, case, clock, "clock.stopped", event.at, received_id)
        elif any(matches(t, event, case) for t in rule.cancelled_by):
            for clock in (c for c in mine if c.episode == case.episode):
                clock.status = ClockStatus.CANCELLED
                clock.stopped_at, clock.stopped_on, clock.updated_at = event.at, now_date, event.at
                _log(session, case, clock, "clock.cancelled", event.at, received_id)

    still = {c.name: c for c in active if c.status in ACTIVE and c.episode == case.episode}
    met = met_this_episode(known, case)
    for rule in rules:
        if not any(matches(t, event, case, met) for t in rule.starts):
            continue
        counted_from = book.local_date(case.referral_at) if rule.counted_from == "referral" else now_date
        running = still.get(rule.name)
        if running is not None:
            # An older start arriving late never rewinds the count (the ICPC counts from the
            # latest strategy discussion by its time, not by when it reached us).
            if rule.restart and event.at >= running.started_at:
                running.started_at, running.counted_from, running.paused_days = event.at, counted_from, 0
                running.due_on = book.due_on(rule, counted_from)
                running.status, running.paused_on, running.updated_at = ClockStatus.RUNNING, None, event.at
                _log(session, case, running, "clock.restarted", event.at, received_id)
            continue
        clock = ClockRow(
            case_id=case.id,
            team=case.team,
            case_ref=case.ref,
            episode=case.episode,
            name=rule.name,
            seq=1
            + max((c.seq for c in known if c.episode == case.episode and c.name == rule.name), default=0),
            started_at=event.at,
            counted_from=counted_from,
            due_on=book.due_on(rule, counted_from),
            status=ClockStatus.RUNNING,
            paused_days=0,
            policy_version=book.policy_version,
            calendar_version=book.calendar_version,
            updated_at=event.at,
        )
        if (loaded := batch.current(session)) is not None:
            loaded.add_clock(clock)
        batch.add(session, clock)
        known.append(clock)
        _log(session, case, clock, "clock.started", event.at, received_id)


def follow_team(session: Session, case: Case) -> None:
    """Every clock of ``case``, of any episode and status, takes the case's team: called whenever
    the case's team changes (a transfer, a referral again), so that a team's queue, which reads
    clocks by their own team, shows exactly the clocks of the cases the team has now."""
    loaded = batch.current(session)
    if loaded is not None:
        # The batch read every clock of its cases (and holds those it added): the changed ones
        # are written with the rest of the batch.
        for clock in loaded.clocks[case.id]:
            clock.team = case.team
        return
    session.execute(
        update(ClockRow).where(ClockRow.case_id == case.id, ClockRow.team != case.team).values(team=case.team)
    )


def _finish(clock: ClockRow, at: datetime, on: date) -> None:
    if clock.status == ClockStatus.PAUSED:
        clock.paused_on = None
    clock.status = ClockStatus.MET if on <= clock.due_on else ClockStatus.MET_LATE
    clock.stopped_at, clock.stopped_on, clock.updated_at = at, on, at


def _withdraw_decision(
    session: Session,
    book: Rulebook,
    case: Case,
    event: DecisionAmended,
    active: list[ClockRow],
    on: date,
    received_id: int | None,
) -> None:
    """The clocks the corrected decision started are cancelled: the amended one starts its own."""
    started_by_decision = {
        rule.name for rule in book.policy.rules if any(t.event == "decision.made" for t in rule.starts)
    }
    for clock in active:
        if clock.episode == case.episode and clock.name in started_by_decision:
            clock.status = ClockStatus.CANCELLED
            clock.stopped_at, clock.stopped_on, clock.updated_at = event.at, on, event.at
            _log(session, case, clock, "clock.cancelled", event.at, received_id, why="decision amended")


def check_event(session: Session, book: Rulebook, case: Case, event: Event) -> None:
    """Refuse, before anything changes, an event the case's clocks cannot take (a pause of a
    clock that is not running, a resume of one that is not paused)."""
    if isinstance(event, ClockPaused | ClockResumed):
        _paused_clock(book, case, event, _case_clocks(session, case), book.local_date(event.at))


def _paused_clock(
    book: Rulebook, case: Case, event: ClockPaused | ClockResumed, known: list[ClockRow], on: date
) -> tuple[ClockRule, ClockRow]:
    """The rule and the clock a pause or a resume acts on, or the reason it cannot."""
    rule = book.policy.clock(event.clock)
    if rule is None:
        names = ", ".join(r.name for r in book.policy.rules if r.pausable) or "none"
        raise MalformedEvent("clock", f"{event.clock!r} is not a clock of the policy (pausable: {names})")
    if not rule.pausable:
        why = "a statutory clock" if rule.name in STATUTORY_CLOCKS else "not pausable under the policy"
        raise EventRefused("clock", f"{rule.name} is {why}: it runs until its stop event, whatever happens")
    pausing = isinstance(event, ClockPaused)
    wanted = (ClockStatus.RUNNING, ClockStatus.BREACHED) if pausing else (ClockStatus.PAUSED,)
    mine = [c for c in known if c.name == event.clock and c.episode == case.episode]
    clock = next((c for c in mine if c.status in wanted), None)
    what = "running" if pausing else "paused"
    if clock is None:
        if mine and all(c.stopped_at is not None and c.stopped_at <= event.at for c in mine):
            raise EventRefused("clock", f"case {case.ref} had no {what} clock {event.clock!r} at {event.at}")
        # It may only have to wait for the event that starts (or pauses) the clock.
        raise TransitionNotAllowed("clock", f"case {case.ref} has no {what} clock named {event.clock!r}")
    # A pause dated before the clock began belongs to no clock that exists: never to this one.
    if pausing and event.at < clock.started_at:
        raise EventRefused(
            "at",
            f"clock.paused dated {event.at.isoformat()} is before case {case.ref}'s {event.clock} clock "
            f"started ({clock.started_at.isoformat()}): the clock it names did not exist at its time",
        )
    if not pausing and clock.paused_on is not None and on < clock.paused_on:
        raise EventRefused(
            "at", f"clock.resumed dated {on} is before the pause it would end ({clock.paused_on})"
        )
    return rule, clock


def _pause_or_resume(
    session: Session,
    book: Rulebook,
    case: Case,
    event: ClockPaused | ClockResumed,
    known: list[ClockRow],
    on: date,
    received_id: int | None,
) -> None:
    rule, clock = _paused_clock(book, case, event, known, on)
    pausing = isinstance(event, ClockPaused)
    if pausing:
        clock.status, clock.paused_on = ClockStatus.PAUSED, on
        assert isinstance(event, ClockPaused)
        _log(session, case, clock, "clock.paused", event.at, received_id, reason=event.reason)
    else:
        assert clock.paused_on is not None
        clock.paused_days += book.paused_length(rule, clock.paused_on, on)
        clock.due_on = book.due_on(rule, clock.counted_from, clock.paused_days)
        clock.status, clock.paused_on = ClockStatus.RUNNING, None
        _log(session, case, clock, "clock.resumed", event.at, received_id)
    clock.updated_at = event.at


def _log(
    session: Session,
    case: Case,
    clock: ClockRow,
    kind: str,
    at: datetime,
    received_id: int | None,
    **extra: Any,
) -> None:
    detail = {"clock": clock.name, "seq": clock.seq, "status": clock.status, "due": clock.due_on.isoformat()}
    record(session, case, kind, at, received_id, **detail, **extra)


def _with_their_cases(clocks: Select[ClockRow]) -> Select[ClockRow]:
    """``clocks`` locked together with their cases, skipping any clock or case in use.

    Applying an event locks its case and then changes its clocks. The sweep's changes are written
    to the case history, whose foreign key needs a share of the case's lock: a sweep holding a
    clock and then waiting for its case, while the intake holds the case and waits for the clock,
    is a deadlock PostgreSQL ends by failing one of them. Taken in one statement with SKIP LOCKED,
    the sweep never waits; what it skips, the next pass gets. (SQLite serialises writers.)"""
    return (
        clocks.join(Case, Case.id == ClockRow.case_id)
        .order_by(ClockRow.id)
        .with_for_update(skip_locked=True, of=(ClockRow, Case))
    )


def mark_breaches(session: Session, book: Rulebook, now: datetime) -> int:
    """Mark running clocks whose due date has passed (in local time) as breached."""
    today = book.local_date(now)
    overdue = session.scalars(
        _with_their_cases(
            select(ClockRow).where(ClockRow.status == ClockStatus.RUNNING, ClockRow.due_on < today)
        )
    ).all()
    cases = _cases_for(session, overdue)
    for clock in overdue:
        clock.status, clock.updated_at = ClockStatus.BREACHED, now
        _log(session, cases[clock.case_id], clock, "clock.breached", now, None)
    return len(overdue)


def recalculate(session: Session, book: Rulebook, now: datetime) -> int:
    """Recompute the due dates of unfinished clocks computed under another policy or calendar.

    Finished verdicts (met, met late, cancelled) stay as they were. Each changed due date is
    written to the case history with the old and new versions. Returns how many due dates moved.
    """
    policy_v, calendar_v = book.policy_version, book.calendar_version
    stale = session.scalars(
        _with_their_cases(
            select(ClockRow).where(
                ClockRow.status.in_([s.value for s in ACTIVE]),
                (ClockRow.policy_version != policy_v) | (ClockRow.calendar_version != calendar_v),
            )
        )
    ).all()
    cases = _cases_for(session, stale)
    today, moved = book.local_date(now), 0
    for clock in stale:
        case, rule = cases[clock.case_id], book.policy.clock(clock.name)
        before = {
            "due": clock.due_on.isoformat(),
            "policy": clock.policy_version,
            "calendar": clock.calendar_version,
        }
        if rule is None:
            clock.status, clock.stopped_at, clock.stopped_on = ClockStatus.CANCELLED, now, today
            record(
                session,
                case,
                "clock.cancelled",
                now,
                None,
                clock=clock.name,
                seq=clock.seq,
                why="clock removed from the policy",
                **{f"old_{k}": v for k, v in before.items()},
            )
        else:
            if rule.counted_from == "referral" and clock.episode == case.episode:
                clock.counted_from = book.local_date(case.referral_at)
            elif rule.counted_from == "event":
                clock.counted_from = book.local_date(clock.started_at)
            new_due = book.due_on(rule, clock.counted_from, clock.paused_days)
            if new_due != clock.due_on:
                moved += 1
                clock.due_on = new_due
                if clock.status == ClockStatus.BREACHED and new_due >= today:
                    clock.status = ClockStatus.RUNNING
                record(
                    session,
                    case,
                    "clock.recalculated",
                    now,
                    None,
                    clock=clock.name,
                    seq=clock.seq,
                    new_due=new_due.isoformat(),
                    new_policy=policy_v,
                    new_calendar=calendar_v,
                    **{f"old_{k}": v for k, v in before.items()},
                )
        clock.policy_version, clock.calendar_version, clock.updated_at = policy_v, calendar_v, now
    return moved


def _cases_for(session: Session, clocks: Sequence[ClockRow]) -> dict[int, Case]:
    ids = {c.case_id for c in clocks}
    if not ids:
        return {}
    return {c.id: c for c in session.scalars(select(Case).where(Case.id.in_(ids)))}
