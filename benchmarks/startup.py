"""Start-up: how long ``caseloop --help`` takes, and the memory it peaks at.

Target: ``caseloop --help`` in under 0.3 s wall time (the median of its runs). The baseline is
``python -c pass`` on the same interpreter, run interleaved with it, so what the machine's other
users cost falls on both; the ratio is caseloop's time over the bare interpreter's.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from benchmarks.harness import Bench, Figure

TARGET_SECONDS = 0.3


def _script() -> list[str]:
    beside = Path(sys.executable).parent / "caseloop"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "cli.main"]


def _run(command: list[str]) -> tuple[float, int]:
    """Wall time (seconds) and peak RSS (KiB) of one run of ``command``."""
    # posix_spawn (a vfork in glibc), not fork: a forked child's peak would count the copy of
    # this process it starts as, before the exec.
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        start = time.perf_counter()
        pid = os.posix_spawn(
            command[0],
            command,
            os.environ,
            file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)],
        )
        _, status, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - start
    finally:
        os.close(devnull)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} exited {code}")
    return seconds, usage.ru_maxrss


def run(bench: Bench) -> list[Figure]:
    runs = 10 if bench.quick else 30
    help_command = [*_script(), "--help"]
    bare = [sys.executable, "-c", "pass"]
    _run(help_command), _run(bare)  # warm the file cache
    ours: list[tuple[float, int]] = []
    base: list[tuple[float, int]] = []
    for _ in range(runs):
        ours.append(_run(help_command))
        base.append(_run(bare))
    median = statistics.median(s for s, _ in ours)
    bare_median = statistics.median(s for s, _ in base)
    peak, bare_peak = max(r for _, r in ours), max(r for _, r in base)
    return [
        Figure(
            "caseloop --help wall time",
            f"{median:.3f} s",
            f"{bare_median:.3f} s python -c pass",
            median / bare_median,
            f"< {TARGET_SECONDS} s",
            median < TARGET_SECONDS,
            note=f"median of {runs} runs, interleaved with the baseline's",
        ),
        Figure(
            "caseloop --help peak RSS",
            f"{peak / 1024:.0f} MiB",
            f"{bare_peak / 1024:.0f} MiB python -c pass",
            peak / bare_peak,
            note="the largest of the runs' peak resident set sizes",
        ),
    ]
