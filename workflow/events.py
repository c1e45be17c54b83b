"""The integration contract: one JSON object per line, validated into typed events.

Every event has ``id`` (unique), ``case`` (the case management system's reference), ``type`` and
``at`` (ISO 8601 with an offset); the remaining fields depend on the type. Unknown fields are
refused, so a misspelt field is reported rather than silently ignored.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from workflow.census import ASSESSMENT_FACTORS, CLOSURE_REASONS, REFERRAL_SOURCES, Flag
from workflow.errors import MalformedEvent

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class School(_Strict):
    name: Text
    dsl_name: Text
    email: Text | None = None
    address: Text | None = None


class Child(_Strict):
    name: Text
    dob: date
    school: School | None = None


class Referrer(_Strict):
    source: str
    organisation: Text | None = None
    name: Text | None = None
    email: Text | None = None
    address: Text | None = None

    @field_validator("source")
    @classmethod
    def _census_code(cls, value: str) -> str:
        if value not in REFERRAL_SOURCES:
            raise ValueError(f"{value!r} is not a census referral source code (1A–10)")
        return value


class Person(_Strict):
    id: Text
    name: Text
    relationship: Text
    email: Text | None = None
    address: Text | None = None
    preferred_channel: Literal["post", "email"] = "post"
    safe_to_contact: bool
    confidential_address: bool
    easy_read: bool = False  # letters to this person use the easy-read version

    @model_validator(mode="after")
    def _reachable(self) -> Person:
        if self.safe_to_contact and self.preferred_channel == "email" and not self.email:
            raise ValueError("preferred_channel is email but no email is given")
        if self.safe_to_contact and self.preferred_channel == "post" and not self.address:
            raise ValueError("preferred_channel is post but no address is given")
        return self


Household = Annotated[list[Person], Field(max_length=50)]


class _Envelope(_Strict):
    id: Text
    case: Text
    at: AwareDatetime


class ReferralReceived(_Envelope):
    type: Literal["referral.received"]
    child: Child
    referrer: Referrer
    household: Household
    team: Text
    flags: list[Text] = Field(default_factory=list)

    @field_validator("household")
    @classmethod
    def _unique_ids(cls, people: list[Person]) -> list[Person]:
        return _unique_people(people)

    @field_validator("flags")
    @classmethod
    def _known_flags(cls, flags: list[str]) -> list[str]:
        return _known(flags)


class WorkerAllocated(_Envelope):
    type: Literal["worker.allocated"]
    worker: Text


DecisionOutcome = Literal["nfa", "early_help", "assessment", "strategy"]


class DecisionMade(_Envelope):
    type: Literal["decision.made"]
    outcome: DecisionOutcome


class DecisionAmended(_Envelope):
    """A decision recorded in error, corrected: letters already sent stay sent, letters of the
    old decision not yet sent are cancelled, and the new outcome's letters and clocks follow."""

    type: Literal["decision.amended"]
    outcome: DecisionOutcome
    reason: Text


class StrategyHeld(_Envelope):
    type: Literal["strategy.held"]
    icpc_required: bool


class AssessmentCompleted(_Envelope):
    type: Literal["assessment.completed"]
    outcome: Literal["nfa", "early_help", "cin_plan", "strategy"]
    factors: list[str] = Field(default_factory=list)

    @field_validator("factors")
    @classmethod
    def _census_factors(cls, codes: list[str]) -> list[str]:
        unknown = [c for c in codes if c not in ASSESSMENT_FACTORS]
        if unknown:
            raise ValueError(f"not census assessment factor codes: {', '.join(unknown)}")
        return codes


class IcpcHeld(_Envelope):
    type: Literal["icpc.held"]
    outcome: Literal["cp_plan", "cin_plan", "nfa"]


class ReviewHeld(_Envelope):
    type: Literal["review.held"]
    outcome: Literal["continue", "cin_plan", "nfa"] = "continue"


class CaseClosed(_Envelope):
    type: Literal["case.closed"]
    reason: str

    @field_validator("reason")
    @classmethod
    def _closure_code(cls, value: str) -> str:
        if value not in CLOSURE_REASONS:
            raise ValueError(f"{value!r} is not a closure reason (RC1–RC9, or NFA at referral stage)")
        return value


class HouseholdUpdated(_Envelope):
    type: Literal["household.updated"]
    household: Household

    @field_validator("household")
    @classmethod
    def _unique_ids(cls, people: list[Person]) -> list[Person]:
        return _unique_people(people)


class ReferrerUpdated(_Envelope):
    type: Literal["referrer.updated"]
    referrer: Referrer


