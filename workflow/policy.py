"""The council's policy: which clocks run, on which events, to which goals, on which calendar.

The policy is data (``config/policy.yaml`` by default) validated here into frozen objects. Its
``fingerprint`` covers the clock rules and the calendar's fingerprint covers the calendar; a clock
records both, which is how running clocks know to be recalculated when either changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date, time
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workflow.calendar import CountingRule, WorkingCalendar
from workflow.errors import PolicyError
from workflow.events import EVENT_TYPES
from workflow.lifecycle import State


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Goal(_Frozen):
    working_days: int | None = Field(default=None, ge=0, le=365)
    months: int | None = Field(default=None, ge=1, le=36)

    @model_validator(mode="after")
    def _exactly_one(self) -> Goal:
        if (self.working_days is None) == (self.months is None):
            raise ValueError("give exactly one of working_days or months")
        return self

    def __str__(self) -> str:
        if self.working_days is not None:
            return f"{self.working_days} working days"
        return f"{self.months} calendar months"


class Trigger(_Frozen):
    """Matches an accepted event: its type, optional field values, the state it led to, the referrer,
    whether the child's school is known (recorded, or the referrer is a school), and whether a
    duty was met earlier in the episode (``met``: its letters sent, or recorded done by hand)."""

    event: str
    when: dict[str, Any] = Field(default_factory=dict)
    state: State | None = None
    referrer: Literal["professional", "non_professional", "school"] | None = None
    school_known: bool | None = None
    met: str | None = None

    @field_validator("event")
    @classmethod
    def _known_event(cls, value: str) -> str:
        if value not in EVENT_TYPES:
            raise ValueError(f"unknown event type {value!r}")
        return value


class ClockRule(_Frozen):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    goal: Goal
    starts: tuple[Trigger, ...] = Field(min_length=1)
    stops: tuple[Trigger, ...] = Field(min_length=1)
    cancelled_by: tuple[Trigger, ...] = ()
    # "event": the date of the event that started the clock; "referral": the episode's referral date
    counted_from: Literal["event", "referral"] = "event"
    # A start while the clock runs restarts it from the new event (the ICPC counts from the last
    # strategy discussion); otherwise the first start stands.
    restart: bool = False
    # Whether a clock.paused event may stop the count for a while. Only local clocks: the
    # statutory timescales (STATUTORY_CLOCKS) run whatever happens.
    pausable: bool = False

    @model_validator(mode="after")
    def _statutory_clocks_run(self) -> ClockRule:
        if self.pausable and self.name in STATUTORY_CLOCKS:
            raise ValueError(f"{self.name} is a statutory clock and cannot be pausable")
        return self


# The statutory timescales of Working Together: no event pauses them, whatever the policy says.
STATUTORY_CLOCKS = frozenset({"decision", "assessment", "icpc", "first_review", "later_review"})


class DutyRule(_Frozen):
    """Who must be told what, by when, after which events. Each duty runs a clock of its own name,
    stopped when its letters are sent (or when a ``duty.fulfilled`` event records it was done)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    audience: Literal["family", "referrer", "school"]
    template: str
    easy_read_template: str | None = None
    goal: Goal
    after: tuple[Trigger, ...] = Field(min_length=1)
    # Duties whose letter, owed on the same local day, already says what this one would: the
    # household is not sent two letters saying the same thing (a decision to step down to early
    # help and the closure that follows it the same day).
    not_on_the_same_day_as: tuple[str, ...] = ()

    def clock(self) -> ClockRule:
        done = Trigger(event="duty.fulfilled", when={"duty": self.name})
        return ClockRule(name=self.name, label=self.label, goal=self.goal, starts=self.after, stops=(done,))


class CalendarPolicy(_Frozen):
    country: str = "GB"
    subdivision: str = "ENG"
    counting: CountingRule = CountingRule.DAY0
    closure_days: tuple[date, ...] = ()


class OfficeHours(_Frozen):
    start: time = time(8, 0)
    end: time = time(18, 0)

    @model_validator(mode="after")
    def _ordered(self) -> OfficeHours:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class ReminderPolicy(_Frozen):
    """Who is reminded when. Reminders go out on working days within office hours only."""

    # "working": reminders go out on working days only; "all": every day (an out-of-hours service)
    days: Literal["working", "all"] = "working"
    warn_working_days_before: int = Field(default=1, ge=0, le=20)
    escalate_to_service_manager_after: int = Field(default=2, ge=0, le=60)
    office_hours: OfficeHours = OfficeHours()
    # The clocks reminded about; empty means every clock in the policy.
    clocks: tuple[str, ...] = ()
    # The staff id who hears what nobody else can: cases of a team or worker the staff directory
    # does not know, or a team with no manager left. Unset: such reminders reach no one.
    fallback_manager: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[^\s,]+$")
    # A digest lists this many cases, most urgent first, then says how many more there are.
    digest_limit: int = Field(default=20, ge=1, le=500)


