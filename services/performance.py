"""The performance figures managers read: for each measure, by month and team, how many were
due, how many on time and the percentage; the same numbers as CSV rows.

Counted in SQL by :mod:`workflow.performance`, within what the person may see
(``visible_cases``). A clock is counted in the month its count began (day 0, a local date):
the referral's month for decisions, acknowledgements and assessments. A case is counted under
the team that holds it now.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.actors import Actor, Kind
from services.authorisation import Action, authorise, visible_cases
from services.runtime import Runtime
from workflow import performance
from workflow.errors import Invalid
from workflow.months import Month
from workflow.policy import Policy
from workflow.staff import Role

DEFAULT_MONTHS = 12  # the last 12 months, this one included
MAX_MONTHS = 36  # a longer range is refused: the charts would not fit
MONTHS_OFFERED = 36  # how far back the month choices go
RE_REFERRALS = "re_referrals"


@dataclass(frozen=True)
class Measure:
    key: str
    label: str  # the measure as a heading: "Decisions within 1 working day"
    clocks: tuple[str, ...]
    due_words: str  # what "due" counts, for the table's heading
    met_words: str  # what "on time" counts


def measures(policy: Policy) -> list[Measure]:
    """The measures of the issue, each from the policy's clocks (a clock the council's policy
    does not have is left out, and each goal is read from the policy, not assumed)."""

    def within(name: str) -> str:
        rule = policy.clock(name)
        if rule is None:
            return ""
        n, unit = (
            (rule.goal.working_days, "working day")
            if rule.goal.working_days is not None
            else (rule.goal.months, "calendar month")
        )
        return f"within {n} {unit}{'' if n == 1 else 's'}"

    wanted = [
        Measure("decision", f"Decisions {within('decision')}", ("decision",), "Due", "On time"),
        Measure(
            "referrer_acknowledgement",
            f"Referrers acknowledged {within('referrer_acknowledgement')}",
            ("referrer_acknowledgement",),
            "Due",
            "On time",
        ),
        Measure(
            "referrer_outcome",
            f"Referrers told the outcome {within('referrer_outcome')}",
            ("referrer_outcome",),
            "Due",
            "On time",
        ),
        Measure("assessment", f"Assessments {within('assessment')}", ("assessment",), "Due", "On time"),
        Measure(
            "icpc", f"Initial child protection conferences {within('icpc')}", ("icpc",), "Due", "On time"
        ),
        Measure("reviews", "Review conferences on time", ("first_review", "later_review"), "Due", "On time"),
        Measure(
            "closing_letters",
            f"Closing letters sent {within('family_closing_letter')}",
            ("family_closing_letter", "referrer_closure_notice"),
            "Due",
            "On time",
        ),
    ]
    known = {r.name for r in policy.rules}
    found = [
        Measure(m.key, m.label, tuple(c for c in m.clocks if c in known), m.due_words, m.met_words)
        for m in wanted
    ]
    found = [m for m in found if m.clocks]
    if performance.REFERRAL_CLOCK in known:
        found.append(Measure(RE_REFERRALS, "Re-referrals within 12 months", (), "Referrals", "Re-referrals"))
    return found


def percent(part: int, whole: int) -> int | None:
    """``part`` of ``whole`` as a whole percentage, halves rounded up (2 of 3 is 67)."""
    if whole <= 0:
        return None
    return (200 * part + whole) // (2 * whole)


@dataclass(frozen=True)
class Figure:
    """One month's numbers for one team, or for every team shown (``team`` None)."""

    month: Month
    team: str | None
    due: int
    on_time: int

    @property
    def percent(self) -> int | None:
        return percent(self.on_time, self.due)


@dataclass(frozen=True)
class MeasureReport:
    measure: Measure
    by_month: list[Figure]  # every month of the range, all teams shown added up (the chart)
    by_team: list[Figure]  # each month and team with anything counted, month then team

    @property
    def latest(self) -> Figure | None:
        """The latest month with anything counted."""
        return next((f for f in reversed(self.by_month) if f.due), None)


@dataclass(frozen=True)
class Filters:
    first: Month
    last: Month
    team: str | None = None


@dataclass(frozen=True)
class Report:
    filters: Filters
    teams: list[str]  # the teams the person may choose from
    measures: list[MeasureReport]
    today: str
    months_offered: list[Month] = field(default_factory=list)  # newest first


