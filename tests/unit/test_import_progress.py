"""The import's progress bar: drawn for a person at a terminal, silent for a script."""

from __future__ import annotations

import io
import os
from pathlib import Path

from cli.progress import import_progress, lines_in


def test_silent_when_standard_error_is_not_a_terminal() -> None:
    err = io.StringIO()
    with import_progress(10, quiet=False, stream=err) as told:
        assert told is None
    assert err.getvalue() == ""


def test_silent_with_json_even_at_a_terminal() -> None:
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as err, import_progress(10, quiet=True, stream=err) as told:
            assert told is None
            err.flush()
        os.set_blocking(master, False)
        try:
            drawn = os.read(master, 4096)
        except BlockingIOError:
            drawn = b""
        assert drawn == b""
    finally:
        os.close(master)
        os.close(slave)


def test_drawn_under_a_pseudo_terminal() -> None:
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as err:
            with import_progress(400, quiet=False, stream=err) as told:
                assert told is not None
                told(200)
                told(400)
            err.flush()
        os.set_blocking(master, False)
        drawn = b""
        while True:
            try:
                part = os.read(master, 65536)
            except BlockingIOError:
                break
            if not part:
                break
            drawn += part
        assert b"importing" in drawn and b"/400" in drawn  # the bar, out of the file's 400 lines
    finally:
        os.close(master)
        os.close(slave)


def test_lines_are_counted_with_or_without_a_last_newline(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"{}\n{}\n")
    (tmp_path / "b").write_bytes(b"{}\n{}")
    (tmp_path / "c").write_bytes(b"")
    assert [lines_in(str(tmp_path / n)) for n in "abc"] == [2, 2, 0]
    assert lines_in("-") is None
