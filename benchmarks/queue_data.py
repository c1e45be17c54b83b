"""A large council's tables for the queue benchmark, written straight in with COPY.

The rows are what intake and the sweep would leave, without running them (a million cases
through intake would take the benchmark hours): a tenth of the cases open, each with its running
clocks (some overdue, some at risk, some paused), allocated across teams and workers (some to
nobody, some to a leaver); the closed nine tenths with their clocks met and their letters sent;
and the open loops: letters of owed duties queued, held, failed or rejected, duties owed with no
letter (a task done by phone), letters that failed after they went, and duties nobody can be
told of. The case JSON is of a realistic width, so that reading whole cases costs what it would.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

TEAMS = tuple(f"team-{n:02d}" for n in range(1, 21))
WORKERS_PER_TEAM = 15
OPEN_STATES = ("referral", "assessment", "strategy", "icpc_pending", "cin_plan", "cp_plan")
POLICY_VERSION, CALENDAR_VERSION = "bench", "bench"
BATCH = 50_000


def team_manager(team: str) -> str:
    return f"tm-{team[-2:]}"


def service_manager(team: str) -> str:
    return "sm-1" if int(team[-2:]) <= len(TEAMS) // 2 else "sm-2"


def worker(team: str, n: int) -> str:
    return f"sw-{team[-2:]}-{n:02d}"


@dataclass
class Counts:
    cases: int = 0
    clocks: int = 0
    outbox: int = 0
    history: int = 0
    loops: dict[str, int] = field(default_factory=dict)


def build(conninfo: str, cases: int, now: datetime, seed: int = 2026) -> Counts:
    """Write ``cases`` cases (and everything the queues read of them) into the migrated, empty
    schema ``conninfo`` points at; ANALYZE the tables, as a live database would be."""
    rng = random.Random(seed)
    counts = Counts()
    with psycopg.connect(conninfo) as conn:
        _copy(
            conn,
            "staff",
            ("id", "name", "email", "role", "team", "manager_id", "active", "left_on", "updated_at"),
            _staff(now),
        )
        rows = _Rows(rng, now, counts)
        # A batch at a time, so that a million cases never sit in this process's memory at once.
        while counts.cases < cases:
            for _ in range(min(BATCH, cases - counts.cases)):
                rows.case()
            _copy(conn, "cases", _CASE_COLUMNS, rows.cases)
            _copy(conn, "clocks", _CLOCK_COLUMNS, rows.clocks)
            _copy(conn, "outbox", _OUTBOX_COLUMNS, rows.outbox)
            _copy(conn, "case_history", _HISTORY_COLUMNS, rows.history)
            rows.clear()
        for table in ("cases", "clocks", "outbox", "case_history"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        conn.commit()
        conn.autocommit = True
        for table in ("staff", "cases", "clocks", "outbox", "case_history"):
            conn.execute(f"VACUUM ANALYZE {table}")
    return counts


def _copy(conn: psycopg.Connection[Any], table: str, columns: tuple[str, ...], rows: Any) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _staff(now: datetime) -> Iterator[tuple[Any, ...]]:
    yield (
        "sm-1",
        "Service Manager One",
        "sm1@example.org",
        "service_manager",
        TEAMS[0],
        None,
        True,
        None,
        now,
    )
    yield (
        "sm-2",
        "Service Manager Two",
        "sm2@example.org",
        "service_manager",
        TEAMS[-1],
        None,
        True,
        None,
        now,
    )
    for team in TEAMS:
        tm = team_manager(team)
        yield (
            tm,
            f"Manager {team}",
            f"{tm}@example.org",
            "team_manager",
            team,
            service_manager(team),
            True,
            None,
            now,
        )
        for n in range(1, WORKERS_PER_TEAM + 1):
            sw = worker(team, n)
            left = n == WORKERS_PER_TEAM  # one leaver a team: their cases are nobody's
            yield (
                sw,
                f"Worker {sw}",
                f"{sw}@example.org",
                "social_worker",
                team,
                tm,
                not left,
                date(2026, 10, 1) if left else None,
                now,
            )


_CASE_COLUMNS = (
    "id",
    "ref",
    "state",
    "episode",
    "team",
    "worker",
    "referral_at",
    "referral_source",
    "decision",
    "assessment_started",
    "assessment_completed",
    "factors",
    "flags",
    "child",
    "referrer",
    "household",
    "closed_at",
    "closure_reason",
    "updated_at",
    "fact_times",
)
_CLOCK_COLUMNS = (
    "id",
    "case_id",
    "team",
    "case_ref",
    "episode",
    "name",
    "seq",
    "started_at",
    "counted_from",
    "due_on",
    "status",
    "stopped_at",
    "stopped_on",
    "paused_on",
    "paused_days",
    "policy_version",
    "calendar_version",
    "updated_at",
)
_OUTBOX_COLUMNS = (
    "id",
    "idempotency_key",
    "kind",
    "case_id",
    "recipient_role",
    "recipient",
    "address",
    "channel",
    "status",
    "office_hours_only",
    "attempts",
    "next_attempt_at",
    "sent_at",
    "created_at",
    "last_error",
    "duty",
    "source_event",
    "episode",
    "payload",
)
_HISTORY_COLUMNS = ("id", "case_id", "episode", "kind", "at", "recorded_at", "detail")

_CHILD = json.dumps(
    {
        "name": "Child Example",
        "dob": "2015-04-01",
        "sex": "F",
        "school": "Test Primary",
        "address": "1 Example Street, Example Town, EX1 1EX",
        "ethnicity": "not recorded",
    }
)
_REFERRER = json.dumps(
    {
        "organisation": "Test Primary",
        "name": "A Referrer",
        "role": "teacher",
        "email": "referrer@example.org",
        "phone": "01632 960000",
    }
)
_HOUSEHOLD = json.dumps(
    [
        {"id": "p1", "relationship": "mother", "name": "Parent Example", "address": "1 Example Street"},
        {"id": "p2", "relationship": "father", "name": "Parent Example", "address": "1 Example Street"},
    ]
)


class _Rows:
    """Rows for each table, made one case at a time (each case's clocks and letters with it)."""

    def __init__(self, rng: random.Random, now: datetime, counts: Counts) -> None:
        self.rng, self.now, self.today, self.counts = rng, now, now.date(), counts
        self.cases: list[tuple[Any, ...]] = []
        self.clocks: list[tuple[Any, ...]] = []
        self.outbox: list[tuple[Any, ...]] = []
        self.history: list[tuple[Any, ...]] = []

    def clear(self) -> None:
        for table in (self.cases, self.clocks, self.outbox, self.history):
            table.clear()

    def case(self) -> None:
        rng, c = self.rng, self.counts
        c.cases += 1
        case_id = c.cases
        team = TEAMS[case_id % len(TEAMS)]
        is_open = rng.random() < 0.1  # a tenth open, spread across every team
        if is_open:
            state = rng.choice(OPEN_STATES)
            who = None if rng.random() < 0.12 else worker(team, rng.randint(1, WORKERS_PER_TEAM))
            referred = self.now - timedelta(days=rng.randint(1, 60), minutes=rng.randint(0, 600))
        else:
            state = "closed"
            who = worker(team, rng.randint(1, WORKERS_PER_TEAM))
            referred = self.now - timedelta(days=rng.randint(61, 2000))
        flags = '["restricted"]' if rng.random() < 0.01 else "[]"
        closed = None if is_open else referred + timedelta(days=40)
        self.cases.append(
            (
                case_id,
                f"BEN-{case_id:07d}",
                state,
                1,
                team,
                who,
                referred,
                "SCH",
                None,
                False,
                False,
                "[]",
                flags,
                _CHILD,
                _REFERRER,
                _HOUSEHOLD,
                closed,
                None if is_open else "NFA",
                self.now,
                "{}",
            )
        )
        if is_open:
            self._open_clocks(case_id, referred)
        else:
            self._closed_clocks(case_id, referred)

    def _clock(self, case_id: int, name: str, started: datetime, due: date, status: str) -> int:
        self.counts.clocks += 1
        made = self.cases[-1]  # the case, made just before its clocks: they carry its team and ref
        team, ref = made[4], made[1]
        stopped = started + timedelta(days=3) if status in ("met", "met_late", "cancelled") else None
        paused = self.today - timedelta(days=2) if status == "paused" else None
        self.clocks.append(
            (
                self.counts.clocks,
                case_id,
                team,
                ref,
                1,
                name,
                1,
                started,
                started.date(),
                due,
                status,
                stopped,
                stopped.date() if stopped else None,
                paused,
                0,
                POLICY_VERSION,
                CALENDAR_VERSION,
                self.now,
            )
        )
        return self.counts.clocks

    def _letter(self, case_id: int, duty: str, role: str, status: str, created: datetime) -> None:
        self.counts.outbox += 1
        oid = self.counts.outbox
        payload: dict[str, Any] = {"episode": 1}
        if status == "held":
            payload["hold_reasons"] = ["domestic abuse: a worker reviews every letter"]
        error = "the address was not recognised" if status == "failed" else None
        sent = created + timedelta(minutes=5) if status == "sent" else None
        recipient = "p1" if role == "family" else role
        self.outbox.append(
            (
                oid,
                f"bench-{oid}",
                "letter",
                case_id,
                role,
                recipient,
                f"{role}@example.org",
                "email",
                status,
                False,
                1,
                created,
                sent,
                created,
                error,
                duty,
                f"ev-{oid}",
                payload["episode"],
                json.dumps(payload),
            )
        )

    def _loop(self, why: str) -> None:
        self.counts.loops[why] = self.counts.loops.get(why, 0) + 1

    def _open_clocks(self, case_id: int, referred: datetime) -> None:
        rng, today = self.rng, self.today
        due = today + timedelta(days=rng.randint(-30, 15))
        self._clock(case_id, "decision", referred, due, "breached" if due < today else "running")
        if rng.random() < 0.5:
            due = today + timedelta(days=rng.randint(-20, 30))
            status = "paused" if rng.random() < 0.05 else ("breached" if due < today else "running")
            self._clock(case_id, "assessment", referred, due, status)
        if rng.random() < 0.3:  # the referrer is still owed the acknowledgement
            due = today + timedelta(days=rng.randint(-10, 5))
            self._clock(
                case_id, "referrer_acknowledgement", referred, due, "breached" if due < today else "running"
            )
            kind = rng.random()
            if kind < 0.2:
                self._loop("by_hand")  # no letter: a professional told by phone
            else:
                status = (
                    "queued"
                    if kind < 0.5
                    else "held"
                    if kind < 0.8
                    else "failed"
                    if kind < 0.95
                    else "rejected"
                )
                self._letter(case_id, "referrer_acknowledgement", "referrer", status, referred)
                self._loop(status)
        else:
            self._clock(case_id, "referrer_acknowledgement", referred, today, "met")
            self._letter(case_id, "referrer_acknowledgement", "referrer", "sent", referred)

    def _closed_clocks(self, case_id: int, referred: datetime) -> None:
        rng = self.rng
        self._clock(case_id, "decision", referred, referred.date() + timedelta(days=1), "met")
        self._clock(case_id, "referrer_acknowledgement", referred, referred.date() + timedelta(days=3), "met")
        self._letter(case_id, "referrer_acknowledgement", "referrer", "sent", referred)
        self._clock(
            case_id,
            "family_decision",
            referred,
            referred.date() + timedelta(days=5),
            "cancelled" if rng.random() < 0.003 else "met",
        )
        if (
            self.clocks[-1][_CLOCK_COLUMNS.index("status")] == "cancelled"
        ):  # nobody in the household could be told
            self._loop("nobody")
            self.counts.history += 1
            detail = {"clock": "family_decision", "why": "no one can be told: nobody safe to contact"}
            self.history.append(
                (self.counts.history, case_id, 1, "clock.cancelled", referred, referred, json.dumps(detail))
            )
        else:
            self._letter(case_id, "family_decision", "family", "sent", referred)
        if rng.random() < 0.002:  # a letter that went, then came back: the worker's task is open
            self.outbox[-1] = (*self.outbox[-1][:8], "failed", *self.outbox[-1][9:])
            self._clock(
                case_id,
                "failed_letter",
                referred + timedelta(days=6),
                self.today - timedelta(days=3),
                "breached",
            )
            self._loop("failed_after")