class Policy(_Frozen):
    version: str
    calendar: CalendarPolicy = CalendarPolicy()
    clocks: tuple[ClockRule, ...]
    duties: tuple[DutyRule, ...] = ()
    reminders: ReminderPolicy = ReminderPolicy()

    @cached_property
    def rules(self) -> tuple[ClockRule, ...]:
        """Every clock: those declared, and one for each duty."""
        return self.clocks + tuple(d.clock() for d in self.duties)

    @cached_property
    def rules_by_event(self) -> Mapping[str, tuple[ClockRule, ...]]:
        """For each event type a trigger names, the rules (in their order) with a trigger of that
        type among their starts, stops and cancellations: a rule with none cannot fire, so an
        event need only try these. An amended decision fires the triggers of ``decision.made``."""
        by_type: dict[str, list[ClockRule]] = {}
        for rule in self.rules:
            named = {t.event for t in (*rule.starts, *rule.stops, *rule.cancelled_by)}
            if "decision.made" in named:
                named.add("decision.amended")
            for event_type in named:
                by_type.setdefault(event_type, []).append(rule)
        return {k: tuple(v) for k, v in by_type.items()}

    @cached_property
    def duties_by_event(self) -> Mapping[str, tuple[DutyRule, ...]]:
        """For each event type, the duties (in their order) that one of its ``after`` triggers
        names, as :attr:`rules_by_event` does for clocks."""
        by_type: dict[str, list[DutyRule]] = {}
        for duty in self.duties:
            named = {t.event for t in duty.after}
            if "decision.made" in named:
                named.add("decision.amended")
            for event_type in named:
                by_type.setdefault(event_type, []).append(duty)
        return {k: tuple(v) for k, v in by_type.items()}

    @model_validator(mode="after")
    def _reminded_clocks_exist(self) -> Policy:
        declared = [r.name for r in self.clocks] + [d.name for d in self.duties]
        twice = sorted({n for n in declared if declared.count(n) > 1})
        if twice:
            raise ValueError(f"clock and duty names must be unique: {', '.join(twice)}")
        names = set(declared)
        unknown = [n for n in self.reminders.clocks if n not in names]
        if unknown:
            raise ValueError(f"reminders.clocks names unknown clocks: {', '.join(unknown)}")
        duties = {d.name for d in self.duties}
        for duty in self.duties:
            strangers = [n for n in duty.not_on_the_same_day_as if n not in duties]
            if strangers:
                raise ValueError(
                    f"duty {duty.name}: not_on_the_same_day_as names unknown duties: {', '.join(strangers)}"
                )
        for duty in self.duties:
            for trigger in duty.after:
                if trigger.met is not None and trigger.met not in names:
                    raise ValueError(f"duty {duty.name}: met names no clock or duty: {trigger.met!r}")
        return self

    @field_validator("clocks")
    @classmethod
    def _unique_names(cls, rules: tuple[ClockRule, ...]) -> tuple[ClockRule, ...]:
        names = [r.name for r in rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"clock names must be unique: {', '.join(twice)}")
        return rules

    def working_calendar(self) -> WorkingCalendar:
        return WorkingCalendar(
            country=self.calendar.country,
            subdivision=self.calendar.subdivision,
            closure_days=frozenset(self.calendar.closure_days),
            counting=self.calendar.counting,
        )

    @cached_property
    def done_by_hand(self) -> tuple[str, ...]:
        """What a ``duty.fulfilled`` may name: every duty, and every clock that such an event
        stops (the task of reaching someone whose letter failed)."""
        tasks = [
            str(t.when["duty"])
            for rule in self.clocks
            for t in rule.stops
            if t.event == "duty.fulfilled" and "duty" in t.when
        ]
        return tuple(d.name for d in self.duties) + tuple(dict.fromkeys(tasks))

    def clock(self, name: str) -> ClockRule | None:
        return next((r for r in self.rules if r.name == name), None)

    def duty(self, name: str) -> DutyRule | None:
        return next((d for d in self.duties if d.name == name), None)

    @property
    def fingerprint(self) -> str:
        """The declared version plus a hash of every clock rule: what a clock was computed under."""
        rules = json.dumps([r.model_dump(mode="json") for r in self.rules], sort_keys=True)
        return f"{self.version}+{hashlib.sha256(rules.encode()).hexdigest()[:8]}"


def parse_policy(data: Any, source: str = "policy") -> Policy:
    """Validate policy data, raising :class:`PolicyError` that names the key and the problem."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: the policy must be a mapping")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise PolicyError(f"{source}: {where}: {first['msg'].removeprefix('Value error, ')}") from exc
    try:
        policy.working_calendar()  # an unknown subdivision fails now, not at the first due date
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from exc
    return policy
