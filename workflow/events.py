"""The integration contract: one JSON object per line, validated into typed events.

Every event has ``id`` (unique), ``case`` (the case management system's reference), ``type`` and
``at`` (ISO 8601 with an offset); the remaining fields depend on the type. Unknown fields are
refused, so a misspelt field is reported rather than silently ignored.

Strictness is shared, so a new event inherits it by building on :class:`_Strict` and the kinds of
value in :mod:`workflow.fields` (``Text`` is short: use ``Name``, ``Address``, ``Words``, ``Team``
and the other kinds for longer values): types are JSON's own (no number for a date-time, no "yes"
or 0 for a boolean, no string for a number), limits come from the columns values are stored in,
and an empty optional text counts as absent. Lines are read by :mod:`workflow.jsonlines`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from functools import cache
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from workflow import limits
from workflow.census import ASSESSMENT_FACTORS, CLOSURE_REASONS, REFERRAL_SOURCES, Flag
from workflow.errors import MalformedEvent
from workflow.fields import (
    Address,
    BirthDate,
    CaseRef,
    Email,
    EventId,
    Instant,
    Name,
    PersonId,
    StaffId,
    Team,
    Text,
    Words,
)
from workflow.jsonlines import parse_object, quoted, showable


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class School(_Strict):
    name: Name
    dsl_name: Name
    email: Email | None = None
    address: Address | None = None


class Child(_Strict):
    name: Name
    dob: BirthDate
    school: School | None = None


class Referrer(_Strict):
    source: str
    organisation: Name | None = None
    name: Name | None = None
    email: Email | None = None
    address: Address | None = None

    @field_validator("source")
    @classmethod
    def _census_code(cls, value: str) -> str:
        if value not in REFERRAL_SOURCES:
            raise ValueError(f"{value!r} is not a census referral source code (1A–10)")
        return value


class Person(_Strict):
    id: PersonId
    name: Name
    relationship: Text
    email: Email | None = None
    address: Address | None = None
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


Household = Annotated[list[Person], Field(max_length=limits.LIST)]
Codes = Annotated[list[Text], Field(max_length=limits.LIST)]


class _Envelope(_Strict):
    id: EventId
    case: CaseRef
    at: Instant


class ReferralReceived(_Envelope):
    type: Literal["referral.received"]
    child: Child
    referrer: Referrer
    household: Household
    team: Team
    flags: Codes = Field(default_factory=list)

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
    worker: StaffId


DecisionOutcome = Literal["nfa", "early_help", "assessment", "strategy"]


class DecisionMade(_Envelope):
    type: Literal["decision.made"]
    outcome: DecisionOutcome


class DecisionAmended(_Envelope):
    """A decision recorded in error, corrected: letters already sent stay sent, letters of the
    old decision not yet sent are cancelled, and the new outcome's letters and clocks follow."""

    type: Literal["decision.amended"]
    outcome: DecisionOutcome
    reason: Words


class StrategyHeld(_Envelope):
    type: Literal["strategy.held"]
    icpc_required: bool


class AssessmentCompleted(_Envelope):
    type: Literal["assessment.completed"]
    outcome: Literal["nfa", "early_help", "cin_plan", "strategy"]
    factors: Annotated[list[str], Field(max_length=limits.LIST)] = Field(default_factory=list)

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
    why: Words


class CaseTransferred(_Envelope):
    """The case moved to another team; its queues, escalations and letters follow the team."""

    type: Literal["case.transferred"]
    team: Team
    worker: StaffId | None = None  # the new team's worker, when one is allocated with the move


class ChildUpdated(_Envelope):
    """Corrected or new details of the child. Only the fields given change; ``"school": null``
    records that the child no longer has a school."""

    type: Literal["child.updated"]
    name: Name | None = None
    dob: BirthDate | None = None
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
    flags: Codes

    @field_validator("flags")
    @classmethod
    def _known_flags(cls, flags: list[str]) -> list[str]:
        return _known(flags)


class ClockPaused(_Envelope):
    type: Literal["clock.paused"]
    clock: Text
    reason: Words


class ClockResumed(_Envelope):
    type: Literal["clock.resumed"]
    clock: Text


def _known(flags: list[str]) -> list[str]:
    vocabulary = {f.value for f in Flag}
    unknown = [f for f in flags if f not in vocabulary]
    if unknown:
        raise ValueError(f"unknown flags: {', '.join(unknown)} (known: {', '.join(f.value for f in Flag)})")
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
    """Decode one JSON Lines line into an object, or raise :class:`MalformedEvent`
    (the strict rules are in :mod:`workflow.jsonlines`)."""
    return parse_object(raw)


