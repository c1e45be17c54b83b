"""`caseloop events import` exit statuses (issue 8, point 8): 0 when every line was taken, 1 when
lines were rejected, 2 when the import itself failed; warnings in the summary and in --json."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.e2e.test_cli import NOW, Cli
from tests.factories import event, jsonl, referral, staff_csv, staff_row


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Cli:
    cli = Cli(database_url, tmp_path)
    assert cli("db", "upgrade").exit_code == 0
    return cli


def test_exit_0_when_every_line_is_taken_even_with_a_byte_order_mark(cli: Cli) -> None:
    path = Path(cli.file("ok.jsonl", referral("C1", "2026-03-02")))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    result = cli("--now", NOW, "events", "import", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "accepted 1, duplicate 0, rejected 0"


def test_exit_1_when_lines_are_rejected_and_the_others_taken_from_standard_input(cli: Cli) -> None:
    data = (
        "".join(jsonl(referral("C1", "2026-03-02"))).encode()
        + b'{"id": "x", "name": "\xff"}\n'
        + "".join(jsonl(event("decision.made", "C1", "2026-03-03", outcome="nfa"))).encode()
    )
    result = cli.runner.invoke(
        app, ["--now", NOW, "events", "import", "-"], input=data, env={"CASELOOP_DATABASE_URL": cli.url}
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("rejected: line 2: field (line): is not UTF-8 text (byte 0xFF")
    assert "Traceback" not in result.output
    assert result.stdout.strip() == "accepted 2, duplicate 0, rejected 1"
    (row,) = cli.json("events", "rejected", "--json")
    assert (row["source"], row["line"], row["kind"]) == ("<stdin>", 2, "malformed")


def test_exit_2_when_the_file_cannot_be_read(cli: Cli) -> None:
    missing = cli("--now", NOW, "events", "import", str(cli.tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    folder = cli("--now", NOW, "events", "import", str(cli.tmp_path))
    assert folder.exit_code == 2 and "not a file" in folder.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("kind", ["sqlite-not-a-database", "postgres-down"])
def test_exit_2_when_the_database_is_down(tmp_path: Path, kind: str) -> None:
    (tmp_path / "caseloop.db").write_bytes(b"this is not a database file" * 100)
    url = {
        "sqlite-not-a-database": f"sqlite:///{tmp_path / 'caseloop.db'}",
        "postgres-down": f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/test",
    }[kind]
    path = tmp_path / "ok.jsonl"
    path.write_text("".join(jsonl(referral("C1", "2026-03-02"))), encoding="utf-8")
    result = CliRunner().invoke(
        app, ["--now", NOW, "events", "import", str(path)], env={"CASELOOP_DATABASE_URL": url}
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: the database cannot be used: ")
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_warnings_are_in_the_summary_and_in_json(cli: Cli) -> None:
    staff = cli.tmp_path / "staff.csv"
    staff.write_text("".join(staff_csv(staff_row("W1"))), encoding="utf-8")
    assert cli("--now", NOW, "staff", "import", str(staff)).exit_code == 0
    adult = {**referral("C1", "2026-03-02")["child"], "dob": "2000-01-01"}
    path = cli.file(
        "w.jsonl",
        referral("C1", "2026-03-02", child=adult, team="front-door"),
        event("worker.allocated", "C1", "2026-03-03", worker="W2"),
    )
    result = cli("--now", NOW, "events", "import", path)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "warning: line 1: case C1: the child is 18 or over on the referral date; accepted: "
        "check the date of birth",
        "warning: line 2: case C1: worker 'W2' is not in the staff directory; accepted",
        "accepted 2, duplicate 0, rejected 0, warnings 2",
    ]

    again = cli.file("w2.jsonl", referral("C2", "2026-03-02", team="north"), {"id": "bad"})
    answer = cli("--now", NOW, "events", "import", again, "--json")
    assert answer.exit_code == 1
    summary = json.loads(answer.stdout)
    assert summary["ok"] is False and summary["accepted"] == 1
    assert summary["warnings"] == ["line 1: case C2: team 'north' is not in the staff directory; accepted"]
    assert summary["rejected"] == ["line 2: field type: is required"]
