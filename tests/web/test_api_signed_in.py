"""The API for a member of staff signed in through the pages (a session, not a token): a worker
gets 404 for another team's case on every case endpoint, exactly as for a case that does not
exist; a team manager sees their team's case; a worker may not post events."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from config.settings import Settings
from config.wiring import Runtime, build_runtime
from migrations import upgrade
from services import access
from services.actors import SYSTEM
from tests.factories import MovableClock, event, import_events, import_staff, referral, staff_row
from tests.web.conftest import LiveServer
from tests.web.test_login import NOW, PASSWORD, log_in, token_in


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path / "var", password_hashing="fast")


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    upgrade(settings.database_url)
    rt = build_runtime(settings, MovableClock(NOW))
    import_staff(
        rt,
        staff_row("SM1", "service_manager"),
        staff_row("TM1", "team_manager", manager="SM1"),
        staff_row("W1", manager="TM1"),
        staff_row("TM2", "team_manager", team="south"),
        staff_row("W9", team="south", manager="TM2"),
    )
    for sid in ("W1", "TM1", "W9"):
        access.add_user(rt, SYSTEM, sid, PASSWORD)
    report = import_events(
        rt,
        referral("OURS/1", "2026-11-02", team="front-door"),
        event("worker.allocated", "OURS/1", "2026-11-02T11:00:00+00:00", worker="W1"),
        referral("THEIRS/2", "2026-11-02", team="south"),
        event("worker.allocated", "THEIRS/2", "2026-11-02T11:00:00+00:00", worker="W9"),
        now=NOW.isoformat(),
    )
    assert report.ok, report.rejected
    yield rt
    rt.close()


@contextmanager
def signed_in(live_server: LiveServer, staff_id: str) -> Iterator[httpx.Client]:
    with live_server.client() as http:
        assert log_in(http, staff_id).status_code == 303
        yield http


def case_answers(http: httpx.Client, ref: str) -> tuple[int, int, list[str]]:
    """(GET the case, GET its outbox, the cases in the overdue queue) as this caller sees them."""
    case = http.get(f"/api/cases/{quote(ref, safe='')}")
    outbox = http.get("/api/outbox", params={"case": ref})
    queue = http.get("/api/queue/overdue", params={"limit": 1000})
    assert queue.status_code == 200, queue.text
    cases = sorted({item["case"] for item in queue.json()["items"]})
    seen = [m["case"] for m in outbox.json()["items"]] if outbox.status_code == 200 else []
    assert set(seen) <= {ref}
    return case.status_code, len(seen), cases


def test_a_worker_gets_404_for_another_teams_case_on_every_case_endpoint(live_server: LiveServer) -> None:
    with signed_in(live_server, "W1") as http:
        theirs = http.get(f"/api/cases/{quote('THEIRS/2', safe='')}")
        missing = http.get(f"/api/cases/{quote('NO-SUCH/9', safe='')}")
        assert (theirs.status_code, missing.status_code) == (404, 404)
        assert theirs.json()["detail"].replace("THEIRS/2", "X") == missing.json()["detail"].replace(
            "NO-SUCH/9", "X"
        )
        _, letters, queue = case_answers(http, "THEIRS/2")
        assert (letters, "THEIRS/2" in queue) == (0, False)
        assert http.get(f"/api/cases/{quote('OURS/1', safe='')}").json()["case"] == "OURS/1"
        _, own_letters, _ = case_answers(http, "OURS/1")
        assert own_letters > 0
        # A member of staff signed in may read, not feed events; and a session's POST needs its token.
        page_token = token_in(http.get("/"))
        posted = http.post("/api/events", json={"events": []}, headers={"x-csrf-token": page_token})
        assert posted.status_code == 403, posted.text


def test_a_team_manager_sees_their_teams_case_and_not_another_teams(live_server: LiveServer) -> None:
    with signed_in(live_server, "TM1") as http:
        ours = http.get(f"/api/cases/{quote('OURS/1', safe='')}")
        assert ours.status_code == 200 and ours.json()["team"] == "front-door"
        assert http.get(f"/api/cases/{quote('THEIRS/2', safe='')}").status_code == 404
    with live_server.client() as nobody:  # neither a token nor a session
        answer = nobody.get(f"/api/cases/{quote('OURS/1', safe='')}")
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
