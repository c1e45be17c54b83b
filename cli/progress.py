"""A progress bar on standard error for a long import, drawn only for a person at a terminal.

A script reading the output (``--json``, or standard error not a terminal) gets nothing extra.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.intake import Progress as Told


def lines_in(file: str) -> int | None:
    """How many lines a file holds (None for standard input, which cannot be read twice)."""
    if file == "-":
        return None
    count, last = 0, b"\n"
    with Path(file).open("rb") as stream:
        while chunk := stream.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


@contextmanager
def import_progress(total: int | None, quiet: bool, stream: TextIO | None = None) -> Iterator[Told | None]:
    """A callback for ``services.intake`` that moves a bar, or None when no bar is drawn."""
    err = stream if stream is not None else sys.stderr
    if quiet or not err.isatty():
        yield None
        return
    console = Console(file=err, force_terminal=True)
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("import", total=total)

        def told(line: int) -> None:
            bar.update(task, completed=line)

        yield told
