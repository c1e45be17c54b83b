"""A backlog several sweeps long never piles up in the broker, on Redis and on the embedded broker.

Twenty-two digests are due at once (twenty social workers with an overdue case each, and their
team and service managers), the SMTP server takes 0.4 s over each, and one worker slot sends them:
about ten seconds of sending against a sweep every second and a re-dispatch after three. While
it drains, a sampler reads the broker's delivery queue every 20 ms (the Redis lists, or the
embedded broker's message files) and counts the messages for each outbox row. There must never
be two for one row, never more than the workers' capacity in all, and every digest must arrive
exactly once.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from config.queues import DELIVERY_QUEUE
from tests.e2e.engine import Engine, Member, front_door_staff, overdue_referral
from tests.e2e.services import RedisServer, SmtpSink

pytestmark = pytest.mark.slow

WORKERS = 20
CAPACITY = 2  # one worker process, one slot, two messages waiting for it
BACKLOG_SETTINGS = {
    "CASELOOP_WORKER_CONCURRENCY": "1",
    "CASELOOP_DISPATCH_PER_SLOT": str(CAPACITY),
    "CASELOOP_REDISPATCH_AFTER": "3",
    "CASELOOP_SWEEP_INTERVAL_SECONDS": "1",
}


def _staff() -> list[Member]:
    managers = [m for m in front_door_staff() if m.role != "social_worker"]
    workers = [
        Member(f"sw{n}", f"Worker {n}", f"sw{n}@council.example", "social_worker", "front-door", "tm1")
        for n in range(1, WORKERS + 1)
    ]
    return managers + workers


def _backlog(engine: Engine) -> None:
    events = [e for n in range(1, WORKERS + 1) for e in overdue_referral(f"C{n}", f"sw{n}")]
    engine.prepare(events, staff=_staff())


def _outbox_id(raw: bytes | str) -> int:
    message = json.loads(raw)
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    return int(args[0])


class Sampler:
    """Reads the delivery queue again and again in a thread, keeping the worst it saw."""

    def __init__(self, read: Callable[[], list[int]]) -> None:
        self.read = read
        self.most_per_row = 0
        self.most_in_all = 0
        self.samples = 0
        self.worst: Counter[int] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            ids = Counter(self.read())
            self.samples += 1
            self.most_in_all = max(self.most_in_all, sum(ids.values()))
            if ids and max(ids.values()) > self.most_per_row:
                self.most_per_row, self.worst = max(ids.values()), ids
            self._stop.wait(0.02)

    @contextmanager
    def running(self) -> Iterator[Sampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=10)


def _slow_sink(sink: SmtpSink) -> None:
    sink.after_dot.arm(count=10_000, seconds=0.4)  # each message stored, its 250 0.4 s late


def _drain(engine: Engine, sink: SmtpSink, sampler: Sampler) -> None:
    with sampler.running():
        engine.wait_for_statuses({m.id: "sent" for m in _staff()}, sink=sink, timeout=120)
    assert sampler.samples > 50, "the sampler hardly ran"
    assert sampler.most_per_row <= 1, f"two broker messages for one row: {sampler.worst}"
    assert sampler.most_in_all <= CAPACITY, f"{sampler.most_in_all} waiting, capacity {CAPACITY}"
    assert sink.recipients() == Counter({f"{m.id}@council.example": 1 for m in _staff()})
    assert all(r["attempts"] == 1 for r in engine.outbox())


@pytest.mark.redis
@pytest.mark.postgres
def test_a_backlog_on_redis_holds_at_most_one_message_per_row(
    postgres_schema_url: str,
    private_redis: RedisServer,
    smtp_sink: SmtpSink,
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine(
        postgres_schema_url,
        broker_url=private_redis.url(0),
        smtp_url=smtp_sink.url,
        settings=BACKLOG_SETTINGS,
    )
    _backlog(engine)
    _slow_sink(smtp_sink)
    client = redis.Redis(port=private_redis.port)

    def queued_ids() -> list[int]:
        # The delivery queue's lists (kombu adds one per priority step), read in one round trip.
        keys = [k for k in client.keys(f"{DELIVERY_QUEUE}*") if client.type(k) == b"list"]
        pipe = client.pipeline()
        for key in keys:
            pipe.lrange(key, 0, -1)
        return [_outbox_id(item) for items in pipe.execute() for item in items]

    worker = engine.start("worker", "--concurrency", "1")
    engine.start("beat")
    _drain(engine, smtp_sink, Sampler(queued_ids))
    engine.wait_for_sweeps(worker, 3)  # sweeps after the backlog: nothing more is sent
    assert sum(smtp_sink.recipients().values()) == WORKERS + 2
    assert queued_ids() == []
    client.close()


def test_a_backlog_on_the_embedded_broker_holds_at_most_one_message_file_per_row(
    tmp_path: Path, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(
        f"sqlite:///{tmp_path / 'caseloop.db'}", smtp_url=smtp_sink.url, settings=BACKLOG_SETTINGS
    )
    assert "CASELOOP_BROKER_URL" not in engine.env()
    _backlog(engine)
    _slow_sink(smtp_sink)
    queue = engine.var_dir / "broker" / "queue"

    def queued_ids() -> list[int]:
        found = []
        for path in queue.glob(f"*.{DELIVERY_QUEUE}.msg"):
            try:
                found.append(_outbox_id(path.read_bytes()))
            except (FileNotFoundError, ValueError):  # taken by the worker while being read
                continue
        return found

    run = engine.start("run")
    _drain(engine, smtp_sink, Sampler(queued_ids))
    engine.wait_for_sweeps(run, 3)
    assert sum(smtp_sink.recipients().values()) == WORKERS + 2
    assert queued_ids() == []
