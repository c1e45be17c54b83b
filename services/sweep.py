"""The time-driven pass, run by the beat's sweeper every minute and by ``caseloop tick``.

Each step is its own short unit of work, and none calls the network:

1. recalculate clocks computed under an older policy or calendar, and mark breaches;
2. plan the day's reminders once, at the first pass within office hours on a working day;
3. settle messages whose worker died while sending (requeued, or ``unknown`` to be confirmed);
4. claim the messages now due, as many as the workers can take (see :class:`Dispatch`);
5. claim the sent messages whose delivery status is worth asking a provider about.

What needs the network (delivering, confirming, reading statuses) is handed back as ids: the
sweeper task queues one task for each, and ``tick`` runs them in its own process afterwards. The
pass is safe to run twice at once: planning is idempotent (unique keys, and the day's marker
written last with the digests), and on PostgreSQL a second pass skips it while an advisory lock
is held; claims lock rows with SKIP LOCKED; and every row created has a unique key besides.
Nothing here calls a channel: the sweep only claims, and returns ids.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text

from messaging import reconcile, status_reads
from messaging.claims import claim_due
from messaging.relay import DeliveryOutcome
from services.actors import Actor
from services.authorisation import Action, authorise
from services.runtime import Runtime
from workflow import clocks, heartbeats
from workflow.db import Database, commit_without_waiting
from workflow.reminders import PlanReport, in_office_hours, plan_day

log = logging.getLogger(__name__)

_LOCK_KEY = 7_316_001  # any fixed number: the planning step's advisory lock on PostgreSQL
# One lock per schema, so deployments (or test runs) sharing a database do not skip each other.
_LOCKED = ":k, hashtext(current_schema())"
STATUS_READ_BATCH = 50  # messages asked about per status-reading task


@dataclass
class SweepReport:
    recalculated: int = 0
    breached: int = 0
    plan: PlanReport | None = None
    reconciled: dict[str, int] = field(default_factory=dict)
    to_deliver: list[int] = field(default_factory=list)
    to_confirm: list[int] = field(default_factory=list)
    to_read: list[int] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    skipped: bool = False  # another pass was planning the day's reminders

    def summary(self) -> str:
        plan = self.plan
        planned = f"{plan.items} reminders in {plan.digests} digests" if plan and plan.planned else "none"
        if plan and plan.unrouted:
            planned += f" ({plan.unrouted} deadlines reach no one: set reminders.fallback_manager)"
        return (
            f"recalculated {self.recalculated}, newly breached {self.breached}, "
            f"reminders planned: {planned}, stale sends settled {sum(self.reconciled.values())}, "
            f"messages to deliver {len(self.to_deliver)}"
        )


@contextmanager
def _planning_lock(db: Database) -> Iterator[bool]:
    """Whether this pass may plan the day: on PostgreSQL a session advisory lock, held on a
    connection of its own across the planning's many short transactions (and let go with that
    connection if the process dies). Only an economy: planning is idempotent by its keys and the
    day's marker, so on SQLite, where chunks are serialised by the write lock, none is taken."""
    if db.dialect != "postgresql":
        yield True
        return
    # Autocommit: the lock is the session's, so this connection need not sit in a transaction.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        held = bool(conn.execute(text(f"SELECT pg_try_advisory_lock({_LOCKED})"), {"k": _LOCK_KEY}).scalar())
        try:
            yield held
        finally:
            if held:
                conn.execute(text(f"SELECT pg_advisory_unlock({_LOCKED})"), {"k": _LOCK_KEY})


def plan(rt: Runtime, actor: Actor, now: datetime) -> PlanReport | None:
    """Plan the day's reminders (chunked, each chunk its own transaction); None when another
    pass is planning them right now."""
    authorise(actor, Action.RUN_SWEEP)
    with _planning_lock(rt.db) as held:
        if not held:
            return None
        report = plan_day(rt.db, rt.book, now, rt.staff_channel, chunk=rt.settings.plan_chunk)
    if report.unrouted:
        # Counts only: which cases is for the overdue queue, not a log line.
        log.warning("%d deadlines reach no one: set reminders.fallback_manager", report.unrouted)
    return report


@dataclass(frozen=True)
class ClockReport:
    recalculated: int
    breached: int


def update_clocks(rt: Runtime, actor: Actor, now: datetime) -> ClockReport:
    """Recalculate clocks computed under an older policy or calendar, then mark breaches."""
    authorise(actor, Action.RUN_SWEEP)
    with rt.writing() as uow:
        moved = clocks.recalculate(uow.session, rt.book, now)
        breached = clocks.mark_breaches(uow.session, rt.book, now)
        uow.commit()
    return ClockReport(moved, breached)


@dataclass(frozen=True)
class Dispatch:
    """Where a pass's claims go, and so how many it may make and which it may make again.

    ``capacity``: messages that may be dispatched and not yet started at once. A row still queued
    with ``dispatched_at`` at or before ``redispatch_before`` is claimed again (its message was
    lost); ``None`` claims only rows never dispatched.
    """

    capacity: int
    redispatch_before: datetime | None


def in_process(rt: Runtime, now: datetime) -> Dispatch:
    """``tick``: this process delivers what it claims before it ends, so a row dispatched long
    ago and still queued was claimed by a pass that died: claim it again."""
    return Dispatch(rt.settings.claim_batch, now - rt.timings.redispatch_after)


