"""The sweep at scale: many clocks falling due at once, planned, claimed and delivered by workers.

What is counted, precisely: ``clocks`` clocks fall due today, each on a case allocated to one
of ``clocks / CASES_PER_WORKER`` social workers, so each clock calls for one *due* reminder item
(to its worker), and each worker's items fold into one digest: the *messages* sent are one per
worker. Figures (PostgreSQL, Redis, two worker processes of concurrency two, the file channel):

- planning: the day's reminders (chunked items and the digests), against one hand-written
  ``INSERT … SELECT`` of the same item rows (rolled back);
- delivery: from the first claim to the last digest ``sent``, dispatched as tasks by the sweeper
  and consumed by the workers, against one no-op Celery task per clock due on the same broker,
  consumed by the same two workers (target: no slower, ≤ 1.0x); and the cost of one digest
  against one no-op task, apart;
- sent twice: ``sent`` recorded more than once for a message, an item in two digests, or a file
  count that differs from the messages sent (target 0);
- peak RSS of a worker process (VmHWM, the pool's children included; target under 300 MB).

The workers use the real clock, so the benchmark's policy opens reminders on every day from
00:00 to 23:59 local time (a run across midnight is not measured).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import redis
import yaml
from sqlalchemy import func, insert, select, text

from benchmarks.celery_worker import NOOP_TASK
from benchmarks.harness import Bench, Figure, rate, timed
from config.celery import make_celery
from config.queues import DELIVERY_QUEUE, SWEEP_TASK
from config.settings import DEFAULT_POLICY_FILE, Settings
from config.wiring import build_runtime
from messaging.outbox import OutboxAudit, OutboxMessage
from migrations import upgrade
from services.actors import SYSTEM
from services.runtime import Runtime
from services.sweep import plan
from workflow.model import Case, ClockRow
from workflow.reminders import DIGEST_KIND
from workflow.staff import Staff
from workflow.timeutil import utc_now

CASES_PER_WORKER = 20  # a social worker's caseload: their digest lists this many deadlines
WORKERS_PER_TEAM = 10
TEAMS_PER_SERVICE = 10
WORKER_PROCESSES, CONCURRENCY = 2, 2
RSS_TARGET_MB = 300
BATCH = 10_000  # rows per bulk insert of the data


def run(bench: Bench) -> list[Figure]:
    if not (bench.postgres_url and bench.redis_url):
        return [Figure("sweep", "could not run", note="needs --postgres and --redis", met=False)]
    clocks = 3_000 if bench.quick else 100_000
    with bench.postgres_schema() as url:
        return measure(bench, url, clocks)


def measure(bench: Bench, url: str, clocks: int) -> list[Figure]:
    assert bench.redis_url is not None
    var = bench.folder / "sweep"
    var.mkdir(parents=True, exist_ok=True)
    policy = var / "policy.yaml"
    policy.write_text(yaml.safe_dump(_every_day(yaml.safe_load(DEFAULT_POLICY_FILE.read_text()))))
    env = {
        "CASELOOP_DATABASE_URL": url,
        "CASELOOP_BROKER_URL": bench.redis_url,
        "CASELOOP_VAR_DIR": str(var),
        "CASELOOP_POLICY_FILE": str(policy),
        "CASELOOP_DELIVERY_WORKERS": str(WORKER_PROCESSES),
        "CASELOOP_WORKER_CONCURRENCY": str(CONCURRENCY),
        # Planning a hundred thousand clocks on two busy cores may outlast the default limit.
        "CASELOOP_TASK_TIME_LIMIT": "900",
        "CASELOOP_SENDING_TIMEOUT": "1200",
    }
    upgrade(url)
    settings = Settings.model_validate({k.removeprefix("CASELOOP_").lower(): v for k, v in env.items()})
    rt = build_runtime(settings)
    broker = redis.Redis.from_url(bench.redis_url)
    broker.flushdb()  # the benchmark's own database number: a queue left by an earlier run goes
    workers: list[subprocess.Popen[bytes]] = []
    try:
        now = utc_now()
        people = _write_borough(rt, clocks, now)
        figures = [_plan(rt, now, clocks, people)]
        workers = [_start_worker(env, var / f"worker-{n}.log") for n in range(WORKER_PROCESSES)]
        for n, proc in enumerate(workers):
            _wait(partial(_ready, var / f"worker-{n}.log", proc), 120, f"worker {n} to start")
        app = make_celery(settings)
        messages = _count(rt, OutboxMessage.kind == DIGEST_KIND)
        # The baseline: one no-op task per clock due, the cost of the naive design that
        # queues a task per deadline. caseloop folds a person's deadlines into one digest, so it
        # sends fewer, heavier messages; the per-message figure below shows that cost apart.
        noop_seconds = _noop_baseline(app, broker, clocks)
        figures += _deliveries(rt, app, var, clocks, messages, noop_seconds)
        figures.append(_peak_rss(workers))
        return figures
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        rt.close()


def _every_day(policy: dict[str, Any]) -> dict[str, Any]:
    policy["reminders"]["days"] = "all"
    policy["reminders"]["office_hours"] = {"start": "00:00", "end": "23:59"}
    policy["version"] = f"{policy['version']}-bench"
    return policy


def _write_borough(rt: Runtime, clocks: int, now: datetime) -> int:
    """Staff, cases and clocks written straight into the tables in bulk. Returns the staff count."""
    today = rt.book.local_date(now)
    workers = math.ceil(clocks / CASES_PER_WORKER)
    teams = math.ceil(workers / WORKERS_PER_TEAM)
    staff: list[dict[str, Any]] = []
    for s in range(math.ceil(teams / TEAMS_PER_SERVICE)):
        staff.append(_person(f"SM{s}", "service_manager", f"T{s * TEAMS_PER_SERVICE}", None, now))
    for t in range(teams):
        staff.append(_person(f"TM{t}", "team_manager", f"T{t}", f"SM{t // TEAMS_PER_SERVICE}", now))
    for w in range(workers):
        team = w // WORKERS_PER_TEAM
        staff.append(_person(f"W{w}", "social_worker", f"T{team}", f"TM{team}", now))
    with rt.db.transaction() as session:
        session.execute(insert(Staff), staff)
    for start in range(0, clocks, BATCH):
        ids = range(start + 1, min(clocks, start + BATCH) + 1)
        cases = [_case(i, (i - 1) // CASES_PER_WORKER, now) for i in ids]
        rows = [_clock(rt, case, today, now) for case in cases]
        with rt.db.transaction() as session:
            session.execute(insert(Case), cases)
            session.execute(insert(ClockRow), rows)
    with rt.db.transaction() as session:
        for table in ("cases", "clocks"):
            session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {clocks})"))
        session.execute(text("ANALYZE"))
    return len(staff)


def _person(sid: str, role: str, team: str, manager: str | None, now: datetime) -> dict[str, Any]:
    return {
        "id": sid,
        "name": f"Staff {sid}",
        "email": f"{sid.lower()}@council.example",
        "role": role,
        "team": team,
        "manager_id": manager,
        "active": True,
        "left_on": None,
        "updated_at": now,
    }


def _case(i: int, worker: int, now: datetime) -> dict[str, Any]:
    return {
        "id": i,
        "ref": f"B{i:06d}",
        "state": "referral",
        "episode": 1,
        "team": f"T{worker // WORKERS_PER_TEAM}",
        "worker": f"W{worker}",
        "referral_at": now - timedelta(days=1),
        "referral_source": "1A",
        "decision": None,
        "assessment_started": False,
        "assessment_completed": False,
        "factors": [],
        "flags": [],
        "child": {"name": "Bench Child", "dob": "2016-05-01"},
        "referrer": {"name": "Bench Referrer"},
        "household": [],
        "updated_at": now,
        "fact_times": {},
    }


def _clock(rt: Runtime, case: dict[str, Any], today: Any, now: datetime) -> dict[str, Any]:
    return {
        "id": case["id"],
        "case_id": case["id"],
        "team": case["team"],  # the copies of the case's that the clocks carry
        "case_ref": case["ref"],
        "episode": 1,
        "name": "decision",
        "seq": 1,
        "started_at": now - timedelta(days=1),
        "counted_from": today - timedelta(days=1),
        "due_on": today,
        "status": "running",
        "paused_days": 0,
        # The runtime's versions: a clock under another would be recalculated first.
        "policy_version": rt.book.policy_version,
        "calendar_version": rt.book.calendar_version,
        "updated_at": now,
    }


_RAW_ITEMS = """
INSERT INTO reminder_items
    (clock_id, case_id, recipient, recipient_role, step, step_key, stage, for_date, created_at)
