"""The errors caseloop raises. Every one derives from :class:`CaseloopError` and carries context."""

from __future__ import annotations

from enum import StrEnum


class CaseloopError(Exception):
    """Base of every error caseloop raises on purpose."""


# One subclass per kind of answer, so every entry point maps them the same way (the web to
# 403/404/409/422, the CLI to one line on stderr) and metrics can count them by kind.


class Forbidden(CaseloopError):
    """The actor is known but may not do this (403). Never raised for a case the actor may not
    see: that is :class:`NotFound`, word for word as for a case that does not exist."""


class NotFound(CaseloopError):
    """A case, message, event or other record named does not exist, or the actor may not see it (404)."""


class Conflict(CaseloopError):
    """The request is well formed but the record's current state does not allow it (409)."""


class Invalid(CaseloopError):
    """The input itself is wrong; the message names what and why (422)."""


class PolicyError(Invalid):
    """The policy file (clocks, calendar, reminders) is not usable; the message names the key."""


class Unavailable(CaseloopError):
    """Something caseloop needs (the database) cannot be reached or refused to work; try again."""


class ImportFailed(CaseloopError):
    """An import stopped part-way: its input could not be read or the database failed. Every
    line before the failure is kept; importing the same input again takes the rest."""


class RejectionKind(StrEnum):
    MALFORMED = "malformed"  # the line itself is wrong: retrying will not help
    UNKNOWN_CASE = "unknown_case"  # may arrive before its referral: retry later
    NOT_ALLOWED = "not_allowed"  # not allowed in the case's current state: retry later
    CENSUS_RULE = "census_rule"  # breaks a census rule in the case's current history
    CONFLICT = "conflict"  # its id names an event already received with other content: never retried
    # It contradicts what had already happened by its own time (dated before its episode's
    # referral, a pause of a clock that was not running then, a statutory clock): waiting for
    # other events cannot make it right, so it is never retried.
    REFUSED = "refused"
    EXPIRED = "expired"  # waited too long for the events that could explain it; no longer retried

    @property
    def retryable(self) -> bool:
        return self in (RejectionKind.UNKNOWN_CASE, RejectionKind.NOT_ALLOWED, RejectionKind.CENSUS_RULE)


class EventRejected(Invalid):
    """An incoming event was refused. It names the field and the rule; the line is added on import."""

    kind: RejectionKind = RejectionKind.MALFORMED

    def __init__(self, field: str, rule: str, *, line: int | None = None) -> None:
        self.field = field
        self.rule = rule
        self.line = line
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}field {self.field}: {self.rule}"


class MalformedEvent(EventRejected):
    kind = RejectionKind.MALFORMED


class UnknownCase(EventRejected):
    kind = RejectionKind.UNKNOWN_CASE


class TransitionNotAllowed(EventRejected):
    kind = RejectionKind.NOT_ALLOWED


class CensusRuleBroken(EventRejected):
    kind = RejectionKind.CENSUS_RULE


class EventRefused(EventRejected):
    """An event that contradicts the case's history by its own time: refused for good."""

    kind = RejectionKind.REFUSED


class EventConflict(EventRejected, Conflict):
    """An event whose id was already received with different content: one id names one event."""

    kind = RejectionKind.CONFLICT


class ReceivedStatus(StrEnum):
    """What became of a received event."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"  # kept; retried if its order could explain it
    DISMISSED = "dismissed"  # a rejection a person set aside for good, with who and why
