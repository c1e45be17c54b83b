"""A case's timeline: what was received, the state it moved through, its clocks, the letters
made (and what became of each) and who approved or rejected them, in the order they happened.

Each new referral of the case is marked, and a re-referral within 12 months of the referral of
the episode before it carries a tag: the census's measure, the same rule as the history's flag and
the performance page (``workflow.episodes.is_re_referral``, calendar months in local dates).

A case the person may not see is not found, in the same words as one that does not exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import pairwise
from typing import Any

from sqlalchemy import select

from messaging import case_timeline as tl
from services.actors import Actor
from services.authorisation import Action, authorise, visible_cases
from services.runtime import Runtime
from workflow.census import CLOSURE_REASONS, REFERRAL_SOURCES
from workflow.clocks import ClockStatus, Rulebook
from workflow.episodes import is_re_referral
from workflow.errors import NotFound
from workflow.lifecycle import State
from workflow.model import Case

STATE_WORDS = {
    State.NEW.value: "not yet referred",
    State.REFERRAL.value: "referral: waiting for a decision",
    State.REFERRAL_NFA.value: "no further action at referral",
    State.STEPPED_DOWN.value: "stepped down to early help",
    State.ASSESSMENT.value: "assessment",
    State.STRATEGY.value: "strategy discussion or section 47 enquiry",
    State.ICPC_PENDING.value: "waiting for an initial child protection conference",
    State.CIN_PLAN.value: "child in need plan",
    State.CP_PLAN.value: "child protection plan",
    State.CONCLUDED.value: "work concluded, waiting for closure",
    State.CLOSED.value: "closed",
}
EVENT_WORDS = {
    "referral.received": "Referral received",
    "worker.allocated": "Worker allocated",
    "decision.made": "Decision made",
    "decision.amended": "Decision amended",
    "strategy.held": "Strategy discussion held",
    "assessment.completed": "Assessment completed",
    "icpc.held": "Initial child protection conference held",
    "review.held": "Review conference held",
    "case.closed": "Case closed",
    "household.updated": "Household details updated",
    "referrer.updated": "Referrer's details updated",
    "case.transferred": "Case transferred",
    "child.updated": "Child's details updated",
    "flags.updated": "Flags updated",
    "duty.fulfilled": "Recorded as done",
    "letter.failed": "A letter failed: a task for the worker",
    "clock.paused": "Clock paused",
    "clock.resumed": "Clock resumed",
}
OUTCOME_WORDS = {
    "nfa": "no further action",
    "early_help": "step down to early help",
    "assessment": "child and family assessment",
    "strategy": "strategy discussion",
    "cin_plan": "child in need plan",
    "cp_plan": "child protection plan",
    "continue": "plan continues",
}
FLAG_WORDS = {
    "domestic_abuse": "domestic abuse",
    "marac": "discussed at MARAC",
    "protection_order": "protection order in force",
    "do_not_disclose": "do not disclose",
    "restricted": "restricted record",
}
AUDIT_WORDS = {
    "held": "Held for review",
    "approved": "Approved",
    "rejected": "Rejected",
    "sent": "Sent",
    "failed": "Failed",
    "cancelled": "Cancelled: no longer owed",
    "unknown": "Delivery uncertain",
    "requeued": "Queued to be sent again",
    "corrected": "Corrected to sent",
}
CLOCK_STATUS_WORDS = {
    ClockStatus.RUNNING.value: "running",
    ClockStatus.MET.value: "met on time",
    ClockStatus.MET_LATE.value: "met late",
    ClockStatus.BREACHED.value: "overdue",
    ClockStatus.CANCELLED.value: "cancelled",
    ClockStatus.PAUSED.value: "paused",
}


@dataclass(frozen=True)
class Tag:
    text: str
    colour: str = ""  # a govuk-tag modifier: "blue", "red", ...


@dataclass(frozen=True)
class Entry:
    """One line of the timeline, in words."""

    at: datetime
    when: str  # local date and time
    category: str  # Event, State, Clock, Letter, Approval, Duty, Note
    title: str
    details: list[str] = field(default_factory=list)
    link: tuple[str, str] | None = None  # (href, words)
    tags: list[Tag] = field(default_factory=list)


@dataclass(frozen=True)
class Header:
    ref: str
    state: str
    team: str
    worker: str | None
    open: bool
    flags: list[str]
    episode: int
    referred: date
    referral_source: str
    closed: date | None
    closure_reason: str | None
    re_referral: bool


@dataclass(frozen=True)
class Timeline:
    header: Header
    entries: list[Entry]
    total: int
    newest_first: bool


def timeline(
    rt: Runtime,
    actor: Actor,
    ref: str,
    *,
    newest_first: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> Timeline:
    """One page of the case's timeline (oldest first unless ``newest_first``) and its header."""
    authorise(actor, Action.READ_CASE)
    if "\x00" in ref:  # PostgreSQL refuses a NUL in any query; no case has one
        raise NotFound(f"no case {ref!r}")
    book = rt.book
    with rt.reading() as uow:
        session = uow.session
        case = session.scalar(select(Case).where(Case.ref == ref, visible_cases(actor)))
        if case is None:
            raise NotFound(f"no case {ref!r}")  # the words of a case that does not exist
        items, total = tl.page(session, case, limit, offset, newest_first)
        found = tl.details(session, case, items)
        episodes = tl.episodes(session, case)
    re_referrals = _re_referrals(book, episodes)
    referrals = {e.referral_at: e.episode for e in episodes if e.referral_at is not None}
    words = _Words(book, found, referrals, re_referrals)
    entries = [words.entry(item) for item in items]
    header = Header(
        ref=case.ref,
        state=STATE_WORDS.get(case.state, case.state),
        team=case.team,
        worker=case.worker,
        open=case.closed_at is None,
        flags=[FLAG_WORDS.get(f, f.replace("_", " ")) for f in case.flags or ()],
        episode=case.episode,
        referred=book.local_date(case.referral_at),
        referral_source=REFERRAL_SOURCES.get(case.referral_source, case.referral_source),
        closed=book.local_date(case.closed_at) if case.closed_at else None,
        closure_reason=CLOSURE_REASONS.get(case.closure_reason or "", case.closure_reason),
        re_referral=case.episode in re_referrals,
    )
    return Timeline(header, entries, total, newest_first)