class FiltersInvalid(Invalid):
    """The filters as typed, and what is wrong with each (the form is shown again with them)."""

    def __init__(self, errors: dict[str, str], typed: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors
        self.typed = typed


def teams_of(actor: Actor) -> list[str]:
    """The teams whose figures a manager reads: a service manager's teams, a team manager's own."""
    if actor.role is Role.SERVICE_MANAGER:
        return sorted(actor.teams)
    return [actor.team] if actor.team else []


def offered_months(rt: Runtime, now: datetime | None = None) -> list[Month]:
    """The months a person may choose from, newest first."""
    this = Month.of(rt.book.local_date(now or rt.clock()))
    return list(reversed(this.plus(1 - MONTHS_OFFERED).months_until(this)))


def filters(
    rt: Runtime, actor: Actor, team: str = "", first: str = "", last: str = "", now: datetime | None = None
) -> Filters:
    """The filters from a GET form (empty: the default), or :class:`FiltersInvalid` naming each
    problem: an unknown team, a month not written as YYYY-MM, a range backwards or too long."""
    authorise(actor, Action.READ_PERFORMANCE)
    this = Month.of(rt.book.local_date(now or rt.clock()))
    errors: dict[str, str] = {}
    typed = {"team": team, "from": first, "to": last}
    chosen_team = team.strip() or None
    if chosen_team is not None and actor.kind is Kind.STAFF and chosen_team not in teams_of(actor):
        errors["team"] = f"Choose one of your teams: {chosen_team!r} is not one of them"
    months: dict[str, Month] = {}
    for name, text, default in (("to", last, this), ("from", first, None)):
        if not text.strip():
            months[name] = default if default is not None else months.get("to", this).plus(1 - DEFAULT_MONTHS)
            continue
        try:
            months[name] = Month.parse(text)
        except Invalid as exc:
            errors[name] = f"Enter the {'first' if name == 'from' else 'last'} month as YYYY-MM: {exc}"
    if "from" in months and "to" in months and not errors.keys() & {"from", "to"}:
        if months["from"] > months["to"]:
            errors["from"] = "The first month must be the same as or before the last month"
        elif len(months["from"].months_until(months["to"])) > MAX_MONTHS:
            errors["from"] = f"Choose a range of at most {MAX_MONTHS} months"
        elif months["to"] > this:
            errors["to"] = f"The last month cannot be after this month ({this.label})"
    if errors:
        raise FiltersInvalid(errors, typed)
    return Filters(months["from"], months["to"], chosen_team)


def report(rt: Runtime, actor: Actor, chosen: Filters, now: datetime | None = None) -> Report:
    """Every measure's figures for the chosen months and team, as the person may see them."""
    authorise(actor, Action.READ_PERFORMANCE)
    today = rt.book.local_date(now or rt.clock())
    first, end = chosen.first.first_day, chosen.last.plus(1).first_day
    months = chosen.first.months_until(chosen.last)
    all_measures = measures(rt.book.policy)
    clock_names = {name for m in all_measures for name in m.clocks}
    visible = visible_cases(actor)
    with rt.reading() as uow:
        tallies = performance.clock_tallies(uow.session, clock_names, first, end, today, visible, chosen.team)
        again = performance.re_referral_tallies(uow.session, first, end, visible, chosen.team)
    reports = []
    for measure in all_measures:
        mine = again if measure.key == RE_REFERRALS else [t for t in tallies if t.clock in measure.clocks]
        reports.append(_measure_report(measure, mine, months))
    teams = teams_of(actor) if actor.kind is Kind.STAFF else []
    return Report(chosen, teams, reports, today.isoformat(), offered_months(rt, now))


def _measure_report(
    measure: Measure, tallies: Sequence[performance.Tally], months: list[Month]
) -> MeasureReport:
    # Counts added up in Python are a handful of aggregated rows (months x teams), not cases.
    per_team: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for tally in tallies:
        counts = per_team[(tally.month, tally.team)]
        counts[0] += tally.due
        counts[1] += tally.on_time
    by_team = [
        Figure(Month.parse(month), team, due, on_time)
        for (month, team), (due, on_time) in sorted(per_team.items())
        if due
    ]
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for figure in by_team:
        totals[str(figure.month)][0] += figure.due
        totals[str(figure.month)][1] += figure.on_time
    by_month = [Figure(m, None, *totals.get(str(m), [0, 0])) for m in months]
    return MeasureReport(measure, by_month, by_team)


CSV_HEADER = ("measure", "month", "team", "due", "on time", "percent")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A cell a spreadsheet will not run: text starting like a formula gets a leading ``'``."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def csv_rows(result: Report) -> Iterator[tuple[str, ...]]:
    """The header, then one row per measure, month and team with anything counted. For
    re-referrals, "due" is the referrals and "on time" the re-referrals among them."""
    yield CSV_HEADER
    for measured in result.measures:
        for figure in measured.by_team:
            cells = (
                measured.measure.label,
                str(figure.month),
                figure.team,
                figure.due,
                figure.on_time,
                "" if figure.percent is None else figure.percent,
            )
            yield tuple(safe_cell(c) for c in cells)
