"""A synthetic borough: referrals, decisions, assessments and closures with national proportions.

Everything here is invented (names, schools, addresses). The mix follows the national picture:
police make a little over a quarter of referrals and schools about a fifth; most decisions come
within a working day; assessments take a median of about 33 working days and about 86% finish
within 45; and, as the survey behind caseloop found, referrers and families are not always told.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from workflow.calendar import WorkingCalendar

SOURCES = {  # census referral source: weight (per cent, roughly national)
    "6": 28,
    "2A": 20,
    "3A": 3,
    "3B": 2,
    "3C": 1,
    "3D": 2,
    "3E": 3,
    "3F": 4,
    "4": 2,
    "5A": 4,
    "5B": 2,
    "5C": 2,
    "5D": 3,
    "1A": 5,
    "1B": 1,
    "1C": 1,
    "1D": 1,
    "2B": 2,
    "7": 2,
    "8": 5,
    "9": 1,
    "10": 2,
}
ORGANISATIONS = {
    "6": "Borough Police",
    "2A": "{school}",
    "2B": "Education Welfare Service",
    "3A": "Riverside Surgery",
    "3B": "Health Visiting Team",
    "3C": "School Nursing",
    "3D": "Community Health",
    "3E": "General Hospital A&E",
    "3F": "CAMHS",
    "4": "Borough Housing",
    "5A": "Children's Social Care",
    "5B": "Youth Service",
    "5C": "Neighbouring Council",
    "5D": "Early Help Hub",
    "7": "Probation Service",
    "8": "Family Support Charity",
}
FIRST = [
    "Amara",
    "Ben",
    "Chloe",
    "Daniel",
    "Ella",
    "Finn",
    "Grace",
    "Harry",
    "Isla",
    "Jack",
    "Kai",
    "Leah",
    "Mia",
    "Noah",
    "Olivia",
    "Priya",
    "Ryan",
    "Sofia",
    "Tom",
    "Zara",
]
LAST = [
    "Adeyemi",
    "Brown",
    "Clarke",
    "Demir",
    "Evans",
    "Fraser",
    "Green",
    "Hussain",
    "Iqbal",
    "Jones",
    "Kowalski",
    "Lewis",
    "Murphy",
    "Nowak",
    "Okafor",
    "Patel",
    "Quinn",
    "Smith",
]
SCHOOLS = [
    "Oakfield Primary",
    "St Anne's Primary",
    "Riverside Academy",
    "Hillcrest High",
    "Meadow Lane Primary",
    "Northgate School",
]
STREETS = ["Example Road", "Sample Street", "Test Avenue", "Placeholder Close", "Demo Crescent"]
TEAMS = ["front-door-north", "front-door-south", "assessment-east", "assessment-west"]


@dataclass
class Borough:
    seed: int
    weeks: int
    per_week: int
    zone: ZoneInfo
    calendar: WorkingCalendar

    def events(self, now: datetime) -> list[dict[str, Any]]:
        """All events up to ``now``, in the order they happened (as a case system exports them)."""
        rng = random.Random(self.seed)
        start = now - timedelta(weeks=self.weeks)
        events: list[dict[str, Any]] = []
        for index in range(self.weeks * self.per_week):
            received = start + timedelta(seconds=rng.uniform(0, (now - start).total_seconds()))
            events.extend(_Referral(self, rng, index, received, now).events())
        events.sort(key=lambda e: (e["at"], e["id"]))
        return events


def first_ref(index: int = 0) -> str:
    """The reference of the borough's referral number ``index`` (the first by default)."""
    return f"DEMO-{index + 1:05d}"


