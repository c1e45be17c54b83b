"""The deployment docker-compose.yml declares, run on this machine: its processes, its commands, its
settings, and a demo week of a borough's events through the API.

The compose file is read, not copied: each caseloop service's ``command`` is given to the
``caseloop`` console script (the image's entry point) and its ``CASELOOP_*`` environment is
resolved as compose would resolve it, from values the test supplies where compose demands them
(``${NAME:?…}``) and compose's defaults elsewhere. Only what exists inside containers alone is
replaced: the database and broker hosts (a schema and a Redis database of the test's own), the
SMTP server (a sink), the data volume (tmp_path) and the web's port. The environment stays
``production``, so the processes run with every check production makes. Two test settings are
added: a short sweep interval, and a policy whose office hours are the whole day, because the
workers use the real clock and the test must pass at any hour.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from config.policy import load_policy_file
from messaging.email import REFERENCE_HEADER
from tests.e2e.engine import REPO, Engine, Proc
from tests.e2e.services import SmtpSink, free_port
from tests.failure import invariants
from workflow.demo import Borough, staff_csv
from workflow.reminders import DIGEST_KIND

pytestmark = [pytest.mark.failure, pytest.mark.redis, pytest.mark.postgres]

COMPOSE = REPO / "docker-compose.yml"
ENTRYPOINT = "caseloop"
PER_WEEK = 50  # referrals in the demo week: a few hundred events, about a hundred messages
REQUEST_EVENTS = 100  # events per POST: well inside the API's limit, several requests in all
STARTUP_SECONDS = 60.0
DELIVERY_SECONDS = 75.0
_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:[-?])(?P<arg>[^}]*))?\}")


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def entrypoint() -> str:
    """The image's ENTRYPOINT, which each service's ``command`` is the arguments of."""
    found = re.search(r"^ENTRYPOINT \[\"([^\"]+)\"\]", (REPO / "Dockerfile").read_text(), flags=re.M)
    assert found, "the Dockerfile has no exec-form ENTRYPOINT"
    return found.group(1)


def interpolate(value: str, supplied: dict[str, str]) -> str:
    """``value`` with compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?message}`` resolved
    against ``supplied`` (the shell environment compose would read)."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        given = supplied.get(name, "")
        if op == ":?" and not given:
            raise AssertionError(f"compose would refuse to start: {name} is required ({arg})")
        if op == ":-" and not given:
            return arg
        return given

    return _INTERPOLATION.sub(one, value)


def replicas(service: dict[str, Any]) -> int:
    return int(service.get("deploy", {}).get("replicas", 1))


def service_env(service: dict[str, Any], supplied: dict[str, str], local: dict[str, str]) -> dict[str, str]:
    """The service's ``CASELOOP_*`` environment as compose resolves it, then ``local`` in place of
    what only containers have. Every name ``local`` replaces must be one the compose file sets."""
    env = {k: interpolate(str(v), supplied) for k, v in service["environment"].items()}
    assert set(local) <= set(env), f"not in the compose file: {sorted(set(local) - set(env))}"
    return {k: v for k, v in {**env, **local}.items() if k.startswith("CASELOOP_")}


def every_day_policy(path: Path) -> Path:
    """The shipped policy with reminders every day at every hour: the workers use the real clock."""
    data = yaml.safe_load((REPO / "config" / "policy.yaml").read_text(encoding="utf-8"))
    data["reminders"]["days"] = "all"
    data["reminders"]["office_hours"] = {"start": "00:00", "end": "23:59:59"}
    data["version"] = f"{data['version']}-topology"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _sent_by(proc: Proc) -> set[int]:
    return {int(n) for n in re.findall(r"outbox (\d+) sent through", proc.log())}


