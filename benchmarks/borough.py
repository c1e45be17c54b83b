"""A demo-sized borough end to end: the import, one Monday sweep and the overdue queue.

Targets (2 cores): importing the events a council receives in a week takes well under a minute
(a busy week of about 2,000 events in under 15 seconds: at least 134 events a second); one sweep
pass over the borough (recalculation, breaches, planning a working day's digests, claiming)
takes under 5 seconds; the overdue queue answers in under a second. The figures are printed, not
asserted: speed is tracked here, not in timed tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import Bench, Figure
from config.settings import Settings
from config.wiring import build_runtime
from migrations import upgrade
from services import intake, queries
from services.actors import SYSTEM
from services.people import import_staff
from services.sweep import sweep as run_sweep
from workflow.demo import Borough, staff_csv

NOW = datetime.fromisoformat("2026-11-27T17:00:00+00:00")  # a Friday: the borough's history ends here
MONDAY_MORNING = datetime.fromisoformat("2026-11-30T08:05:00+00:00")
TARGETS = {"import": 2000 / 15, "sweep": 5.0, "overdue": 1.0}


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def measure(url: str, weeks: int, per_week: int, var: Path) -> list[tuple[str, str, str, bool]]:
    upgrade(url)
    settings = Settings(database_url=url, var_dir=var)
    rt = build_runtime(settings)
    borough = Borough(
        seed=2026, weeks=weeks, per_week=per_week, zone=settings.zone, calendar=rt.book.calendar
    )
    events = [json.dumps(e) for e in borough.events(NOW)]
    import_staff(rt, SYSTEM, staff_csv().splitlines(), NOW)

    seconds, report = _timed(lambda: intake.import_events(rt, SYSTEM, events, "bench", NOW))
    rate = report.accepted / seconds
    rows = [
        (
            "import",
            f"{report.accepted} events in {seconds:.1f} s",
            f"{rate:.0f} events/s (≥ 134)",
            rate >= TARGETS["import"],
        )
    ]

    seconds, sweep = _timed(lambda: run_sweep(rt, SYSTEM, MONDAY_MORNING))
    plan = sweep.plan
    rows.append(
        (
            "sweep (Monday 08:05)",
            f"{sweep.breached} breaches, {plan.items if plan else 0} reminders, "
            f"{len(sweep.to_deliver)} messages claimed",
            f"{seconds:.2f} s (< 5 s)",
            seconds < TARGETS["sweep"],
        )
    )

    def overdue() -> int:
        return len(queries.overdue(rt, SYSTEM, now=MONDAY_MORNING))

    seconds, count = _timed(overdue)
    rows.append(("overdue queue", f"{count} rows", f"{seconds:.2f} s (< 1 s)", seconds < TARGETS["overdue"]))
    rt.close()
    return rows


def run(bench: Bench) -> list[Figure]:
    weeks = 2 if bench.quick else 8
    figures: list[Figure] = []
    targets: dict[str, Callable[[], AbstractContextManager[str]]] = {
        "SQLite": lambda: nullcontext(bench.sqlite_url("borough"))
    }
    if bench.postgres_url:
        targets["PostgreSQL"] = bench.postgres_schema
    for name, database in targets.items():
        with database() as url:
            for what, amount, figure, ok in measure(url, weeks, 350, bench.folder / f"borough-{name}"):
                value, _, target = figure.partition(" (")
                figures.append(
                    Figure(f"borough {what}, {name}", value, target=target.rstrip(")"), met=ok, note=amount)
                )
    return figures
