"""The errors caseloop raises. Every one derives from :class:`CaseloopError` and carries context."""

from __future__ import annotations

from enum import StrEnum


class CaseloopError(Exception):
    """Base of every error caseloop raises on purpose."""


class PolicyError(CaseloopError):
    """The policy file (clocks, calendar, reminders) is not usable; the message names the key."""


class RejectionKind(StrEnum):
    MALFORMED = "malformed"  # the line itself is wrong: retrying will not help
    UNKNOWN_CASE = "unknown_case"  # may arrive before its referral: retry later
    NOT_ALLOWED = "not_allowed"  # not allowed in the case's current state: retry later
    CENSUS_RULE = "census_rule"  # breaks a census rule in the case's current history

    @property
    def retryable(self) -> bool:
        return self is not RejectionKind.MALFORMED


class EventRejected(CaseloopError):
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


class NotFound(CaseloopError):
    """A case, event or other record named by a user does not exist."""
