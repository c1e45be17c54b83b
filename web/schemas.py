"""The shapes the integration API answers with, as OpenAPI publishes them.

They describe what :mod:`services.queries` returns (the same objects the CLI prints with
``--json``); FastAPI checks every answer against them, so the published schema cannot drift from
what is sent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.queries import OUTBOX_STATUSES

MOST_EVENTS = 5000  # events in one request: a day of a large council's feed fits in a few


# A made-up referral from an anonymous referrer, as the case system would send it.
EXAMPLE_EVENT: dict[str, Any] = {
    "id": "cms-000123",
    "case": "CS-2026-0001",
    "type": "referral.received",
    "at": "2026-11-30T09:15:00+00:00",
    "child": {"name": "Alex Example", "dob": "2016-05-01"},
    "referrer": {"source": "9"},
    "household": [],
    "team": "front-door",
}


class ErrorBody(BaseModel):
    detail: str = Field(description="What is wrong, in words.")


class EventsIn(BaseModel):
    """Events as the JSON Lines contract takes them, one object per event."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"events": [EXAMPLE_EVENT]}]})

    events: list[dict[str, Any]] = Field(max_length=MOST_EVENTS)


class EventResult(BaseModel):
    id: str | None = Field(description="The event's id (none when the object named none).")
    status: Literal["accepted", "duplicate", "rejected"]
    reason: str | None = Field(
        description='Why it was rejected or skipped ("line N" is its position in the request, from 1).'
    )
    warnings: list[str] = Field(default_factory=list, description="Accepted, but worth a look.")


class EventsOut(BaseModel):
    results: list[EventResult] = Field(description="One result per event, in the order sent.")


class ClockView(BaseModel):
    name: str
    label: str
    episode: int
    seq: int
    started: str
    counted_from: str
    due: str
    status: str
    stopped: str | None
    policy_version: str


class CaseView(BaseModel):
    """A case's state and clocks (current episode first), without names or addresses."""

    case: str
    state: str
    episode: int
    team: str
    worker: str | None
    referral_source: str
    referred: str
    decision: str | None
    closure_reason: str | None
    flags: list[str]
    clocks: list[ClockView]
    last_history_entry: int | None


class OverdueRow(BaseModel):
    case: str
    clock: str
    due: str
    working_days_overdue: int
    worker: str | None
    allocation: str = Field(description="Who has the case, or why nobody does.")
    team: str
    why: str
    reason: str
    to_do: str


class OutboxRow(BaseModel):
    id: int
    case: str | None
    kind: str
    recipient_role: str
    recipient: str
    channel: str
    status: str
    attempts: int
    created: str
    sent: str | None
    last_error: str | None


class PageInfo(BaseModel):
    total: int = Field(description="How many there are in all.")
    limit: int
    offset: int


class OverduePage(PageInfo):
    items: list[OverdueRow]


class OutboxPage(PageInfo):
    items: list[OutboxRow]


class PageQuery(BaseModel):
    """Which page of a list; a parameter the endpoint does not take is refused, not ignored."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(100, ge=1, le=1000, description="At most this many items.")
    offset: int = Field(0, ge=0, le=1_000_000_000, description="Skip this many items first.")


class OutboxQuery(PageQuery):
    # A case reference is never empty: an empty ``case=`` is refused, as the schema says.
    case: str | None = Field(None, min_length=1, max_length=64, description="Only messages about this case.")
    status: str | None = Field(
        None, description="Only messages in this status.", json_schema_extra={"enum": list(OUTBOX_STATUSES)}
    )