HowDone = Literal["phone", "meeting", "letter"]
HOW_DONE: tuple[str, ...] = ("phone", "meeting", "letter")


class DutyFulfilled(_Envelope):
    """A communication duty done outside caseloop (say, a letter the council recorded by hand)."""

    type: Literal["duty.fulfilled"]
    duty: Text
    # How, and by which member of staff, when a person records it (`caseloop duty done --how`).
    how: HowDone | None = None
    by: Text | None = None


class LetterFailed(_Envelope):
    """caseloop's own record that a letter failed or came back: a task for the worker."""

    type: Literal["letter.failed"]
    outbox: int
    duty: Text
    why: Text


class CaseTransferred(_Envelope):
    """The case moved to another team; its queues, escalations and letters follow the team."""

    type: Literal["case.transferred"]
    team: Text
    worker: Text | None = None  # the new team's worker, when one is allocated with the move


class ChildUpdated(_Envelope):
    """Corrected or new details of the child. Only the fields given change; ``"school": null``
    records that the child no longer has a school."""

    type: Literal["child.updated"]
    name: Text | None = None
    dob: date | None = None
    school: School | None = None

    @model_validator(mode="after")
    def _something(self) -> ChildUpdated:
        if not self.model_fields_set & {"name", "dob", "school"}:
            raise ValueError("give at least one of name, dob or school")
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be removed")
        if "dob" in self.model_fields_set and self.dob is None:
            raise ValueError("dob cannot be removed")
        return self


class FlagsUpdated(_Envelope):
    """The case's flags as they now stand (the whole list): domestic abuse reported later, say."""

    type: Literal["flags.updated"]
    flags: list[Text]

    @field_validator("flags")
    @classmethod
    def _known_flags(cls, flags: list[str]) -> list[str]:
        return _known(flags)


class ClockPaused(_Envelope):
    type: Literal["clock.paused"]
    clock: Text
    reason: Text


class ClockResumed(_Envelope):
    type: Literal["clock.resumed"]
    clock: Text


def _known(flags: list[str]) -> list[str]:
    vocabulary = {f.value for f in Flag}
    unknown = [f for f in flags if f not in vocabulary]
    if unknown:
        raise ValueError(
            f"unknown flags: {', '.join(unknown)} (known: {', '.join(f.value for f in Flag)})"
        )
    return sorted(set(flags))


def _unique_people(people: list[Person]) -> list[Person]:
    seen: set[str] = set()
    for person in people:
        if person.id in seen:
            raise ValueError(f"person id {person.id!r} appears twice")
        seen.add(person.id)
    return people


Event = Annotated[
    ReferralReceived
    | WorkerAllocated
    | DecisionMade
    | DecisionAmended
    | StrategyHeld
    | AssessmentCompleted
    | IcpcHeld
    | ReviewHeld
    | CaseClosed
    | HouseholdUpdated
    | ReferrerUpdated
    | CaseTransferred
    | ChildUpdated
    | FlagsUpdated
    | DutyFulfilled
    | LetterFailed
    | ClockPaused
    | ClockResumed,
    Field(discriminator="type"),
]
EVENT_TYPES: tuple[str, ...] = (
    "referral.received",
    "worker.allocated",
    "decision.made",
    "decision.amended",
    "strategy.held",
    "assessment.completed",
    "icpc.held",
    "review.held",
    "case.closed",
    "household.updated",
    "referrer.updated",
    "case.transferred",
    "child.updated",
    "flags.updated",
    "duty.fulfilled",
    "letter.failed",
    "clock.paused",
    "clock.resumed",
)
_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_line(raw: str) -> dict[str, Any]:
    """Decode one JSON Lines line into an object, or raise :class:`MalformedEvent`."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MalformedEvent("(line)", f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(data, dict):
        raise MalformedEvent("(line)", "an event must be a JSON object")
    return data


def validate_event(data: dict[str, Any]) -> Event:
    """Turn a decoded object into a typed event, or raise :class:`MalformedEvent` naming the field."""
    kind = data.get("type")
    if kind is None:
        raise MalformedEvent("type", "is required")
    if kind not in EVENT_TYPES:
        raise MalformedEvent("type", f"unknown event type {kind!r} (known: {', '.join(EVENT_TYPES)})")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        # The first element of the location is the union's tag; the rest is the field path.
        path = [str(p) for p in first["loc"][1:]] or ["(event)"]
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = f"is not a field of {kind}"
        elif first["type"] == "timezone_aware":
            message = "must be an ISO 8601 date-time with a UTC offset"
        raise MalformedEvent(".".join(path), message) from exc
