"""What operators ask of a running caseloop: is it ready (and if not, why), and its numbers.

Everything is read from the database and the broker at the moment of asking, so every web
process answers the same, whichever of them is asked: no process keeps counts of its own.

Readiness looks at progress, not only at liveness: workers have been seen to stay up and stop
consuming after a Redis reconnect. So besides the database and the broker it checks that a sweep
finished recently and that, while messages handed to the broker wait for a worker, deliveries are
still being started.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import redis
from sqlalchemy import func, select

from config.queues import QUEUES
from messaging.outbox import OutboxMessage, Status
from services.runtime import Runtime
from workflow import heartbeats
from workflow.clocks import ClockStatus
from workflow.model import Case, ClockRow

BROKER_TIMEOUT = 2.0  # seconds: a readiness probe must answer quicker than its caller gives up


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: dict[str, object] = field(default_factory=dict)
    problem: str | None = None  # what is wrong, in words an operator can act on

    def as_dict(self) -> dict[str, object]:
        found: dict[str, object] = {"ok": self.ok, **self.detail}
        if self.problem:
            found["problem"] = self.problem
        return found


@dataclass(frozen=True)
class Readiness:
    checks: list[Check]

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failing(self) -> list[str]:
        return [c.name for c in self.checks if not c.ok]

    def as_dict(self) -> dict[str, object]:
        return {
            "status": "ready" if self.ready else "not ready",
            "failing": self.failing,
            "checks": {c.name: c.as_dict() for c in self.checks},
        }


def sweep_max_age(rt: Runtime) -> timedelta:
    """How old the last sweep may be: three beats missed (at least three minutes)."""
    return timedelta(seconds=max(3 * rt.settings.sweep_interval_seconds, 180.0))


def stall_after(rt: Runtime) -> timedelta:
    """How long messages may wait in the broker with no delivery starting before the workers
    count as stalled: as long as a lost message waits before it is dispatched again."""
    return timedelta(seconds=max(float(rt.settings.redispatch_after), 3 * rt.settings.sweep_interval_seconds))


@dataclass(frozen=True)
class Progress:
    """The outbox and sweep figures behind both readiness and metrics."""

    sweep_finished_at: datetime | None
    sweep_duration_seconds: float | None
    waiting: int  # handed to the broker, not yet started by a worker
    oldest_waiting_since: datetime | None
    last_attempt_at: datetime | None
    last_sent_at: datetime | None


def _age(now: datetime, at: datetime | None) -> float | None:
    return None if at is None else round(max((now - at).total_seconds(), 0.0), 3)


def progress(rt: Runtime) -> Progress:
    with rt.reading() as uow:
        session = uow.session
        sweep = heartbeats.last(session, heartbeats.SWEEP)
        waiting, oldest = session.execute(
            select(func.count(), func.min(OutboxMessage.dispatched_at)).where(
                OutboxMessage.status == Status.QUEUED.value, OutboxMessage.dispatched_at.is_not(None)
            )
        ).one()
        last_attempt = session.scalar(select(func.max(OutboxMessage.sending_started_at)))
        last_sent = session.scalar(select(func.max(OutboxMessage.sent_at)))
        return Progress(
            sweep_finished_at=sweep.finished_at if sweep else None,
            sweep_duration_seconds=sweep.duration_seconds if sweep else None,
            waiting=int(waiting or 0),
            oldest_waiting_since=_aware(oldest),
            last_attempt_at=_aware(last_attempt),
            last_sent_at=_aware(last_sent),
        )


def _aware(value: datetime | None) -> datetime | None:
    """Aggregates bypass the column type, so SQLite hands back naive UTC (or even text)."""
    from datetime import UTC

    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _database(rt: Runtime) -> tuple[Check, Progress | None]:
    try:
        found = progress(rt)
    except Exception as exc:  # any failure to read means not ready; the type says enough
        return Check("database", False, problem=f"the database cannot be read ({type(exc).__name__})"), None
    return Check("database", True, {"dialect": rt.db.dialect}), found


def _broker(rt: Runtime) -> Check:
    url = rt.settings.broker_url
    if url and url.startswith(("redis://", "rediss://", "unix://")):
        try:
            client = redis.Redis.from_url(
                url, socket_timeout=BROKER_TIMEOUT, socket_connect_timeout=BROKER_TIMEOUT
            )
            try:
                client.ping()
            finally:
                client.close()
        except redis.RedisError as exc:
            return Check("broker", False, {"kind": "redis"}, f"Redis does not answer ({type(exc).__name__})")
        return Check("broker", True, {"kind": "redis"})
    if url:
        return Check("broker", True, {"kind": url.split(":", 1)[0], "checked": False})
    folder = rt.settings.broker_dir / "queue"
    if not folder.is_dir():
        problem = "the embedded broker's folder does not exist: has a worker or the beat started?"
        return Check("broker", False, {"kind": "filesystem"}, problem)
    if not _writable(folder):
        return Check(
            "broker", False, {"kind": "filesystem"}, "the embedded broker's folder cannot be written"
        )
    return Check("broker", True, {"kind": "filesystem"})


def _writable(folder: Path) -> bool:
    """Whether a file can be made in ``folder`` (a real write: permissions alone can mislead)."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".ready-", suffix=".probe")
        os.close(fd)
        os.unlink(name)
    except OSError:
        return False
    return True


