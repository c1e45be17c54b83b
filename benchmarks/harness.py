"""What every benchmark shares: its figures, the databases it builds its own data in, the table.

A benchmark measures caseloop doing a piece of real work and, in the same run and on the same
machine, the raw baseline for that work (a bulk insert of the same rows, hand-written SQL for the
same queue, raw Jinja2 on the same template, no-op Celery tasks on the same broker). The ratio
between the two is the figure that travels between machines; the absolute figure is what a
council would see on this one.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url


@dataclass(frozen=True)
class Figure:
    """One row of the table.

    ``ratio`` is caseloop against its baseline, in the direction the target reads: for a rate
    ("at least 0.8x raw Jinja2") caseloop's rate over the baseline's; for a cost ("at most 3x a
    bulk insert") caseloop's time over the baseline's. ``met`` is None where no target applies.
    """

    name: str
    value: str
    baseline: str = "—"
    ratio: float | None = None
    target: str = "—"
    met: bool | None = None
    note: str = ""


@dataclass
class Bench:
    """Where a benchmark builds its data, and how big (``quick``: the two-minute run)."""

    quick: bool
    folder: Path
    postgres_url: str | None = None
    redis_url: str | None = None
    figures: list[Figure] = field(default_factory=list)

    def sqlite_url(self, name: str) -> str:
        return f"sqlite:///{self.folder / f'{name}-{uuid.uuid4().hex[:8]}.db'}"

    @contextmanager
    def postgres_schema(self) -> Iterator[str]:
        """A fresh, empty PostgreSQL schema for one measurement, dropped afterwards."""
        if self.postgres_url is None:
            raise RuntimeError("no PostgreSQL: pass --postgres or set CASELOOP_BENCH_POSTGRES_URL")
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        url = make_url(self.postgres_url)
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
                hide_password=False
            )
        finally:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 of ``samples`` (seconds)."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "—"


def print_table(figures: list[Figure], out: Any) -> None:
    headers = ("figure", "caseloop", "baseline", "ratio", "target", "")
    rows = [
        (
            f.name,
            f.value,
            f.baseline,
            "—" if f.ratio is None else f"{f.ratio:.2f}x",
            f.target,
            {None: "", True: "met", False: "MISSED"}[f.met],
        )
        for f in figures
    ]
    widths = [max(len(str(r[i])) for r in (headers, *rows)) for i in range(len(headers))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers).rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in rows:
        print(line.format(*row).rstrip(), file=out)
    notes = [f for f in figures if f.note]
    if notes:
        print(file=out)
        for f in notes:
            print(f"{f.name}: {f.note}", file=out)


@contextmanager
def scratch_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="caseloop-bench-") as tmp:
        yield Path(tmp)


def env_url(name: str) -> str | None:
    return os.environ.get(name) or None
