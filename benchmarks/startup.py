"""Start-up: how long ``caseloop --help`` takes, and the memory it peaks at.

Target: ``caseloop --help`` in under 0.3 s wall time (the median of its runs). The baseline is
``python -c pass`` on the same interpreter, run interleaved with it, so what the machine's other
users cost falls on both; the ratio is caseloop's time over the bare interpreter's.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import Bench, Figure

TARGET_SECONDS = 0.3


def _script() -> list[str]:
    beside = Path(sys.executable).parent / "caseloop"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "cli.main"]


def _run(command: list[str]) -> float:
    """Wall time (seconds) of one run of ``command``."""
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _peak_kib(command: list[str]) -> int | None:
    """Peak RSS (KiB) of ``command``, measured by GNU time, or None without it.

    Not from this process's wait4: a child's peak counts the copy of its parent it starts as
    (the benchmark's own tens of MiB) until it execs; GNU time is small, so its child's is not.
    """
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if gnu_time is None:
        return None
    done = subprocess.run(
        [gnu_time, "-f", "%M", *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    return int(last) if done.returncode == 0 and last.isdigit() else None


def run(bench: Bench) -> list[Figure]:
    runs = 10 if bench.quick else 30
    help_command = [*_script(), "--help"]
    bare = [sys.executable, "-c", "pass"]
    _run(help_command), _run(bare)  # warm the file cache
    ours: list[float] = []
    base: list[float] = []
    for _ in range(runs):
        ours.append(_run(help_command))
        base.append(_run(bare))
    median, bare_median = statistics.median(ours), statistics.median(base)
    peak, bare_peak = _peak_kib(help_command), _peak_kib(bare)
    figures = [
        Figure(
            "caseloop --help wall time",
            f"{median:.3f} s",
            f"{bare_median:.3f} s python -c pass",
            median / bare_median,
            f"< {TARGET_SECONDS} s",
            median < TARGET_SECONDS,
            note=f"median of {runs} runs, interleaved with the baseline's",
        ),
    ]
    if peak is None or bare_peak is None:
        figures.append(Figure("caseloop --help peak RSS", "not measured", note="needs GNU time"))
    else:
        figures.append(
            Figure(
                "caseloop --help peak RSS",
                f"{peak / 1024:.0f} MiB",
                f"{bare_peak / 1024:.0f} MiB python -c pass",
                peak / bare_peak,
                note="measured by GNU time (%M)",
            )
        )
    return figures
