"""The time-driven pass, run by ``caseloop tick`` and by the beat's sweeper every minute.

1. recalculate clocks computed under an older policy or calendar, and mark breaches;
2. plan the day's reminders once, at the first pass within office hours on a working day;
3. settle messages whose worker died while sending;
4. claim the messages now due and hand back their ids to deliver;
5. ask providers that keep delivery statuses (Notify) how recent messages fared.

Deadlines live in the database; the pass is the only thing that turns time into work, and it is
safe to run twice at once: PostgreSQL passes take an advisory lock (a second pass skips), SQLite
passes are serialised by their write lock, and every row created has a unique key besides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from letters.channels import Channel
from letters.delivery import FailedHook, SentHook, reconcile_stale
from letters.status_sync import sync_statuses
from workflow.clocks import Rulebook
from workflow.db import Database
from workflow.outbox import claim_due
from workflow.reminders import PlanReport, in_office_hours, plan_day
from workflow.tick import run_tick

_LOCK_KEY = 7_316_001  # any fixed number: the sweep's advisory lock on PostgreSQL (with the schema)


@dataclass(frozen=True)
class SweepTimings:
    sending_timeout: timedelta
    redispatch_after: timedelta


@dataclass
class SweepReport:
    recalculated: int = 0
    breached: int = 0
    plan: PlanReport | None = None
    reconciled: dict[str, int] = field(default_factory=dict)
    to_deliver: list[int] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    skipped: bool = False

    def summary(self) -> str:
        plan = self.plan
        planned = f"{plan.items} reminders in {plan.digests} digests" if plan and plan.planned else "none"
        return (
            f"recalculated {self.recalculated}, newly breached {self.breached}, "
            f"reminders planned: {planned}, stale sends settled {sum(self.reconciled.values())}, "
            f"messages to deliver {len(self.to_deliver)}"
        )


def _take_lock(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True  # SQLite: this transaction began IMMEDIATE and already holds the write lock
    # One lock per schema, so deployments (or test runs) sharing a database do not skip each other.
    query = text("SELECT pg_try_advisory_xact_lock(:k, hashtext(current_schema()))")
    return bool(session.execute(query, {"k": _LOCK_KEY}).scalar())


def run_sweep(
    db: Database,
    book: Rulebook,
    channels: Mapping[str, Channel],
    staff_channel: str,
    timings: SweepTimings,
    now: datetime,
    on_sent: SentHook | None = None,
    on_failed: FailedHook | None = None,
) -> SweepReport:
    ticked = run_tick(db, book, now)
    report = SweepReport(recalculated=ticked.recalculated, breached=ticked.breached)
    with db.transaction() as session:
        if not _take_lock(session):
            report.skipped = True
            return report
        report.plan = plan_day(session, book, now, staff_channel)
        report.reconciled = reconcile_stale(session, channels, now, timings.sending_timeout, on_sent)
        report.to_deliver = claim_due(session, now, timings.redispatch_after, in_office_hours(book, now))
        report.statuses = sync_statuses(session, channels, now, on_failed)
    return report
