"""A harness that runs caseloop's real processes: ``caseloop worker``, ``beat`` and ``run``.

The console script runs in subprocesses with settings that make recovery take seconds; data goes
in through the real CLI; the outbox is read straight from the database the processes use. Waits
poll the database, the SMTP sink (``services.py``) or the logs against a deadline; nothing sleeps
and hopes. Processes start in their own session so teardown can always end them and their children.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.e2e.services import SmtpSink, free_port, wait_until
from tests.factories import event, jsonl, no_contact_referrer, referral

REPO = Path(__file__).resolve().parents[2]
SHIPPED_POLICY = REPO / "config" / "policy.yaml"
T = TypeVar("T")

# Settings that make recovery happen in seconds. sending_timeout must exceed task_time_limit (the
# settings refuse otherwise) and every live send in these tests is far shorter than either.
FAST_SETTINGS: dict[str, str] = {
    "CASELOOP_SWEEP_INTERVAL_SECONDS": "1",
    "CASELOOP_TASK_TIME_LIMIT": "4",
    "CASELOOP_SENDING_TIMEOUT": "6",
    "CASELOOP_REDISPATCH_AFTER": "3",
    "CASELOOP_BROKER_VISIBILITY_TIMEOUT": "5",
    "CASELOOP_SMTP_TIMEOUT": "5",
    "CASELOOP_RETRY_BASE_SECONDS": "1",
    "CASELOOP_MAIL_FROM": "caseloop@council.example",
    "CASELOOP_BASE_URL": "https://caseloop.council.example",
    "CASELOOP_ENVIRONMENT": "test",
}


def caseloop_script() -> Path:
    beside = Path(sys.executable).parent / "caseloop"
    return beside if beside.exists() else REPO / ".venv" / "bin" / "caseloop"


# --- test data --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    email: str
    role: str
    team: str
    manager_id: str = ""


def front_door_staff(names: dict[str, str] | None = None) -> list[Member]:
    """A service manager, a team manager and a social worker, who manages whom."""
    names = names or {}
    return [
        Member(
            "sm1", names.get("sm1", "Sam Service"), "sm1@council.example", "service_manager", "front-door"
        ),
        Member(
            "tm1", names.get("tm1", "Tina Team"), "tm1@council.example", "team_manager", "front-door", "sm1"
        ),
        Member(
            "sw1",
            names.get("sw1", "Will Worker"),
            "sw1@council.example",
            "social_worker",
            "front-door",
            "tm1",
        ),
    ]


STAFF_ADDRESSES = ("sm1@council.example", "tm1@council.example", "sw1@council.example")


def overdue_referral(
    case: str = "C1", worker: str = "sw1", *, days_ago: int = 14, **overrides: Any
) -> list[dict[str, Any]]:
    """A referral received ``days_ago`` days ago with no decision, allocated to ``worker``.

    By default no letter is owed: the referrer left no contact details and no school is recorded,
    so the referrer-acknowledgement duty has nobody to tell and its clock is cancelled on receipt.
    Only the decision clock (one working day) runs, long breached, so the first sweep plans a breach
    reminder to the worker and escalations to the team manager and the service manager (three
    reminders): one digest each, due now, and the outbox holds those three digests and nothing
    else. ``overrides`` (e.g. a ``referrer`` with an email) put letters back in play.
    """
    day = (datetime.now(UTC) - timedelta(days=days_ago)).date().isoformat()
    fields: dict[str, Any] = {
        "child": {"name": "Child Example", "dob": "2016-05-01"},  # no school: none to tell
        "referrer": no_contact_referrer("1A"),  # nobody to acknowledge
        **overrides,
    }
    return [
        referral(case, f"{day}T10:00:00+00:00", **fields),
        event("worker.allocated", case, f"{day}T11:00:00+00:00", worker=worker),
    ]


# The overdue referral's outbox: one digest each for the social worker, the team manager and the
# service manager, each delivered to its own address exactly once.
ALL_SENT = {"sw1": "sent", "tm1": "sent", "sm1": "sent"}
ONE_EACH = Counter(dict.fromkeys(STAFF_ADDRESSES, 1))


def recipient_id(address: str) -> str:
    """The staff id an address of the test council belongs to (``sw1@council.example`` is sw1)."""
    return address.split("@", 1)[0]


def overdue_engine(
    make_engine: Callable[..., Engine], db: str, broker: str, sink: SmtpSink, **settings: object
) -> Engine:
    """An engine on ``db`` and ``broker`` sending to ``sink``, prepared with :func:`overdue_referral`
    (its first sweep owes the three digests of :data:`ALL_SENT`)."""
    engine = make_engine(db, broker_url=broker, smtp_url=sink.url, **settings)
    engine.prepare(overdue_referral("C1", "sw1"))
    return engine


def always_open_policy(path: Path) -> Path:
    """The shipped policy, but reminders go out every day at any hour, so the test can run now."""
    data = yaml.safe_load(SHIPPED_POLICY.read_text(encoding="utf-8"))
    data["reminders"]["days"] = "all"
    data["reminders"]["office_hours"] = {"start": "00:00", "end": "23:59:59"}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# --- processes --------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log()))

    def kill9(self) -> None:
        """``kill -9`` the process and anything it started (its session), and reap it."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, grace: float = 1.5) -> None:
        """SIGTERM (Celery's warm shutdown), then SIGKILL after ``grace`` seconds."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        # Also whatever it left behind in its session (e.g. the embedded beat's process).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)


class Engine:
    """One deployment of caseloop under ``root``: its settings, its processes, its database."""

    def __init__(
        self,
        root: Path,
        database_url: str,
        *,
        broker_url: str | None = None,
        smtp_url: str | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self.broker_url = broker_url
        # Created here: `caseloop beat` on Redis does not create it (see test_engine_edges.py).
        self.var_dir = root / "var"
        self.var_dir.mkdir()
        self.policy_file = always_open_policy(root / "policy.yaml")
        self.settings = {
            **FAST_SETTINGS,
            "CASELOOP_DATABASE_URL": database_url,
            "CASELOOP_POLICY_FILE": str(self.policy_file),
            "CASELOOP_VAR_DIR": str(self.var_dir),
            **({"CASELOOP_BROKER_URL": broker_url} if broker_url else {}),
            **({"CASELOOP_SMTP_URL": smtp_url} if smtp_url else {}),
            **(settings or {}),
        }
        self.procs: list[Proc] = []
        self._db = create_engine(database_url, poolclass=NullPool)

    # Environment and the CLI.

    def env(self, **overrides: str) -> dict[str, str]:
        # Nothing of the caller's caseloop or Celery configuration leaks into the processes.
        base = {k: v for k, v in os.environ.items() if not k.startswith(("CASELOOP_", "CELERY"))}
        env = {**base, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **self.settings, **overrides}
        # The processes run the code under test, this checkout's, even when the console script
        # belongs to an environment installed from another checkout of the project.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), overrides.get("PYTHONPATH", "")) if p)
        return env

    def cli(self, *args: str, check: bool = True, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(caseloop_script()), *args],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert done.returncode == 0, f"caseloop {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
        return done

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def prepare(self, events: Iterable[dict[str, Any]], staff: list[Member] | None = None) -> None:
        """Migrate, import the staff and the events, through the real CLI."""
        self.cli("db", "upgrade")
        staff_file = self.root / "staff.csv"
        lines = ["id,name,email,role,team,manager_id"]
        lines += [
            f"{m.id},{m.name},{m.email},{m.role},{m.team},{m.manager_id}" for m in staff or front_door_staff()
        ]
        staff_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert "rejected 0" in self.cli("staff", "import", str(staff_file)).stdout
        events_file = self.root / "events.jsonl"
        events_file.write_text("".join(jsonl(*events)), encoding="utf-8")
        assert "rejected 0" in self.cli("events", "import", str(events_file)).stdout

    # Processes.

    def start(self, command: str, *args: str, name: str | None = None, **env: str) -> Proc:
        """Start ``caseloop COMMAND ARGS`` with the engine's settings, ``env`` overriding them."""
        name = name or f"{command}{sum(p.name.startswith(command) for p in self.procs) + 1}"
        if command == "run" and "--port" not in args and "--no-web" not in args:
            args = (*args, "--port", str(free_port()))  # its web, on a port of its own
        log_path = self.root / f"{name}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                [str(caseloop_script()), command, *args],
                cwd=self.root,
                env=self.env(**env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.stop()
        self._db.dispose()

    def logs(self) -> dict[str, str]:
        return {p.name: p.log() for p in self.procs}

    # The database, read directly.

    def outbox(self) -> list[dict[str, Any]]:
        with self._db.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, kind, duty, recipient, address, status, attempts, dispatched_at,"
                    " sending_started_at, handed_over_at, sent_at, last_error FROM outbox ORDER BY id"
                )
            )
            return [dict(r._mapping) for r in rows]

    def outbox_row(self, recipient: str) -> dict[str, Any]:
        """The outbox row addressed to ``recipient`` (a staff id): the first, if there are more."""
        return next(r for r in self.outbox() if r["recipient"] == recipient)

    def scalar(self, sql: str) -> Any:
        with self._db.connect() as conn:
            return conn.execute(text(sql)).scalar()

    def statuses(self) -> dict[str, str]:
        """Each outbox row's status, by recipient: the whole outbox, letters included.

        Digests are one per person and letters one per recipient in these tests; a recipient with
        two rows would hide one, so that fails at once rather than compare a partial picture.
        """
        rows = self.outbox()
        found = {r["recipient"]: r["status"] for r in rows}
        assert len(found) == len(rows), f"two outbox rows for one recipient: {rows}"
        return found

    # Waiting.

    def diagnostics(self, sink: SmtpSink | None = None, lines: int = 40) -> str:
        parts = []
        try:
            parts.append("outbox: " + json.dumps(self.outbox(), default=str, indent=1))
        except Exception as exc:  # the database may not exist yet
            parts.append(f"outbox: unreadable ({exc})")
        if sink is not None:
            parts.append(f"smtp sink received: {sink.recipients()}")
        for proc in self.procs:
            tail = "\n".join(proc.log().splitlines()[-lines:])
            state = "running" if proc.alive() else f"exited {proc.popen.returncode}"
            parts.append(f"--- {proc.name} ({state}) {proc.log_path}\n{tail}")
        return "\n".join(parts)

    def wait(
        self, probe: Callable[[], T], what: str, *, timeout: float = 30, sink: SmtpSink | None = None
    ) -> T:
        return wait_until(probe, timeout=timeout, what=what, diagnostics=lambda: self.diagnostics(sink))

    def wait_for_statuses(
        self, expected: dict[str, str], *, timeout: float = 30, sink: SmtpSink | None = None
    ) -> None:
        """Wait until the whole outbox (digests and letters) is exactly ``expected``."""
        self.wait(
            lambda: self.statuses() == expected, f"outbox statuses {expected}", timeout=timeout, sink=sink
        )

    def wait_for_sweeps(self, worker: Proc, more: int, *, timeout: float = 30) -> None:
        """Wait until ``worker`` has finished ``more`` further sweeps (its log says so for each)."""
        target = worker.count(r"\bsweep: ") + more
        self.wait(
            lambda: worker.count(r"\bsweep: ") >= target,
            f"{more} more sweeps in {worker.name}",
            timeout=timeout,
        )