SELECT clocks.id, clocks.case_id, cases.worker, 'worker', 'due', 'due', 0, :today, :now
FROM clocks JOIN cases ON cases.id = clocks.case_id
WHERE clocks.status IN ('running', 'breached') AND clocks.due_on <= :today
"""


def _plan(rt: Runtime, now: datetime, clocks: int, people: int) -> Figure:
    today = rt.book.local_date(now)

    def raw() -> int:
        with rt.db.session() as session:
            done = session.execute(text(_RAW_ITEMS), {"today": today, "now": now}).rowcount  # type: ignore[attr-defined]
            session.rollback()
            return int(done)

    raw_seconds, raw_items = timed(raw)
    seconds, report = timed(lambda: plan(rt, SYSTEM, now))
    assert report is not None and report.planned, report
    assert report.items == raw_items == clocks, (report.items, raw_items, clocks)
    return Figure(
        f"sweep: plan {clocks:,} clocks due",
        f"{seconds:.2f} s ({rate(clocks, seconds)})",
        f"{raw_seconds:.2f} s raw INSERT…SELECT",
        seconds / raw_seconds,
        note=(
            f"{clocks:,} clocks → {report.items:,} reminder items → {report.digests:,} digests "
            f"({people:,} staff; chunks of {rt.settings.plan_chunk:,} clocks, each a transaction)"
        ),
    )


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    root = Path(__file__).resolve().parent.parent
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "benchmarks.celery_worker", str(CONCURRENCY)],
            cwd=root,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _ready(log: Path, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise RuntimeError(f"a worker exited at start-up ({proc.returncode}): see {log.name}")
    return " ready." in log.read_text(errors="replace")


def _wait(condition: Callable[[], bool], seconds: float, what: str, every: float = 0.02) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {seconds:.0f} s for {what}")
        time.sleep(every)


def _broker_idle(broker: redis.Redis) -> bool:
    """No delivery message waiting (any priority list of the queue) and none taken but unacked."""
    waiting = sum(int(broker.llen(key)) for key in broker.scan_iter(f"{DELIVERY_QUEUE}*"))
    return waiting == 0 and int(broker.hlen("unacked")) == 0


def _noop_baseline(app: Any, broker: redis.Redis, messages: int) -> float:
    """``messages`` no-op tasks published on the delivery queue and consumed by the same workers."""

    def publish_and_drain() -> None:
        with app.producer_or_acquire() as producer:
            for _ in range(messages):
                app.send_task(NOOP_TASK, queue=DELIVERY_QUEUE, routing_key=DELIVERY_QUEUE, producer=producer)
        _wait(lambda: _broker_idle(broker), 600, f"{messages} no-op tasks to be consumed", every=0.005)

    seconds, _ = timed(publish_and_drain)
    return seconds


def _count(rt: Runtime, *where: Any) -> int:
    with rt.db.reading() as session:
        return int(session.scalar(select(func.count()).select_from(OutboxMessage).where(*where)) or 0)


def _deliveries(
    rt: Runtime, app: Any, var: Path, clocks: int, messages: int, noop_seconds: float
) -> list[Figure]:
    """The sweeper claims (the benchmark plays the beat, every few seconds) and the workers
    deliver; timed from the first sweep queued to the last digest recorded ``sent``."""
    digest = OutboxMessage.kind == DIGEST_KIND
    last_sweep = 0.0

    def all_sent() -> bool:
        nonlocal last_sweep
        if time.monotonic() - last_sweep > 5:  # the beat: a pass claims what the refills left
            app.send_task(SWEEP_TASK)
            last_sweep = time.monotonic()
        unsendable = _count(rt, digest, OutboxMessage.status.in_(["failed", "held", "unknown"]))
        if unsendable:
            raise RuntimeError(f"{unsendable} digests could not be sent: see the worker logs")
        return _count(rt, digest, OutboxMessage.status == "sent") == messages

    seconds, _ = timed(lambda: _wait(all_sent, 1800, f"{messages} digests to be sent", every=0.05))
    ratio = seconds / noop_seconds
    per_message = (seconds / messages) / (noop_seconds / clocks)
    twice, why = _sent_twice(rt, var / "outbox", messages)
    return [
        Figure(
            f"sweep: {clocks:,} clocks due to reminders sent, 2 workers",
            f"{seconds:.2f} s",
            f"{noop_seconds:.2f} s for {clocks:,} no-op tasks",
            ratio,
            "≤ 1.0x",
            ratio <= 1.0,
            note=f"claim to sent through the file channel: {clocks:,} deadlines in {messages:,} digests "
            "(one per social worker); the baseline is a no-op Celery task per clock on the same broker "
            "and workers",
        ),
        Figure(
            "sweep: one digest delivered vs one no-op task",
            f"{1000 * seconds / messages:.1f} ms",
            f"{1000 * noop_seconds / clocks:.1f} ms",
            per_message,
            note="the cost per message: rendering, the send-once steps and the file write",
        ),
        Figure("sweep: sent twice", str(twice), target="0", met=twice == 0, note=why),
    ]


def _sent_twice(rt: Runtime, outbox: Path, messages: int) -> tuple[int, str]:
    with rt.db.reading() as session:
        sent = session.execute(
            select(OutboxAudit.outbox_id, func.count())
            .where(OutboxAudit.action == "sent")
            .group_by(OutboxAudit.outbox_id)
        ).all()
        payloads = session.scalars(
            select(OutboxMessage.payload).where(OutboxMessage.kind == DIGEST_KIND)
        ).all()
    recorded_twice = sum(n - 1 for _, n in sent)
    listed = [item for p in payloads for item in p["items"]]
    in_two_digests = len(listed) - len(set(listed))
    files = len(list(outbox.glob("*.eml")))
    twice = recorded_twice + in_two_digests + abs(files - messages)
    why = (
        f"{len(sent):,} messages recorded sent ({recorded_twice} twice), {files:,} .eml files, "
        f"{len(listed):,} reminder items listed ({in_two_digests} in two digests)"
    )
    return twice, why


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a prefork worker does its work in its pool's children)."""
    found = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in children:
        found += _tree(int(child))
    return found


def _hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _peak_rss(workers: list[subprocess.Popen[bytes]]) -> Figure:
    peaks = {pid: _hwm_mb(pid) for proc in workers for pid in _tree(proc.pid)}
    peak = max(peaks.values(), default=0.0)
    return Figure(
        "sweep: peak RSS of a worker process",
        f"{peak:.0f} MB",
        target=f"< {RSS_TARGET_MB} MB",
        met=0 < peak < RSS_TARGET_MB,
        note=f"VmHWM of {len(peaks)} processes (2 workers and their pool children)",
    )
