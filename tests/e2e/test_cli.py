"""The CLI contract (issue 2, part 6), driven through the real Typer app on both databases."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from cli.main import app
from config.settings import Settings
from config.wiring import build_runtime
from tests.factories import event, jsonl, referral
from workflow import casework
from workflow.events import parse_line, validate_event

NOW = "2026-03-20T12:00:00+00:00"


class Cli:
    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url, self.tmp_path, self.runner = url, tmp_path, CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Result:
        env = {"CASELOOP_DATABASE_URL": self.url, "COLUMNS": "200"}
        return self.runner.invoke(app, list(args), env=env, input=input)

    def file(self, name: str, *events: dict[str, object]) -> str:
        path = self.tmp_path / name
        path.write_text("".join(jsonl(*events)), encoding="utf-8")
        return str(path)

    def json(self, *args: str) -> Any:
        result = self(*args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Cli:
    cli = Cli(database_url, tmp_path)
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "database schema is up to date" in result.stdout
    return cli


def flat(text: str) -> str:
    """Error text without Rich's box drawing and line wrapping."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", text).split())


def test_import_prints_counts_and_exits_0_only_when_nothing_is_rejected(cli: Cli) -> None:
    good = cli.file(
        "good.jsonl",
        referral("C1", "2026-03-02", id="a1"),
        event("decision.made", "C1", "2026-03-03", id="a2", outcome="assessment"),
    )
    first = cli("--now", NOW, "events", "import", good)
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "accepted 2, duplicate 0, rejected 0"

    again = cli("--now", NOW, "events", "import", good)
    assert again.exit_code == 0
    assert "duplicate: line 1: event a1 was already accepted; skipped" in again.stdout
    assert again.stdout.splitlines()[-1] == "accepted 0, duplicate 2, rejected 0"

    bad = cli.file("bad.jsonl", referral("C2", "2026-03-02"))
    Path(bad).write_text(Path(bad).read_text() + "not json\n", encoding="utf-8")
    mixed = cli("--now", NOW, "events", "import", bad)
    assert mixed.exit_code == 1
    assert mixed.stderr.startswith("rejected: line 2: field (line): not valid JSON")
    assert mixed.stdout.strip() == "accepted 1, duplicate 0, rejected 1"

    missing = cli("--now", NOW, "events", "import", str(cli.tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_import_from_standard_input(cli: Cli) -> None:
    lines = "".join(
        jsonl(referral("C1", "2026-03-02"), event("decision.made", "C1", "2026-03-03", outcome="nfa"))
    )
    result = cli("--now", NOW, "events", "import", "-", input=lines)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "accepted 2, duplicate 0, rejected 0"
    assert cli.json("--now", NOW, "case", "show", "C1", "--json")["state"] == "referral_nfa"


def test_the_now_option_is_the_current_time(cli: Cli) -> None:
    path = cli.file("r.jsonl", referral("C1", "2026-03-02T10:00:00+00:00"))
    early = cli("--now", "2026-03-02T09:00:00+00:00", "events", "import", path)
    assert early.exit_code == 1
    assert "line 1: field at: 2026-03-02T10:00:00+00:00 is in the future" in early.stderr
    assert cli("--now", "2026-03-02T10:00:00+00:00", "events", "import", path).exit_code == 0
    # The referrer acknowledgement is due 3 March: running that day, past due the day after.
    for now, status in (("2026-03-03T17:00:00+00:00", "running"), ("2026-03-04T09:00:00+00:00", "breached")):
        view = cli.json("--now", now, "case", "show", "C1", "--json")
        ack = next(c for c in view["clocks"] if c["name"] == "referrer_acknowledgement")
        assert (ack["due"], ack["status"]) == ("2026-03-03", status)


def test_rejected_lists_kept_lines_and_retry_takes_them_when_they_fit(cli: Cli, settings: Settings) -> None:
    path = cli.file("late.jsonl", event("decision.made", "C9", "2026-03-03", id="d9", outcome="assessment"))
    assert cli("--now", NOW, "events", "import", path).exit_code == 1
    (row,) = cli.json("events", "rejected", "--json")
    assert {k: row[k] for k in ("event", "case", "type", "source", "line", "kind", "retryable")} == {
        "event": "d9",
        "case": "C9",
        "type": "decision.made",
        "source": "late.jsonl",
        "line": 1,
        "kind": "unknown_case",
        "retryable": True,
    }
    assert row["reason"].startswith("line 1: field case: unknown case 'C9'")
    assert cli("--now", NOW, "events", "retry").stdout.strip() == "accepted 0, still rejected 1"

    # The referral reaches the case by another road, so no import retries for us.
    rt = build_runtime(settings)
    try:
        with rt.db.transaction() as session:
            ref = validate_event(parse_line(json.dumps(referral("C9", "2026-03-02"))))
            casework.apply(session, rt.book, ref, None)
    finally:
        rt.close()
    assert cli("--now", NOW, "events", "retry").stdout.strip() == "accepted 1, still rejected 0"
    assert cli.json("events", "rejected", "--json") == []
    assert cli("events", "rejected").stdout.strip() == "no rejected events"


def test_case_show_json_has_the_case_state_and_clocks(cli: Cli) -> None:
    path = cli.file(
        "c.jsonl",
        referral("C1", "2026-03-02"),
        event("decision.made", "C1", "2026-03-03", outcome="assessment"),
    )
    assert cli("--now", NOW, "events", "import", path).exit_code == 0
    view = cli.json("--now", "2026-03-03T17:00:00+00:00", "case", "show", "C1", "--json")
    assert isinstance(view, dict)
    assert (view["case"], view["state"]) == ("C1", "assessment")
    clocks = {
        c["name"]: {k: c[k] for k in ("name", "started", "due", "status", "stopped")} for c in view["clocks"]
    }
    assert clocks["decision"] == {
        "name": "decision",
        "started": "2026-03-02",
        "due": "2026-03-03",
        "status": "met",
        "stopped": "2026-03-03",
    }
    assert clocks["assessment"] == {
        "name": "assessment",
        "started": "2026-03-03",
        "due": "2026-05-07",
        "status": "running",
        "stopped": None,
    }
    assert set(clocks) == {
        "decision",
        "referrer_acknowledgement",
        "referrer_outcome",
        "assessment",
        "school_worker_involved",
    }

    text = cli("--now", NOW, "case", "show", "C1")
    assert text.exit_code == 0 and text.stdout.startswith("case C1  state assessment  episode 1")
    unknown = cli("--now", NOW, "case", "show", "NOPE")
    assert unknown.exit_code == 2 and unknown.stderr.strip() == "error: no case 'NOPE'"


def test_tick_marks_breaches_and_the_overdue_queue_is_most_overdue_first(cli: Cli) -> None:
    path = cli.file("q.jsonl", referral("LATER", "2026-03-09", team="east"), referral("EARLY", "2026-03-02"))
    assert cli("--now", NOW, "events", "import", path).exit_code == 0
    first = cli("--now", NOW, "tick").stdout
    assert first.startswith("recalculated 0, newly breached 4,")
    # The tick also sends the two overdue acknowledgement letters, which stops their clocks late.
    assert "sent 2" in first
    assert cli("--now", NOW, "tick").stdout.startswith("recalculated 0, newly breached 0,")

    rows = cli.json("--now", NOW, "queue", "overdue", "--json")
    # Due 3 March: 13 working days overdue on 20 March; due 10 March: 8.
    assert [(r["case"], r["clock"], r["due"], r["working_days_overdue"]) for r in rows] == [
        ("EARLY", "decision", "2026-03-03", 13),
        ("LATER", "decision", "2026-03-10", 8),
    ]
    acknowledgement = cli.json("--now", NOW, "case", "show", "EARLY", "--json")["clocks"]
    assert {c["name"]: c["status"] for c in acknowledgement}["referrer_acknowledgement"] == "met_late"
    east = cli.json("--now", NOW, "queue", "overdue", "--team", "east", "--json")
    assert {r["case"] for r in east} == {"LATER"}
    assert cli.json("--now", "2026-03-03T12:00:00+00:00", "queue", "overdue", "--json") == []


def test_workflow_diagram_prints_a_mermaid_state_diagram(cli: Cli) -> None:
    result = cli("workflow", "diagram")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "stateDiagram-v2"
    for expected in (
        "    [*] --> referral: referral.received",
        "    closed --> referral: referral.received",
        "    referral --> assessment: decision.made [outcome=assessment]",
        "    strategy --> icpc_pending: strategy.held [icpc_required=true]",
        "    closed --> [*]",
    ):
        assert expected in lines


def test_an_unmigrated_database_exits_2_and_says_to_upgrade(database_url: str, tmp_path: Path) -> None:
    cli = Cli(database_url, tmp_path)
    path = cli.file("e.jsonl", referral("C1", "2026-03-02"))
    for args in (
        ["events", "import", path],
        ["events", "rejected"],
        ["case", "show", "C1"],
        ["tick"],
        ["queue", "overdue"],
        ["events", "retry"],
    ):
        result = cli("--now", NOW, *args)
        assert result.exit_code == 2, args
        assert "run `caseloop db upgrade`" in result.stderr, args
    assert cli("db", "upgrade").exit_code == 0
    assert cli("--now", NOW, "events", "import", path).exit_code == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "'yesterday' is not an ISO 8601 date-time"),
        ("2026-03-02T09:00:00", "'2026-03-02T09:00:00' needs a UTC offset"),
    ],
)
def test_a_bad_now_is_refused(cli: Cli, value: str, message: str) -> None:
    result = cli("--now", value, "tick")
    assert result.exit_code == 2
    assert message in flat(result.stderr)
    assert "newly breached" not in result.stdout