def _sweep(rt: Runtime, now: datetime, found: Progress) -> Check:
    limit = sweep_max_age(rt)
    age = _age(now, found.sweep_finished_at)
    detail: dict[str, object] = {"age_seconds": age, "max_age_seconds": limit.total_seconds()}
    if age is None:
        return Check("sweep", False, detail, "no sweep has finished yet: is the beat running?")
    if age > limit.total_seconds():
        return Check("sweep", False, detail, f"the last sweep finished {age:.0f} s ago: is the beat running?")
    return Check("sweep", True, detail)


def _delivery(rt: Runtime, now: datetime, found: Progress) -> Check:
    limit = stall_after(rt).total_seconds()
    waited = _age(now, found.oldest_waiting_since)
    since_attempt = _age(now, found.last_attempt_at)
    detail: dict[str, object] = {
        "waiting": found.waiting,
        "oldest_waiting_seconds": waited,
        "last_attempt_age_seconds": since_attempt,
        "last_sent_age_seconds": _age(now, found.last_sent_at),
        "stalled_after_seconds": limit,
    }
    stalled = (
        found.waiting > 0
        and waited is not None
        and waited > limit
        and (since_attempt is None or since_attempt > limit)
    )
    if stalled:
        problem = (
            f"{found.waiting} messages have waited up to {waited:.0f} s for a worker and no delivery "
            "has started meanwhile: are the workers consuming?"
        )
        return Check("delivery", False, detail, problem)
    return Check("delivery", True, detail)


def readiness(rt: Runtime) -> Readiness:
    """Each check's result; any failing makes caseloop not ready."""
    now = rt.clock()
    database, found = _database(rt)
    checks = [database, _broker(rt)]
    if found is not None:
        checks += [_sweep(rt, now, found), _delivery(rt, now, found)]
    return Readiness(checks)


@dataclass(frozen=True)
class Readings:
    """The business numbers for ``/metrics``: counts only, labelled by status, channel, clock
    name and team (never anything about a person)."""

    messages: dict[tuple[str, str], int]  # (status, channel)
    clocks: dict[tuple[str, str], int]  # (name, status)
    overdue: dict[str, int]  # team
    queues: dict[str, int]  # broker queue: messages waiting
    progress: Progress
    now: datetime


def readings(rt: Runtime) -> Readings:
    now = rt.clock()
    today = rt.book.local_date(now)
    with rt.reading() as uow:
        session = uow.session
        messages = session.execute(
            select(OutboxMessage.status, OutboxMessage.channel, func.count()).group_by(
                OutboxMessage.status, OutboxMessage.channel
            )
        ).all()
        clocks = session.execute(
            select(ClockRow.name, ClockRow.status, func.count()).group_by(ClockRow.name, ClockRow.status)
        ).all()
        overdue = session.execute(
            select(Case.team, func.count())
            .select_from(ClockRow)
            .join(Case, Case.id == ClockRow.case_id)
            .where(
                ClockRow.status.in_([ClockStatus.RUNNING.value, ClockStatus.BREACHED.value]),
                ClockRow.due_on < today,
            )
            .group_by(Case.team)
        ).all()
    return Readings(
        messages={(str(s), str(c)): int(n) for s, c, n in messages},
        clocks={(str(name), str(s)): int(n) for name, s, n in clocks},
        overdue={str(team): int(n) for team, n in overdue},
        queues=queue_depths(rt),
        progress=progress(rt),
        now=now,
    )


def queue_depths(rt: Runtime) -> dict[str, int]:
    """Messages waiting in each caseloop queue; empty when the broker cannot say."""
    url = rt.settings.broker_url
    if url and url.startswith(("redis://", "rediss://", "unix://")):
        try:
            client = redis.Redis.from_url(
                url, socket_timeout=BROKER_TIMEOUT, socket_connect_timeout=BROKER_TIMEOUT
            )
            try:
                # The Redis transport keeps each queue as a list named after it.
                return {queue: int(client.llen(queue)) for queue in QUEUES}
            finally:
                client.close()
        except redis.RedisError:
            return {}
    if url:
        return {}
    folder = rt.settings.broker_dir / "queue"
    try:
        # The filesystem transport writes one "<time>_<id>.<queue>.msg" file per message.
        names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    except OSError:
        return {}
    return {queue: sum(1 for n in names if n.endswith(f".{queue}.msg")) for queue in QUEUES}
