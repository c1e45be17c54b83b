"""Ingest: events in through the CLI and through ``POST /api/events``, against a bulk insert.

Targets: at least 5,000 events a second, and at most 3 times the time a bulk insert (a multi-row
INSERT on SQLite, COPY on PostgreSQL) takes to write exactly the rows the import wrote, read
back from its tables into a fresh migrated database. Both are measured in the same run. The CLI
runs as a process of its own (start-up included); the API is the real application served
in-process by Starlette's test client, with a token, as many events a request as it takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import JSON, create_engine, func, insert, select
from sqlalchemy.engine import make_url

from benchmarks.harness import Bench, Figure
from config.settings import Settings
from config.wiring import build_runtime
from migrations import upgrade
from services import tokens
from services.actors import SYSTEM
from web.app import create_app
from web.schemas import MOST_EVENTS
from workflow.db import Base
from workflow.demo import Borough

NOW = "2026-11-27T17:00:00+00:00"
RATE_TARGET = 5000.0
RATIO_TARGET = 3.0


def _events(quick: bool, settings: Settings, calendar: Any) -> list[str]:
    weeks, per_week = (2, 350) if quick else (16, 800)  # about 3,100 events, or 50,000
    borough = Borough(seed=2026, weeks=weeks, per_week=per_week, zone=settings.zone, calendar=calendar)
    return [json.dumps(e) for e in borough.events(datetime.fromisoformat(NOW))]


def _via_cli(url: str, file: Path, var: Path) -> float:
    env = {**os.environ, "CASELOOP_DATABASE_URL": url, "CASELOOP_VAR_DIR": str(var)}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "--now", NOW, "events", "import", "--json", str(file)],
        env=env,
        capture_output=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"caseloop events import failed ({done.returncode}): {done.stderr[-2000:]!r}")
    return seconds


def _via_api(url: str, events: list[str], var: Path) -> float:
    rt = build_runtime(Settings(database_url=url, var_dir=var))
    try:
        key = tokens.create(rt, SYSTEM, "bench-feed", ["events:write"], ()).token
        bodies = [
            [json.loads(e) for e in events[start : start + MOST_EVENTS]]
            for start in range(0, len(events), MOST_EVENTS)
        ]
        with TestClient(create_app(rt)) as http:
            start = time.perf_counter()
            for body in bodies:
                answer = http.post(
                    "/api/events", json={"events": body}, headers={"authorization": f"Bearer {key}"}
                )
                if answer.status_code != 200:
                    raise RuntimeError(f"POST /api/events answered {answer.status_code}")
            return time.perf_counter() - start
    finally:
        rt.close()


def _written(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of caseloop's, as the import left them."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: [dict(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns)).mappings()]
                for t in Base.metadata.sorted_tables
                if conn.scalar(select(func.count()).select_from(t))
            }
    finally:
        engine.dispose()


def _bulk_insert(url: str, rows: dict[str, list[dict[str, Any]]]) -> float:
    """The same rows into a fresh migrated database: the fastest way each database takes them."""
    upgrade(url)
    tables = {t.name: t for t in Base.metadata.sorted_tables}
    if make_url(url).get_backend_name() == "postgresql":
        parsed = make_url(url)
        conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo) as conn:
            start = time.perf_counter()
            with conn.cursor() as cur:
                for name, values in rows.items():
                    columns = [c.name for c in tables[name].columns]
                    jsons = {c.name for c in tables[name].columns if isinstance(c.type, JSON)}
                    with cur.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in values:
                            copy.write_row([json.dumps(row[c]) if c in jsons else row[c] for c in columns])
            conn.commit()
            return time.perf_counter() - start
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            start = time.perf_counter()
            for name, values in rows.items():
                conn.execute(insert(tables[name]), values)  # multi-row INSERT ... VALUES
        return time.perf_counter() - start
    finally:
        engine.dispose()


def _figures(what: str, name: str, count: int, seconds: float, baseline: float) -> list[Figure]:
    rate, ratio = count / seconds, seconds / baseline
    return [
        Figure(
            f"ingest {what}, {name}",
            f"{rate:,.0f} events/s",
            baseline=f"bulk insert {baseline:.2f} s",
            ratio=ratio,
            target=f"≥ {RATE_TARGET:,.0f} events/s and ≤ {RATIO_TARGET:.0f}x",
            met=rate >= RATE_TARGET and ratio <= RATIO_TARGET,
            note=f"{count} events in {seconds:.2f} s",
        )
    ]


def run(bench: Bench) -> list[Figure]:
    databases: dict[str, Callable[[], AbstractContextManager[str]]] = {
        "SQLite": lambda: nullcontext(bench.sqlite_url("ingest"))
    }
    if bench.postgres_url:
        databases["PostgreSQL"] = bench.postgres_schema
    figures: list[Figure] = []
    var = bench.folder / "ingest-var"
    events: list[str] | None = None
    file = bench.folder / "ingest.jsonl"
    for name, database in databases.items():
        for what in ("CLI", "API"):
            with database() as url, database() as fresh:
                upgrade(url)
                if events is None:
                    rt = build_runtime(Settings(database_url=url, var_dir=var))
                    events = _events(bench.quick, rt.settings, rt.book.calendar)
                    rt.close()
                    file.write_text("".join(e + "\n" for e in events), encoding="utf-8")
                seconds = _via_cli(url, file, var) if what == "CLI" else _via_api(url, events, var)
                baseline = _bulk_insert(fresh, _written(url))
                figures += _figures(what, name, len(events), seconds, baseline)
    return figures