# Pydantic's words for a value of the wrong JSON type, in the contract's terms.
_WRONG_TYPE = {
    "bool_type": "must be a boolean: true or false",
    "int_type": "must be a whole number (not a string)",
    "string_type": "must be a string",
    "datetime_type": "must be an ISO 8601 date-time string with a UTC offset (not a number)",
    "date_type": "must be an ISO 8601 date string (YYYY-MM-DD)",
    "list_type": "must be a JSON array",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "timezone_aware": "must be an ISO 8601 date-time with a UTC offset",
}


_EXAMPLE_AT = "2026-03-02T09:30:00+00:00"


def validate_event(data: dict[str, Any]) -> Event:
    """Turn a decoded object into a typed event, or raise :class:`MalformedEvent` naming the field.

    Validated as JSON in strict mode, whatever produced ``data``, so that the types are JSON's
    own and no value is coerced into another type."""
    kind = data.get("type")
    if kind is None:
        raise MalformedEvent("type", "is required")
    if kind not in EVENT_TYPES:
        raise MalformedEvent("type", f"unknown event type {quoted(kind)} (known: {', '.join(EVENT_TYPES)})")
    try:
        event = _ADAPTER.validate_json(json.dumps(_absent_if_blank(_model_of(kind), data)), strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        # The first element of the location is the union's tag; the rest is the field path.
        # A key is the sender's text: shown escaped and cut short, as any quoted input is.
        path = [_key(p) for p in first["loc"][1:]] or ["(event)"]
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = f"is not a field of {kind}"
        elif first["type"] in _WRONG_TYPE:
            message = _WRONG_TYPE[first["type"]]
        elif first["type"] in ("datetime_parsing", "datetime_from_date_parsing"):
            message = f"must be an ISO 8601 date-time with a UTC offset, such as {_EXAMPLE_AT} ({message})"
        raise MalformedEvent(".".join(path), message) from exc
    for where, born in _births(event):
        if born > event.at.date():
            raise MalformedEvent(where, f"{born.isoformat()} is after the event's date: it is in the future")
    return event


def _key(part: object) -> str:
    text = showable(str(part))
    return text if len(text) <= limits.CODE else f"{text[: limits.CODE - 1]}…"


@cache
def _model_of(kind: str) -> type[BaseModel]:
    for model in get_args(get_args(Event)[0]):
        if get_args(model.model_fields["type"].annotation) == (kind,):
            return model  # type: ignore[no-any-return]
    raise AssertionError(f"no model for {kind}")


def _absent_if_blank(model: type[BaseModel], data: object) -> object:
    """``data`` with every empty or blank optional text made null, at any depth: a case system
    exports "" for the organisation of a member of the public. Required text still refuses blank.
    Done before validation, since validation runs on JSON in strict mode."""
    if not isinstance(data, dict):
        return data
    fields = _fields(model)
    cleaned: dict[str, object] = {}
    for key, value in data.items():
        found = fields.get(key)
        if found is None:
            cleaned[key] = value  # refused as an unknown field
        elif isinstance(value, str) and not value.strip() and found[0]:
            cleaned[key] = None
        elif (inner := found[1]) is not None:
            cleaned[key] = (
                [_absent_if_blank(inner, v) for v in value]
                if isinstance(value, list)
                else _absent_if_blank(inner, value)
            )
        else:
            cleaned[key] = value
    return cleaned


@cache
def _fields(model: type[BaseModel]) -> dict[str, tuple[bool, type[BaseModel] | None]]:
    """For each field of a model: whether it may be absent, and the model it holds (if any).
    Worked out once per model, not for every field of every line."""
    return {k: (_may_be_absent(f), _inner_model(f.annotation)) for k, f in model.model_fields.items()}


def _may_be_absent(found: FieldInfo) -> bool:
    return not found.is_required() and found.default is None


def _inner_model(annotation: object) -> type[BaseModel] | None:
    """The model a field holds (``School | None``, ``list[Person]``, annotated or not), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _births(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, date]]:
    """Every date of birth in an event (``dob`` at any depth), with its field path."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if name == "dob" and isinstance(value, date):
            yield f"{prefix}{name}", value
        elif isinstance(value, BaseModel):
            yield from _births(value, f"{prefix}{name}.")
