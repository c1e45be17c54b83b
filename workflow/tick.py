"""One pass of the time-driven work: recalculate stale clocks, then mark breaches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from workflow import clocks
from workflow.clocks import Rulebook
from workflow.db import Database


@dataclass(frozen=True)
class TickReport:
    recalculated: int
    breached: int


def run_tick(db: Database, book: Rulebook, now: datetime) -> TickReport:
    with db.transaction() as session:
        moved = clocks.recalculate(session, book, now)
        breached = clocks.mark_breaches(session, book, now)
    return TickReport(recalculated=moved, breached=breached)
