"""Fixtures for the process-level tests: Redis (shared and private), the SMTP sink, engines.

``CASELOOP_TEST_REDIS_URL`` behaves like ``CASELOOP_TEST_POSTGRES_URL``: unset, the tests that need
Redis are skipped locally (pytest says so) and fail under ``CI=true``. Each test gets its own Redis
database number, flushed before and after. Private ``redis-server`` instances (for restarts and
for MONITOR) need the binary on PATH, with the same skip-or-fail rule.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import require
from tests.e2e.engine import Engine
from tests.e2e.services import RedisServer, SmtpSink


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared Redis service, from ``CASELOOP_TEST_REDIS_URL``."""
    return require("CASELOOP_TEST_REDIS_URL", "Redis", os.environ.get("CASELOOP_TEST_REDIS_URL"))


_db_numbers = itertools.count()


def xdist_worker() -> tuple[int, int]:
    """This process's number among pytest-xdist's workers, and how many there are ((0, 1) without)."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(name.removeprefix("gw") or 0), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def browser_databases() -> set[int]:
    """The Redis databases the browser journeys' deployments use (one per worker, from the top)."""
    return {15 - n for n in range(xdist_worker()[1])}


@pytest.fixture
def redis_db_url(redis_url: str) -> Iterator[str]:
    """A Redis database of its own for one test (not the configured one), flushed before and after."""
    client = redis.Redis.from_url(redis_url)
    base = client.connection_pool.connection_kwargs.get("db", 0)
    try:
        available = int(client.config_get("databases").get("databases") or 16)
    except redis.ResponseError:  # CONFIG may be disabled on a managed Redis
        available = 16
    choices = [n for n in range(available) if n != base and n not in browser_databases()]
    # Under pytest-xdist each worker takes its own share of the numbers, so no two flush each other.
    worker, workers = xdist_worker()
    choices = [n for i, n in enumerate(choices) if i % workers == worker]
    number = choices[next(_db_numbers) % len(choices)]
    url = redis_url.rsplit("/", 1)[0] + f"/{number}" if redis_url.count("/") > 2 else f"{redis_url}/{number}"
    own = redis.Redis.from_url(url)
    own.flushdb()
    try:
        yield url
    finally:
        own.flushdb()
        own.close()
        client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, on a free port, that the test may stop and start."""
    binary = require("redis-server", "Redis", shutil.which("redis-server"))
    server = RedisServer(tmp_path / "redis", binary).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    """Build engines under tmp_path; every process they start is ended at teardown."""
    engines: list[Engine] = []

    def make(database_url: str, **kwargs: Any) -> Engine:
        engine = Engine(tmp_path / f"engine{len(engines) + 1}", database_url, **kwargs)
        engines.append(engine)
        return engine

    try:
        yield make
    finally:
        for engine in engines:
            engine.stop_all()