@pytest.mark.slow
def test_the_installed_console_script_runs() -> None:
    script = Path(sys.executable).parent / "caseloop"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "cli.main"]
    done = subprocess.run([*command, "workflow", "diagram"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("stateDiagram-v2\n    [*] --> referral: referral.received\n")


def test_the_demo_is_made_once_and_a_second_run_keeps_it(cli: Cli) -> None:
    """Its events are dated from the day it is made: made again later, every id would name an
    event with other content (a conflict), so a database that has the borough keeps it."""
    output = str(cli.tmp_path / "demo.jsonl")
    logins = cli.tmp_path / "logins.txt"
    first = cli(
        "--now",
        "2026-11-27T17:00:00+00:00",
        "demo",
        "--weeks",
        "1",
        "--per-week",
        "20",
        "--output",
        output,
        "--logins",
        str(logins),
    )
    assert first.exit_code == 0, first.output
    assert "rejected 0" in first.stdout
    first_logins = logins.read_text()
    assert logins.stat().st_mode & 0o777 == 0o600  # it holds passwords
    passwords = set(re.findall(r"^ .* password (\S+)", first_logins, re.M))
    assert len(passwords) == 1 and all(who in first_logins for who in ("SW001", "TM01", "SM01"))
    later = cli(
        "--now",
        "2026-12-02T09:00:00+00:00",
        "demo",
        "--weeks",
        "1",
        "--per-week",
        "20",
        "--output",
        output,
        "--logins",
        str(logins),
    )
    assert later.exit_code == 0, later.output
    assert "the demo borough is already in this database: not made again" in later.stdout
    assert set(re.findall(r"^ .* password (\S+)", logins.read_text(), re.M)).isdisjoint(passwords)
    assert cli("events", "rejected").stdout.strip() == "no rejected events"
