"""The monthly case audit: the sample drawn, the findings recorded, the totals by month.

- **Which cases**: those with a referral in the month (a referral's local date), under the
  team holding each when the sample is drawn. A month is drawn once it has ended, so its
  referrals are all in.
- **The draw** (:mod:`workflow.audit_sample`) covers every team at once: one sample per month,
  shared by every manager, stored so that it never changes; drawing again adds nothing. Its
  shares are worked out from counts per team (no case is read but those drawn); each manager
  then sees the sampled cases of the cases they may see (``visible_cases``).
- **Findings**: each recording is a new row; the newest is the finding, the earlier ones stay
  as its history (who answered what, and when).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from services.actors import Actor
from services.authorisation import Action, authorise, visible_cases
from services.runtime import Runtime
from workflow import audit_records, audit_sample, limits, performance
from workflow.audit_records import Answer, AuditFinding, AuditSample
from workflow.errors import Conflict, Invalid, NotFound
from workflow.months import Month

NOTES = 2000  # characters of notes an auditor may write about one case
QUESTIONS = {
    "family_told": "whether the family was told",
    "referrer_told": "whether the referrer was told",
    "letters_right": "whether the letters were right",
}
CHOICES = {
    "family_told": (Answer.YES, Answer.NO, Answer.NOT_APPLICABLE),
    "referrer_told": (Answer.YES, Answer.NO, Answer.NOT_APPLICABLE),
    "letters_right": (Answer.YES, Answer.NO),
}


def month_of(text: str) -> Month:
    """The month of an address (``/audit/2026-11``): a month that cannot be is not found."""
    try:
        return Month.parse(text)
    except Invalid:
        raise NotFound(f"there is no audit month {text[:20]!r}: months are written as YYYY-MM") from None


def drawable(rt: Runtime, month: Month, now: datetime | None = None) -> bool:
    """Whether the month has ended (local time), so its sample may be drawn."""
    return Month.of(rt.book.local_date(now or rt.clock())) > month


@dataclass(frozen=True)
class Drawn:
    month: Month
    added: int  # cases this draw stored (0 when the month was drawn before)
    sampled: int  # cases in the month's sample


def draw(rt: Runtime, actor: Actor, month: Month, now: datetime | None = None) -> Drawn:
    """Draw and store the month's sample, once: drawing a month drawn before changes nothing."""
    authorise(actor, Action.AUDIT_CASES)
    now = now or rt.clock()
    if not drawable(rt, month, now):
        raise Conflict(f"the sample of {month.label} can be drawn once the month has ended")
    first, end = month.first_day, month.plus(1).first_day
    try:
        with rt.writing() as uow:
            session = uow.session
            if audit_records.is_drawn(session, str(month)):
                return Drawn(month, 0, _sample_size(rt, month))
            counts = performance.referral_counts(session, first, end)
            added = 0
            for team, positions in audit_sample.draw(counts, str(month)).items():
                for case_id, _ref in performance.referred_cases_at(session, team, first, end, positions):
                    session.add(
                        AuditSample(
                            month=str(month), case_id=case_id, team=team, drawn_at=now, drawn_by=actor.name
                        )
                    )
                    added += 1
            uow.commit()
    except IntegrityError:
        # Someone else drew the month at the same moment: theirs is the same sample, and it stands.
        return Drawn(month, 0, _sample_size(rt, month))
    return Drawn(month, added, added)


def _sample_size(rt: Runtime, month: Month) -> int:
    with rt.reading() as uow:
        return audit_records.sample_size(uow.session, str(month))


@dataclass(frozen=True)
class Finding:
    family_told: str
    referrer_told: str
    letters_right: str
    notes: str
    recorded_by: str
    recorded_on: str  # a local date


@dataclass(frozen=True)
class SampledCase:
    ref: str
    team: str
    worker: str | None
    finding: Finding | None
    history: list[Finding]  # the earlier recordings, oldest first (corrections leave them here)


@dataclass(frozen=True)
class MonthView:
    month: Month
    drawn: bool
    drawable: bool
    cases: list[SampledCase]


def _finding(rt: Runtime, row: AuditFinding) -> Finding:
    return Finding(
        row.family_told,
        row.referrer_told,
        row.letters_right,
        row.notes,
        row.recorded_by,
        rt.book.local_date(row.recorded_at).isoformat(),
    )


def month_view(rt: Runtime, actor: Actor, month: Month, now: datetime | None = None) -> MonthView:
    """The month's sampled cases that the actor may see, each with its finding and history."""
    authorise(actor, Action.AUDIT_CASES)
    with rt.reading() as uow:
        sampled = audit_records.sampled_cases(uow.session, str(month), visible_cases(actor))
        drawn = bool(sampled) or audit_records.is_drawn(uow.session, str(month))
        recorded = audit_records.findings_of(uow.session, [s.sample_id for s in sampled if s.recordings > 1])
        cases = [
            SampledCase(
                s.ref,
                s.team,
                s.worker,
                _finding(rt, s.finding) if s.finding else None,
                [_finding(rt, f) for f in recorded.get(s.sample_id, [])[:-1]],
            )
            for s in sampled
        ]
    return MonthView(month, drawn, drawable(rt, month, now), cases)


class FindingInvalid(Invalid):
    """A finding with answers missing or not allowed: what is wrong with each, and what was typed."""

    def __init__(self, errors: dict[str, str], typed: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors
        self.typed = typed


def record_finding(
    rt: Runtime, actor: Actor, month: Month, ref: str, answers: dict[str, str], now: datetime | None = None
) -> None:
    """Record (or correct) what the auditor found in sampled case ``ref``. A case not in the
    month's sample, or one the actor may not see, is not found; every answer must be given."""
    authorise(actor, Action.AUDIT_CASES)
    typed = {name: answers.get(name, "") for name in (*QUESTIONS, "notes")}
    errors: dict[str, str] = {}
    for name, words in QUESTIONS.items():
        allowed = [a.value for a in CHOICES[name]]
        if typed[name] not in allowed:
            errors[name] = f"Choose {words}" if not typed[name] else f"Choose {words} from the answers given"
    notes = typed["notes"].replace("\r\n", "\n").strip()
    if len(notes) > NOTES:
        errors["notes"] = f"Notes must be {NOTES} characters or fewer (these are {len(notes)})"
    elif any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\t" for c in notes):
        errors["notes"] = "Notes hold a control character that cannot be kept: type them again"
    with rt.writing() as uow:
        sample = audit_records.sample_of(uow.session, str(month), ref, visible_cases(actor))
        if sample is None:
            raise NotFound(f"case {ref[: limits.CASE_REF]!r} is not in the audit sample of {month.label}")
        if errors:
            raise FindingInvalid(errors, typed)
        uow.session.add(
            AuditFinding(
                sample_id=sample.id,
                family_told=typed["family_told"],
                referrer_told=typed["referrer_told"],
                letters_right=typed["letters_right"],
                notes=notes,
                recorded_by=actor.name,
                recorded_at=now or rt.clock(),
            )
        )
        uow.commit()


@dataclass(frozen=True)
class Months:
    items: list[audit_records.MonthTotals]
    total: int


def months(rt: Runtime, actor: Actor, limit: int, offset: int = 0) -> Months:
    """The drawn months, newest first, with what the actor may see of each: sampled, audited,
    and the newest findings added up."""
    authorise(actor, Action.AUDIT_CASES)
    with rt.reading() as uow:
        items, total = audit_records.month_totals(uow.session, visible_cases(actor), limit, offset)
    return Months(items, total)