def _re_referrals(book: Rulebook, episodes: list[tl.EpisodeDates]) -> set[int]:
    """The episodes whose referral came within 12 months of the one before (the census's rule)."""
    found: set[int] = set()
    for before, this in pairwise(episodes):
        previous, referred = before.referral_at, this.referral_at
        if (
            previous is not None
            and referred is not None
            and is_re_referral(book.local_date(previous), book.local_date(referred))
        ):
            found.add(this.episode)
    return found


class _Words:
    """Puts each item of a page into words, with what the page read about it."""

    def __init__(
        self, book: Rulebook, found: tl.Details, referrals: dict[datetime, int], re_referrals: set[int]
    ) -> None:
        self.book, self.found, self.referrals, self.re_referrals = book, found, referrals, re_referrals

    def when(self, at: datetime) -> str:
        local = at.astimezone(self.book.zone)
        return f"{local.day} {local.strftime('%B %Y')}, {local.strftime('%H:%M')}"

    def day(self, value: date | str | None) -> str:
        if value is None:
            return ""
        day = date.fromisoformat(value) if isinstance(value, str) else value
        return f"{day.day} {day.strftime('%B %Y')}"

    def duty(self, name: str | None) -> str:
        if not name:
            return "a letter"
        rule = self.book.policy.clock(name)
        return rule.label if rule else name.replace("_", " ")

    def entry(self, item: tl.Item) -> Entry:
        if item.source == tl.EVENT:
            return self._event(self.found.events[item.id])
        if item.source == tl.HISTORY:
            return self._history(self.found.history[item.id])
        if item.source == tl.LETTER:
            return self._letter(self.found.letters[item.id])
        return self._audit(self.found.audits[item.id])

    def _event(self, event: tl.Received) -> Entry:
        title = EVENT_WORDS.get(event.type or "", event.type or "An event that could not be read")
        at = event.occurred_at or event.received_at
        details = [
            f"Received {self.when(event.received_at)}"
            + (" (recorded by caseloop)" if event.source == "caseloop" else "")
        ]
        tags: list[Tag] = []
        fields = _fields(event.raw)
        details += self._event_fields(event.type, fields)
        if event.status != "accepted":
            tags.append(Tag(event.status.capitalize(), "red" if event.status == "rejected" else "grey"))
            if event.reason:
                details.append(f"Why: {event.reason}")
        elif event.type == "referral.received" and event.occurred_at in self.referrals:
            episode = self.referrals[event.occurred_at]
            tags.append(Tag("New referral" if episode == 1 else f"New referral (episode {episode})", "blue"))
            if episode in self.re_referrals:
                tags.append(Tag("Re-referral within 12 months", "orange"))
        return Entry(at, self.when(at), "Event", title, details, tags=tags)

    def _event_fields(self, kind: str | None, fields: dict[str, Any]) -> list[str]:
        shown: list[str] = []
        if "outcome" in fields:
            shown.append(f"Outcome: {OUTCOME_WORDS.get(str(fields['outcome']), fields['outcome'])}")
        if kind == "decision.amended" and fields.get("reason"):
            shown.append(f"Why amended: {fields['reason']}")
        if kind == "case.closed" and fields.get("reason"):
            reason = str(fields["reason"])
            shown.append(f"Closure reason: {reason} ({CLOSURE_REASONS.get(reason, 'unknown code')})")
        if kind == "referral.received" and isinstance(fields.get("referrer"), dict):
            source = str(fields["referrer"].get("source", ""))
            shown.append(f"Referred by: {REFERRAL_SOURCES.get(source, source or 'unknown')}")
        for name, words in (("worker", "Worker"), ("team", "Team"), ("by", "By"), ("how", "How")):
            if fields.get(name):
                shown.append(f"{words}: {fields[name]}")
        if fields.get("duty"):
            shown.append(f"Duty: {self.duty(str(fields['duty']))}")
        if fields.get("clock"):
            shown.append(f"Clock: {self.duty(str(fields['clock']))}")
        if kind == "flags.updated" and isinstance(fields.get("flags"), list):
            flags = [FLAG_WORDS.get(str(f), str(f)) for f in fields["flags"]]
            shown.append("Flags: " + (", ".join(flags) or "none"))
        return shown

    def _history(self, entry: tl.History) -> Entry:
        d, kind = entry.detail or {}, entry.kind
        when = self.when(entry.at)
        if kind == "state.changed":
            before = STATE_WORDS.get(str(d.get("before")), str(d.get("before")))
            after = STATE_WORDS.get(str(d.get("after")), str(d.get("after")))
            return Entry(entry.at, when, "State", f"State changed to {after}", [f"Was: {before}"])
        if kind.startswith("clock."):
            return self._clock(entry, d)
        if kind == "duty.done":
            how = f" by {d['how']}" if d.get("how") else ""
            by = f", recorded by {d['by']}" if d.get("by") else ""
            return Entry(entry.at, when, "Duty", f"Done by hand{how}: {self.duty(d.get('duty'))}{by}")
        if kind == "duty.by_hand":
            return Entry(
                entry.at,
                when,
                "Duty",
                f"To do by hand: {self.duty(d.get('duty'))}",
                [f"No letter can go: {d.get('task', 'tell them another way')}"],
            )
        if kind == "letter.not_made":
            return Entry(
                entry.at,
                when,
                "Letter",
                f"No letter made: {self.duty(d.get('duty'))}",
                [str(d.get("why", ""))],
            )
        if kind == "fact.superseded":
            return Entry(
                entry.at,
                when,
                "Note",
                "An older update arrived late: the newer one stands",
                [EVENT_WORDS.get(str(d.get("type")), str(d.get("type")))],
            )
        if kind == "intake.warning":
            return Entry(
                entry.at,
                when,
                "Note",
                "Warning when the event was received",
                [str(v) for k, v in d.items() if k != "code"] or [str(d.get("code", ""))],
            )
        return Entry(entry.at, when, "Note", kind.replace(".", " ").replace("_", " ").capitalize())

    def _clock(self, entry: tl.History, d: dict[str, Any]) -> Entry:
        name = str(d.get("clock", ""))
        label = self.duty(name)
        clock = self.found.clocks.get((entry.episode, name, int(d.get("seq", 1) or 1)))
        rule = self.book.policy.clock(name)
        details: list[str] = []
        what = entry.kind.removeprefix("clock.")
        tags: list[Tag] = []
        calendar = self.book.calendar
        if what in ("started", "restarted"):
            goal = f" ({rule.goal})" if rule else ""
            details.append(f"Due {self.day(d.get('due'))}{goal}")
            title = f"Clock {what}: {label}"
        elif what == "stopped":
            status = str(d.get("status", ""))
            title = f"Clock stopped: {label}"
            if clock is not None and clock.stopped_on is not None:
                took = calendar.working_days_between(clock.counted_from, clock.stopped_on)
                details.append(f"Took {took} working day{'s' if took != 1 else ''}")
                if status == ClockStatus.MET_LATE.value:
                    late = calendar.working_days_between(clock.due_on, clock.stopped_on)
                    details.append(f"{late} working day{'s' if late != 1 else ''} after it was due")
            tags.append(
                Tag(
                    CLOCK_STATUS_WORDS.get(status, status).capitalize(),
                    "green" if status == ClockStatus.MET.value else "yellow",
                )
            )
        elif what == "breached":
            title = f"Overdue: {label}"
            details.append(f"It was due {self.day(d.get('due'))}")
            tags.append(Tag("Overdue", "red"))
        elif what == "cancelled":
            title = f"Clock cancelled: {label}"
            if d.get("why"):
                details.append(f"Why: {d['why']}")
        elif what == "paused":
            title = f"Clock paused: {label}"
            if d.get("reason"):
                details.append(f"Why: {d['reason']}")
        elif what == "resumed":
            title = f"Clock resumed: {label}"
            details.append(f"Now due {self.day(d.get('due'))}")
        elif what == "recalculated":
            title = f"Due date recalculated: {label}"
            details.append(f"Was due {self.day(d.get('old_due'))}, now due {self.day(d.get('new_due'))}")
        else:
            title = f"Clock {what}: {label}"
        return Entry(entry.at, self.when(entry.at), "Clock", title, details, tags=tags)

    def _letter(self, letter: tl.Letter) -> Entry:
        details = [f"To: {letter.recipient_role}", f"By: {letter.channel}", f"Now: {letter.status}"]
        if letter.hold_reasons:
            details.append("Held because: " + "; ".join(letter.hold_reasons))
        words = "See what was sent" if letter.status == "sent" else "See the letter"
        return Entry(
            letter.created_at,
            self.when(letter.created_at),
            "Letter",
            f"Letter owed: {self.duty(letter.duty)}",
            details,
            link=(f"/letters/{letter.id}", f"{words} (letter {letter.id})"),
        )

    def _audit(self, audit: tl.Audit) -> Entry:
        action = AUDIT_WORDS.get(audit.action, audit.action.capitalize())
        decided = audit.action in ("approved", "rejected")
        title = f"{action}: {self.duty(audit.duty)} to the {audit.recipient_role}"
        by = "caseloop" if audit.by == "caseloop" else audit.by
        details = [f"By: {by}"]
        if audit.note:
            details.append(("Why: " if decided else "Note: ") + audit.note)
        tags = [Tag(action, "green" if audit.action == "approved" else "red")] if decided else []
        return Entry(
            audit.at,
            self.when(audit.at),
            "Approval" if decided else "Letter",
            title,
            details,
            link=(f"/letters/{audit.outbox_id}", f"See the letter (letter {audit.outbox_id})"),
            tags=tags,
        )


def _fields(raw: str) -> dict[str, Any]:
    """The received line's fields, for the few a timeline shows (never its names or addresses)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