def test_the_compose_topology_delivers_a_demo_week_posted_through_the_api(
    tagged_schema: tuple[str, str],
    redis_db_url: str,
    smtp_sink: SmtpSink,
    make_engine: Callable[..., Engine],
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    # The services run from caseloop's image (the others are PostgreSQL's and Redis's own).
    services = {name: s for name, s in compose()["services"].items() if s.get("build") == "."}
    assert services.keys() == {"migrate", "worker", "beat", "web"}, services.keys()
    assert entrypoint() == ENTRYPOINT
    database_url, _ = tagged_schema

    # What an operator exports before `docker compose up` (the values compose demands).
    supplied = {
        "POSTGRES_PASSWORD": "not used: the test's database trusts local connections",
        "CASELOOP_SMTP_URL": smtp_sink.url,
        "CASELOOP_SECRET_KEY": secrets.token_urlsafe(32),
    }
    engine = make_engine(database_url)
    policy = every_day_policy(engine.root / "policy.yaml")
    local = {
        "CASELOOP_DATABASE_URL": database_url,
        "CASELOOP_BROKER_URL": redis_db_url,
        "CASELOOP_VAR_DIR": str(engine.var_dir),
    }
    test_only = {"CASELOOP_SWEEP_INTERVAL_SECONDS": "2", "CASELOOP_POLICY_FILE": str(policy)}
    envs = {name: {**service_env(services[name], supplied, local), **test_only} for name in services}
    for name in ("migrate", "worker", "beat", "web"):
        env = envs[name]
        assert env["CASELOOP_ENVIRONMENT"] == "production", name
        assert env["CASELOOP_SMTP_URL"] == smtp_sink.url, name
    assert envs["web"]["CASELOOP_SECRET_KEY"] == supplied["CASELOOP_SECRET_KEY"]
    workers = replicas(services["worker"])
    assert workers == 2, "the compose file runs two workers"
    assert int(envs["worker"]["CASELOOP_DELIVERY_WORKERS"]) == workers
    assert replicas(services["beat"]) == 1, "exactly one beat"

    port = free_port()

    # The engine's settings are replaced whole: none of the harness's test settings remain.
    def start(name: str, replica: int = 1) -> Proc:
        command = [str(part) for part in services[name]["command"]]
        if name == "web":  # the container's port and all interfaces -> a free port on loopback
            command = _local_web(command, port)
        engine.settings = envs[name]
        return engine.start(command[0], *command[1:], name=f"{name}{replica}")

    engine.settings = envs["migrate"]
    engine.cli(*[str(part) for part in services["migrate"]["command"]])

    engine.settings = envs["web"]
    staff = engine.root / "staff.csv"
    staff.write_text(staff_csv(), encoding="utf-8")
    assert "rejected 0" in engine.cli("staff", "import", str(staff)).stdout
    token = (
        engine.cli("tokens", "create", "topology", "--scope", "events:write").stdout.strip().splitlines()[-1]
    )

    web = start("web")
    url = f"http://127.0.0.1:{port}"
    engine.wait(
        lambda: (r := _get(f"{url}/healthz")) is not None and r.status_code == 200,
        "the web to answer /healthz",
        timeout=STARTUP_SECONDS,
    )

    # The demo week, dated to now, posted in order as a case system would send it.
    zone = ZoneInfo(envs["web"]["CASELOOP_TIMEZONE"])
    calendar = load_policy_file(policy).working_calendar()
    events = Borough(seed=2026, weeks=1, per_week=PER_WEEK, zone=zone, calendar=calendar).events(
        datetime.now(UTC)
    )
    assert len(events) > REQUEST_EVENTS
    statuses: Counter[str] = Counter()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for chunk in _chunks(events, REQUEST_EVENTS):
            answer = client.post("/api/events", json={"events": chunk})
            assert answer.status_code == 200, answer.text
            results = answer.json()["results"]
            assert [r["id"] for r in results] == [e["id"] for e in chunk]
            statuses.update(r["status"] for r in results)
    assert statuses == Counter({"accepted": len(events)}), statuses

    # The workers and the beat start once the week is in: the day's reminders are planned once,
    # by its first sweep, so a sweep before the events would leave the digests to tomorrow.
    worker_procs = [start("worker", n) for n in range(1, workers + 1)]
    start("beat")

    def settled() -> bool:
        now = datetime.now(UTC)
        rows = invariants._rows(engine, "SELECT kind, status, next_attempt_at FROM outbox")
        due = [r for r in rows if (invariants._aware(r["next_attempt_at"]) or now) <= now]
        digests = [r for r in rows if r["kind"] == DIGEST_KIND]
        return bool(digests) and not any(r["status"] in {"queued", "sending"} for r in due)

    engine.wait(settled, "every message due to be delivered", timeout=DELIVERY_SECONDS, sink=smtp_sink)

    ready = _get(f"{url}/readyz")
    assert ready is not None and ready.status_code == 200, ready.text if ready else "no answer"
    assert ready.json()["status"] == "ready"
    assert web.alive() and all(w.alive() for w in worker_procs)

    outbox = invariants._rows(
        engine, "SELECT id, idempotency_key, kind, channel, duty, status, recipient_role FROM outbox"
    )
    sent = [r for r in outbox if r["status"] == "sent"]
    emails = Counter(str(m.message[REFERENCE_HEADER]) for m in smtp_sink.received())
    # Every email the outbox says went arrived once, and nothing else arrived.
    assert emails == Counter(r["idempotency_key"] for r in sent if r["channel"] == "smtp")
    printed = [p.name for p in (engine.var_dir / "print").rglob("outbox-*.pdf")]
    # Each posted letter waits once for the post room, named by its outbox row.
    assert Counter(printed) == Counter(f"outbox-{r['id']}.pdf" for r in sent if r["channel"] == "print")
    # The letters that were due went: acknowledgements to referrers among them; reminder digests
    # reached staff (the policy's office hours are the whole day).
    kinds = Counter(r["duty"] for r in sent if r["duty"])
    assert kinds["referrer_acknowledgement"] > 0, kinds
    assert any(r["channel"] == "print" for r in sent), "no letter went by post"
    digests = {r["idempotency_key"] for r in outbox if r["kind"] == DIGEST_KIND}
    assert digests and digests <= {r["idempotency_key"] for r in sent}, "a digest did not go"
    staff_addresses = set(re.findall(r"[\w.]+@council\.example", staff_csv()))
    to_staff = [m for m in smtp_sink.received() if str(m.message[REFERENCE_HEADER]) in digests]
    assert len(to_staff) == len(digests)
    assert all(set(m.rcpt_tos) <= staff_addresses for m in to_staff)

    # Both workers delivered, and no message was delivered by both.
    by_worker = [_sent_by(w) for w in worker_procs]
    assert all(by_worker), f"deliveries per worker: {[len(s) for s in by_worker]}"
    assert not set.intersection(*by_worker)
    assert set.union(*by_worker) == {r["id"] for r in sent}

    invariants.check(engine, smtp_sink, posted_event_ids=[e["id"] for e in events])
    print(
        f"topology: {len(events)} events, {len(sent)} sent ({Counter(r['channel'] for r in sent)}), "
        f"per worker {[len(s) for s in by_worker]}, {time.monotonic() - started:.1f}s"
    )


def _local_web(command: list[str], port: int) -> list[str]:
    """The web's command with its ``--host`` and ``--port`` values for this machine."""
    local = list(command)
    for option, value in (("--host", "127.0.0.1"), ("--port", str(port))):
        assert option in local, f"the web's command has no {option}: {command}"
        local[local.index(option) + 1] = value
    return local


def test_interpolation_follows_compose() -> None:
    assert interpolate("${A:-x}/${B}", {"B": "b"}) == "x/b"
    assert interpolate("${A:-x}", {"A": "a"}) == "a"
    with pytest.raises(AssertionError, match="A is required"):
        interpolate("${A:?set A}", {})
    assert interpolate("plain", {}) == "plain"
