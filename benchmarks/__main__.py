"""caseloop's benchmark suite: each figure beside its raw baseline, measured in the same run.

    python -m benchmarks [--quick] [--only NAME,...] [--postgres URL] [--redis URL]

Every benchmark builds its own data (a synthetic borough, or rows written straight to the tables)
in a scratch folder and fresh PostgreSQL schemas, and prints rows of one table: the figure, its
baseline, the ratio and the target. ``--quick`` runs each at a size that finishes in under two
minutes in all; the full run uses the sizes the targets name. Figures are printed, not asserted:
speed is tracked here, not in timed tests.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

from benchmarks.harness import Bench, Figure, env_url, print_table, scratch_folder

# The benchmarks, in the order of the table: module names under benchmarks/, each with
# ``run(bench) -> list[Figure]``.
SUITES = ("borough", "ingest", "startup", "letters", "sweep", "queues", "latency")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: under two minutes in all")
    parser.add_argument("--only", help=f"comma-separated benchmarks (of {', '.join(SUITES)})")
    parser.add_argument(
        "--postgres",
        default=env_url("CASELOOP_BENCH_POSTGRES_URL"),
        help="a PostgreSQL URL whose database may hold scratch schemas",
    )
    parser.add_argument(
        "--redis",
        default=env_url("CASELOOP_BENCH_REDIS_URL"),
        help="a Redis URL (a database number of its own)",
    )
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else list(SUITES)
    unknown = sorted(set(chosen) - set(SUITES))
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)} (known: {', '.join(SUITES)})")
    started = time.monotonic()
    figures: list[Figure] = []
    with scratch_folder() as folder:
        for name in chosen:
            bench = Bench(args.quick, folder, args.postgres, args.redis)
            print(f"measuring {name}…", file=sys.stderr, flush=True)
            try:
                figures += importlib.import_module(f"benchmarks.{name}").run(bench)
            except Exception as exc:  # one benchmark that cannot run does not hide the others
                traceback.print_exc()
                figures.append(Figure(name, "could not run", note=f"{type(exc).__name__}: {exc}", met=False))
    size = "quick" if args.quick else "full"
    print(f"caseloop benchmarks ({size}, {time.monotonic() - started:.0f} s)\n")
    print_table(figures, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