def to_broker(rt: Runtime, now: datetime, waiting: int | None) -> Dispatch:
    """The beat's sweeper: claims sized to the workers, less what is outstanding.

    ``waiting`` is the broker's count of delivery messages no worker has taken (``None``: it could
    not be read). An outstanding row's message may still be among them, so it is dispatched
    again only when none are waiting and it has been outstanding ``redispatch_after``: then its
    message was lost (the embedded broker on a crash, Redis restarted empty) or is in a worker's
    hands, and a second one is at worst skipped. Never re-dispatching while messages wait is
    what keeps a backlog from growing a message per row per interval.
    """
    lost = now - rt.timings.redispatch_after if waiting == 0 else None
    return Dispatch(rt.settings.delivery_capacity, lost)


def sweep(rt: Runtime, actor: Actor, now: datetime, dispatch: Dispatch | None = None) -> SweepReport:
    """One pass: each step in its own short transaction. Returns the ids of the work to hand out
    (claimed for delivery in this process unless ``dispatch`` says otherwise)."""
    authorise(actor, Action.RUN_SWEEP)
    started = time.monotonic()
    dispatch = dispatch or in_process(rt, now)
    ticked = update_clocks(rt, actor, now)
    report = SweepReport(recalculated=ticked.recalculated, breached=ticked.breached)
    report.plan = plan(rt, actor, now)
    report.skipped = report.plan is None
    with rt.writing() as uow:
        settled = reconcile.settle_stale(
            uow.session, now, rt.timings.sending_timeout, rt.settings.max_attempts
        )
        uow.commit()
    report.to_confirm = settled.unknown
    report.reconciled = {"requeued": settled.requeued, "unknown": len(settled.unknown)}
    if settled.failed:
        report.reconciled["failed"] = settled.failed
    with rt.writing() as uow:
        report.to_deliver = claim_due(
            uow.session,
            now,
            in_office_hours(rt.book, now),
            capacity=dispatch.capacity,
            redispatch_before=dispatch.redispatch_before,
        )
        uow.commit()
    with rt.writing() as uow:
        report.to_read = status_reads.claim_status_reads(uow.session, rt.channels, now)
        uow.commit()
    with rt.writing() as uow:
        # Readiness and metrics read this: a beat that stopped shows as a sweep growing old.
        heartbeats.beat(uow.session, heartbeats.SWEEP, rt.clock(), time.monotonic() - started)
        uow.commit()
    return report


def confirm(rt: Runtime, actor: Actor, outbox_ids: list[int], now: datetime) -> dict[str, int]:
    """Ask channels about ``unknown`` messages left by dead workers (a task of its own)."""
    authorise(actor, Action.RUN_SWEEP)
    outcomes = Counter(reconcile.confirm_unknown(rt.db, rt.channels, i, now) for i in outbox_ids)
    return dict(outcomes)


def read_statuses(rt: Runtime, actor: Actor, outbox_ids: list[int], now: datetime) -> dict[str, int]:
    """Ask providers how sent messages fared (a task of its own: a provider may be slow)."""
    authorise(actor, Action.RUN_SWEEP)
    return status_reads.read_statuses(rt.db, rt.channels, outbox_ids, now)


def deliver(rt: Runtime, actor: Actor, outbox_id: int) -> DeliveryOutcome:
    """Deliver one message if it is still queued (the task behind every claim)."""
    authorise(actor, Action.RUN_SWEEP)
    return rt.deliverer().deliver(outbox_id)


def refill(rt: Runtime, actor: Actor, now: datetime) -> list[int]:
    """After a delivery: claim what the broker has room for again, so the workers' pace and not
    the sweep interval sets how fast a backlog drains. Only rows never dispatched: deciding
    that a message was lost is the sweep's, which asks the broker."""
    authorise(actor, Action.RUN_SWEEP)
    with rt.writing() as uow:
        # A claim lost with the database (not with this worker) is made again by a later one,
        # and a message dispatched twice is delivered once: it need not wait for the disk.
        commit_without_waiting(uow.session)
        claimed = claim_due(
            uow.session,
            now,
            in_office_hours(rt.book, now),
            capacity=rt.settings.delivery_capacity,
            redispatch_before=None,
        )
        uow.commit()
    return claimed


def follow_up(rt: Runtime, actor: Actor, report: SweepReport, now: datetime) -> None:
    """Run a pass's confirmations and status reads in this process (``tick``, tests)."""
    confirmed = confirm(rt, actor, report.to_confirm, now)
    # What the pass marked unknown and the channel then settled is counted as settled.
    report.reconciled["requeued"] += confirmed.get("requeued", 0)
    report.reconciled["confirmed"] = confirmed.get("confirmed", 0)
    report.reconciled["unknown"] -= confirmed.get("requeued", 0) + confirmed.get("confirmed", 0)
    report.statuses = read_statuses(rt, actor, report.to_read, now) if report.to_read else {}


@dataclass
class TickReport:
    sweep: SweepReport
    outcomes: Counter[str]


def tick(rt: Runtime, actor: Actor, now: datetime) -> TickReport:
    """The whole pass in this process: sweep, confirm, read statuses, then deliver what was
    claimed. One message that cannot go never stops the others.

    ``caseloop tick`` is what a council runs with no worker ("sending what is due"), so it keeps
    delivering here rather than queueing tasks no one would take. It does so only after the pass
    has committed its claims, through the very :meth:`Deliverer.deliver` a worker's task calls
    (a short transaction to start, the channel, a short one to record), so the sweep's own steps
    still never call a channel and a tick costs what the same deliveries cost in a worker."""
    report = sweep(rt, actor, now)
    follow_up(rt, actor, report, now)
    outcomes: Counter[str] = Counter()
    for outbox_id in report.to_deliver:
        try:
            outcomes[str(deliver(rt, actor, outbox_id))] += 1
        except Exception as exc:  # recorded on the row by the relay where it could be
            # The type only: an exception's text can quote an address or a name.
            log.error("outbox %s: delivery raised %s", outbox_id, type(exc).__name__)
            outcomes["error"] += 1
    return TickReport(report, outcomes)