class _Referral:
    def __init__(
        self, borough: Borough, rng: random.Random, index: int, received: datetime, now: datetime
    ) -> None:
        self.b, self.rng, self.now = borough, rng, now
        self.ref = first_ref(index)
        self.received = received
        self.out: list[dict[str, Any]] = []
        self.stopped = False

    # -- time helpers -------------------------------------------------------------------------
    def _after(self, at: datetime, working_days: int) -> datetime:
        """A time in office hours ``working_days`` working days after ``at``."""
        day = self.b.calendar.add_working_days(at.astimezone(self.b.zone).date(), working_days)
        if working_days == 0 and not self.b.calendar.is_working_day(day):
            day = self.b.calendar.next_working_day(day)
        local = datetime.combine(day, time(9), self.b.zone) + timedelta(minutes=self.rng.randint(0, 480))
        return max(local.astimezone(UTC), at + timedelta(minutes=5))

    def _emit(self, kind: str, at: datetime, **fields: Any) -> bool:
        """Add an event unless it would lie in the future; the first future event ends the story."""
        if self.stopped or at > self.now:
            self.stopped = True
            return False
        n = len(self.out) + 1
        self.out.append(
            {
                "id": f"{self.ref}-{n:02d}",
                "case": self.ref,
                "type": kind,
                "at": at.isoformat(timespec="seconds"),
                **fields,
            }
        )
        return True

    def _duty(self, duty: str, at: datetime, goal: int, on_time: float, late: float) -> None:
        roll = self.rng.random()
        if roll < on_time:
            self._emit("duty.fulfilled", self._after(at, self.rng.randint(0, goal)), duty=duty)
        elif roll < on_time + late:
            self._emit("duty.fulfilled", self._after(at, goal + self.rng.randint(1, 6)), duty=duty)
        # otherwise nobody remembered: the clock stays running and breaches

    # -- the story ----------------------------------------------------------------------------
    def events(self) -> list[dict[str, Any]]:
        rng = self.rng
        source = rng.choices(list(SOURCES), weights=list(SOURCES.values()))[0]
        professional = source not in {"1A", "1B", "1C", "1D", "9", "10"}
        referral = self._referral(source)
        self._emit("referral.received", self.received, **referral)
        self._duty("referrer_acknowledgement", self.received, 1, 0.8, 0.12)

        decided = self._after(self.received, 1 if rng.random() < 0.93 else rng.randint(2, 4))
        outcome = rng.choices(["nfa", "early_help", "assessment", "strategy"], [10, 8, 70, 12])[0]
        if outcome in ("assessment", "strategy"):
            worker = f"SW{TEAMS.index(referral['team']) * 10 + rng.randint(1, 10):03d}"
            self._emit("worker.allocated", decided - timedelta(minutes=30), worker=worker)
        if not self._emit("decision.made", decided, outcome=outcome):
            return self.out
        if professional:
            self._duty("referrer_outcome", decided, 1, 0.7, 0.15)

        if outcome in ("nfa", "early_help"):
            self._close(decided, "NFA", professional)
        elif outcome == "assessment":
            self._assess(decided, professional)
        else:
            self._strategy(decided, professional, assessed=False)
        return self.out

    def _assess(self, since: datetime, professional: bool) -> None:
        rng = self.rng
        elapsed = self.b.calendar.working_days_between(self.received.date(), since.date())
        length = max(3, int(rng.gauss(33, 10)) - elapsed)
        done = self._after(since, length)
        outcome = rng.choices(["nfa", "early_help", "cin_plan", "strategy"], [35, 20, 35, 10])[0]
        factors = rng.sample(["1A", "2A", "3A", "4A", "16A", "17A", "18B", "21"], k=rng.randint(1, 3))
        if not self._emit("assessment.completed", done, outcome=outcome, factors=sorted(factors)):
            return
        if outcome in ("nfa", "early_help"):
            self._close(done, "RC8" if outcome == "nfa" else "RC9", professional)
        elif outcome == "strategy":
            self._strategy(done, professional, assessed=True)

    def _strategy(self, since: datetime, professional: bool, assessed: bool) -> None:
        rng = self.rng
        held = self._after(since, rng.randint(0, 2))
        icpc_required = rng.random() < 0.5
        if not self._emit("strategy.held", held, icpc_required=icpc_required):
            return
        if not icpc_required:
            if assessed:
                self._close(self._after(held, rng.randint(1, 5)), "RC7", professional)
            else:
                self._assess(held, professional)
            return
        conference = self._after(held, max(3, int(rng.gauss(12, 4))))
        result = rng.choices(["cp_plan", "cin_plan", "nfa"], [75, 20, 5])[0]
        if self._emit("icpc.held", conference, outcome=result) and result == "nfa":
            self._close(self._after(conference, 2), "RC7", professional)

    def _close(self, since: datetime, reason: str, professional: bool) -> None:
        closed = self._after(since, self.rng.randint(0, 3))
        if not self._emit("case.closed", closed, reason=reason):
            return
        self._duty("family_closing_letter", closed, 5, 0.65, 0.15)
        if professional:
            self._duty("referrer_closure_notice", closed, 5, 0.55, 0.2)

    def _referral(self, source: str) -> dict[str, Any]:
        rng = self.rng
        surname = rng.choice(LAST)
        age = rng.randint(0, 17)
        dob = date(self.received.year - age, rng.randint(1, 12), rng.randint(1, 28))
        if dob > self.received.date():  # a birthday later this year: born a year earlier
            dob = dob.replace(year=dob.year - 1)
        school_name = rng.choice(SCHOOLS)
        child: dict[str, Any] = {"name": f"{rng.choice(FIRST)} {surname}", "dob": dob.isoformat()}
        if 4 <= age <= 16:
            slug = school_name.lower().replace(" ", "").replace("'", "")
            child["school"] = {
                "name": school_name,
                "dsl_name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                "email": f"safeguarding@{slug}.example.org",
                "address": f"{rng.randint(1, 90)} School Lane, Borough",
            }
        organisation = ORGANISATIONS.get(source, "").replace("{school}", school_name) or None
        referrer = {
            "source": source,
            "organisation": organisation,
            "name": None if source == "9" else f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            "email": f"referrals{rng.randint(1, 99)}@example.org" if organisation else None,
            "address": None,
        }
        domestic_abuse = rng.random() < 0.06
        household = []
        for n, relationship in enumerate(["mother", "father"][: rng.randint(1, 2)], start=1):
            channel = "email" if rng.random() < 0.4 else "post"
            household.append(
                {
                    "id": f"{self.ref}-P{n}",
                    "name": f"{rng.choice(FIRST)} {surname}",
                    "relationship": relationship,
                    "email": f"parent{rng.randint(1, 999)}@example.net" if channel == "email" else None,
                    "address": f"{rng.randint(1, 200)} {rng.choice(STREETS)}, Borough",
                    "preferred_channel": channel,
                    "safe_to_contact": not (domestic_abuse and relationship == "father"),
                    "confidential_address": domestic_abuse and rng.random() < 0.3,
                }
            )
        return {
            "child": child,
            "referrer": {k: v for k, v in referrer.items() if v is not None},
            "household": household,
            "team": rng.choice(TEAMS),
            "flags": ["domestic_abuse"] if domestic_abuse else [],
        }


def staff_csv() -> str:
    """The borough's staff: ten social workers and a team manager in each team, two service managers."""
    rows = ["id,name,email,role,team,manager_id"]
    for n, team in enumerate(TEAMS):
        service_manager = f"SM{n // 2 + 1:02d}"
        if n % 2 == 0:
            rows.append(
                f"{service_manager},Service Manager {n // 2 + 1},{service_manager.lower()}"
                f"@council.example,service_manager,{team},"
            )
        manager = f"TM{n + 1:02d}"
        rows.append(
            f"{manager},Team Manager {n + 1},{manager.lower()}@council.example,team_manager,"
            f"{team},{service_manager}"
        )
        for k in range(1, 11):
            worker = f"SW{n * 10 + k:03d}"
            rows.append(
                f"{worker},Social Worker {n * 10 + k},{worker.lower()}@council.example,"
                f"social_worker,{team},{manager}"
            )
    return "\n".join(rows) + "\n"


def write_jsonl(events: list[dict[str, Any]], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for event in events:
            out.write(json.dumps(event, separators=(",", ":")) + "\n")
    return len(events)
