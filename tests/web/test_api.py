"""The integration API on a real uvicorn: who may call it, events in through the file's intake
path, and cases, the overdue queue and the outbox out, each within what the caller may see."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from typer.testing import CliRunner

from cli.main import app
from config.settings import Settings
from config.wiring import Runtime, build_runtime
from messaging.outbox import OutboxMessage
from migrations import upgrade
from services import intake, queries, tokens
from services.actors import SYSTEM
from tests.factories import event, referral
from tests.web.conftest import LiveServer
from workflow.model import Case, ClockRow, HistoryEntry, ReceivedEvent
from workflow.timeutil import utc_now

ALL_SCOPES = ["events:write", "cases:read", "outbox:read"]


def token(rt: Runtime, name: str, scopes: list[str] = ALL_SCOPES, teams: tuple[str, ...] = ()) -> str:
    return tokens.create(rt, SYSTEM, name, scopes, teams).token


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def days_ago(days: int) -> str:
    return (utc_now() - timedelta(days=days)).isoformat(timespec="seconds")


def post(http: httpx.Client, key: str, *events: dict[str, Any]) -> httpx.Response:
    return http.post("/api/events", json={"events": list(events)}, headers=bearer(key))


def test_no_token_a_wrong_one_or_a_revoked_one_is_401_and_a_missing_scope_403(
    live_server: LiveServer,
) -> None:
    rt = live_server.runtime
    reader = token(rt, "reader", ["cases:read"])
    revoked = token(rt, "gone")
    tokens.revoke(rt, SYSTEM, "gone")
    with live_server.client() as http:
        answers = {
            "none": http.get("/api/queue/overdue"),
            "basic": http.get("/api/queue/overdue", headers={"Authorization": "Basic eDp5"}),
            "unknown": http.get("/api/queue/overdue", headers=bearer("cl_" + "a" * 43)),
            "revoked": http.get("/api/queue/overdue", headers=bearer(revoked)),
            "events without a token": http.post("/api/events", json={"events": []}),
        }
        for what, answer in answers.items():
            assert answer.status_code == 401, what
            assert answer.headers["www-authenticate"] == "Bearer", what
            assert answer.json()["detail"], what
        assert answers["revoked"].json() == {
            "detail": "the API token is not valid: it is unknown or was revoked"
        }

        refused = post(http, reader, referral("C-1", days_ago(2)))
        assert refused.status_code == 403
        assert refused.json() == {"detail": "the token reader lacks the scope events:write"}
        assert http.get("/api/outbox", headers=bearer(reader)).status_code == 403
        assert http.get("/api/queue/overdue", headers=bearer(reader)).status_code == 200
    assert intake.list_rejected(rt, SYSTEM) == []
    with rt.db.transaction() as session:
        assert session.scalars(select(ReceivedEvent)).all() == []  # the refused request left nothing


def test_a_token_limited_to_a_team_gets_404_for_another_teams_case_as_for_none(
    live_server: LiveServer,
) -> None:
    rt = live_server.runtime
    feed = token(rt, "feed")
    front_door = token(rt, "front-door-reader", ["cases:read", "outbox:read"], ("front-door",))
    with live_server.client() as http:
        sent = post(http, feed, referral("C-1", days_ago(3)), referral("C-2", days_ago(3), team="east"))
        assert [r["status"] for r in sent.json()["results"]] == ["accepted", "accepted"]

        mine = http.get("/api/cases/C-1", headers=bearer(front_door))
        theirs = http.get("/api/cases/C-2", headers=bearer(front_door))
        missing = http.get("/api/cases/C-9", headers=bearer(front_door))
        everyone = http.get("/api/cases/C-2", headers=bearer(feed))
        outbox = http.get("/api/outbox", headers=bearer(front_door), params={"case": "C-2"})
        overdue = http.get("/api/queue/overdue", headers=bearer(front_door))
    assert mine.status_code == 200
    assert mine.json() == json.loads(json.dumps(queries.case(rt, SYSTEM, "C-1")))
    assert (theirs.status_code, missing.status_code) == (404, 404)
    assert theirs.json() == {"detail": "no case 'C-2'"}
    assert missing.json() == {"detail": "no case 'C-9'"}  # the same words: nothing says C-2 exists
    assert everyone.status_code == 200 and everyone.json()["team"] == "east"
    assert outbox.status_code == 200 and outbox.json()["items"] == [] and outbox.json()["total"] == 0
    assert {row["team"] for row in overdue.json()["items"]} <= {"front-door"}


def test_events_are_answered_one_by_one_in_order_kept_when_rejected_and_idempotent(
    live_server: LiveServer,
) -> None:
    rt = live_server.runtime
    feed = token(rt, "case-system")
    good = referral("C-1", days_ago(2), id="e-1")
    unknown_case = event("decision.made", "C-404", days_ago(1), id="e-2", outcome="nfa")
    malformed = {"id": "e-3", "case": "C-1", "type": "no.such.type", "at": days_ago(1)}
    with live_server.client() as http:
        first = post(http, feed, good, good, unknown_case, malformed)
        assert first.status_code == 200
        results = first.json()["results"]
        assert [(r["id"], r["status"]) for r in results] == [
            ("e-1", "accepted"),
            ("e-1", "duplicate"),
            ("e-2", "rejected"),
            ("e-3", "rejected"),
        ]
        assert results[0]["reason"] is None
        assert results[1]["reason"] == "line 2: event e-1 was already accepted; skipped"
        assert results[2]["reason"].startswith("line 3: ")
        assert results[3]["reason"].startswith("line 4: field type")

        rejected = intake.list_rejected(rt, SYSTEM)  # as `caseloop events rejected` lists them
        assert [(r.event, r.source, r.line, r.reason) for r in rejected] == [
            ("e-2", "api:case-system", 3, results[2]["reason"]),
            ("e-3", "api:case-system", 4, results[3]["reason"]),
        ]
        again = post(http, feed, good, unknown_case).json()["results"]
    # The same events again change nothing: each is a duplicate of what was kept.
    assert [(r["id"], r["status"]) for r in again] == [("e-1", "duplicate"), ("e-2", "duplicate")]
    assert again[1]["reason"] == "line 2: event e-2 was already received and is waiting for a retry; skipped"
    assert len(intake.list_rejected(rt, SYSTEM)) == 2
    with rt.db.transaction() as session:
        assert session.query(Case).count() == 1


def test_an_event_a_file_would_refuse_is_refused_alone_and_kept(live_server: LiveServer) -> None:
    rt = live_server.runtime
    feed = token(rt, "feed")
    # Written by hand: a duplicate key and a 20-digit number, which a JSON parser would smooth over.
    first = json.dumps(referral("C-1", days_ago(2), id="e-1"))
    at = json.dumps(days_ago(1))
    twice = '{"id": "e-2", "id": "e-3", "case": "C-1", "type": "case.closed", "at": ' + at + "}"
    long_number = '{"id": "e-4", "case": "C-1", "type": "x", "at": 12345678901234567890}'
    body = '{"events": [' + ", ".join([first, twice, long_number]) + "]}"
    with live_server.client() as http:
        answer = http.post(
            "/api/events", content=body, headers={**bearer(feed), "Content-Type": "application/json"}
        )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected"]
    assert results[1]["reason"] == "line 2: field (line): the key 'id' appears twice in one object"
    assert results[2]["reason"] == "line 3: field (line): a number has more than 15 digits"
    assert [r.line for r in intake.list_rejected(rt, SYSTEM)] == [2, 3]


def test_a_body_that_is_not_a_list_of_events_or_too_many_is_refused_whole(live_server: LiveServer) -> None:
    rt = live_server.runtime
    feed = token(rt, "feed")
    with live_server.client() as http:

        def send(content: str) -> httpx.Response:
            return http.post(
                "/api/events", content=content, headers={**bearer(feed), "Content-Type": "application/json"}
            )

        too_many = send(json.dumps({"events": [{"id": f"e-{i}"} for i in range(5001)]}))
        not_json = send('{"events": [')
        not_objects = send('{"events": [{}, 42]}')
        other_keys = send('{"events": [], "extra": 1}')
    assert (too_many.status_code, too_many.json()) == (
        422,
        {"detail": "events: 5,001 events in one request; at most 5,000: send the rest in further requests"},
    )
    assert not_json.status_code == 422 and not_json.json()["detail"].startswith(
        "the request body is not JSON"
    )
    assert not_objects.json() == {"detail": "events[1]: each event must be a JSON object"}
    assert other_keys.status_code == 422 and "'extra'" in other_keys.json()["detail"]
    with rt.db.transaction() as session:
        assert session.scalars(select(ReceivedEvent)).all() == []


def test_the_overdue_queue_and_the_outbox_come_in_pages(live_server: LiveServer) -> None:
    rt = live_server.runtime
    feed = token(rt, "feed")
    with live_server.client() as http:
        post(http, feed, *[referral(f"C-{n}", days_ago(20)) for n in range(1, 6)])
        whole = http.get("/api/queue/overdue", headers=bearer(feed), params={"limit": 1000}).json()
        page = http.get("/api/queue/overdue", headers=bearer(feed), params={"limit": 2, "offset": 1}).json()
        letters = http.get("/api/outbox", headers=bearer(feed), params={"limit": 2}).json()
        rest = http.get("/api/outbox", headers=bearer(feed), params={"limit": 100, "offset": 2}).json()
        queued = http.get("/api/outbox", headers=bearer(feed), params={"status": "queued"}).json()
        bad = http.get("/api/outbox", headers=bearer(feed), params={"status": "lost"})
        too_big = http.get("/api/queue/overdue", headers=bearer(feed), params={"limit": 5000})
    assert whole["total"] >= 5 and len(whole["items"]) == whole["total"]
    assert (page["total"], page["limit"], page["offset"]) == (whole["total"], 2, 1)
    assert page["items"] == whole["items"][1:3]
    every = queries.outbox(rt, SYSTEM)
    assert letters["total"] == len(every) >= 5
    assert [m["id"] for m in letters["items"] + rest["items"]] == [m["id"] for m in every]
    assert {m["status"] for m in queued["items"]} <= {"queued"}
    assert bad.status_code == 422 and bad.json()["detail"].startswith("status 'lost' is not one of held")
    assert too_big.status_code == 422
    assert too_big.json() == {"detail": "query limit: Input should be less than or equal to 1000"}


def test_a_case_reference_is_taken_url_encoded(live_server: LiveServer) -> None:
    rt = live_server.runtime
    feed = token(rt, "feed")
    with live_server.client() as http:
        post(http, feed, referral("CS/2026 #1?", days_ago(2)))
        found = http.get("/api/cases/CS%2F2026%20%231%3F", headers=bearer(feed))
        nul = http.get("/api/cases/C%00", headers=bearer(feed))
    assert found.status_code == 200 and found.json()["case"] == "CS/2026 #1?"
    assert nul.status_code == 404 and nul.json() == {"detail": "no case 'C\\x00'"}


# Columns filled from the moment of import, or ids: not compared.
def _snapshot(rt: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    def value(v: Any) -> Any:
        return (
            v.isoformat()
            if hasattr(v, "isoformat")
            else json.dumps(v, sort_keys=True)
            if isinstance(v, (dict, list))
            else v
        )

    with rt.db.transaction() as session:
        refs = dict(session.execute(select(Case.id, Case.ref)).all())
        cases = [
            tuple(
                value(getattr(c, f))
                for f in (
                    "ref",
                    "state",
                    "episode",
                    "team",
                    "worker",
                    "referral_at",
                    "referral_source",
                    "decision",
                    "factors",
                    "flags",
                    "child",
                    "referrer",
                    "household",
                    "closed_at",
                    "closure_reason",
                )
            )
            for c in session.scalars(select(Case))
        ]
        clocks = [
            (
                refs[c.case_id],
                *(
                    value(getattr(c, f))
                    for f in (
                        "episode",
                        "name",
                        "seq",
                        "started_at",
                        "counted_from",
                        "due_on",
                        "status",
                        "stopped_on",
                    )
                ),
            )
            for c in session.scalars(select(ClockRow))
        ]
        outbox = [
            (
                refs.get(m.case_id),
                *(
                    value(getattr(m, f))
                    for f in (
                        "idempotency_key",
                        "kind",
                        "recipient_role",
                        "recipient",
                        "address",
                        "channel",
                        "status",
                        "duty",
                        "source_event",
                    )
                ),
            )
            for m in session.scalars(select(OutboxMessage))
        ]
        history = [
            (refs[h.case_id], h.episode, h.kind, value(h.at)) for h in session.scalars(select(HistoryEntry))
        ]
        received = [
            (r.event_id, r.claimed_id, r.status, r.rejection_kind, r.reason, r.line_no)
            for r in session.scalars(select(ReceivedEvent))
        ]
    return {
        name: sorted(rows, key=repr)
        for name, rows in {
            "cases": cases,
            "clocks": clocks,
            "outbox": outbox,
            "history": history,
            "received": received,
        }.items()
    }


def test_the_api_and_events_import_leave_the_same_database(live_server: LiveServer, tmp_path: Path) -> None:
    events = [
        referral("C-1", days_ago(6), id="e-1"),
        event("decision.made", "C-1", days_ago(5), id="e-2", outcome="nfa"),
        referral("C-2", days_ago(4), id="e-3", team="east", source="1A"),
        event("decision.made", "C-9", days_ago(3), id="e-4", outcome="nfa"),  # no such case: kept
        {"id": "e-5", "case": "C-2", "type": "case.closed"},  # malformed: kept
        event("decision.made", "C-3", days_ago(2), id="e-6", outcome="nfa"),  # before its referral
        referral("C-3", days_ago(3), id="e-7"),
    ]
    with live_server.client() as http:
        answer = post(http, token(live_server.runtime, "feed"), *events)
    assert answer.status_code == 200
    assert [r["status"] for r in answer.json()["results"]] == [
        "accepted",
        "accepted",
        "accepted",
        "rejected",
        "rejected",
        "accepted",
        "accepted",
    ]

    file = tmp_path / "events.jsonl"
    file.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    other = Settings(database_url=f"sqlite:///{tmp_path / 'by-file.db'}")
    upgrade(other.database_url)
    done = CliRunner().invoke(
        app, ["events", "import", str(file)], env={"CASELOOP_DATABASE_URL": other.database_url}
    )
    assert done.exit_code == 1, done.output  # lines were rejected
    by_file = build_runtime(other)
    try:
        by_api, by_cli = _snapshot(live_server.runtime), _snapshot(by_file)
    finally:
        by_file.close()
    assert by_api["cases"] and by_api["clocks"] and by_api["outbox"] and by_api["history"]
    assert by_api == by_cli


def test_a_query_parameter_given_twice_is_refused_by_name(live_server: LiveServer) -> None:
    reader = token(live_server.runtime, "reader")
    with live_server.client() as http:
        answer = http.get("/api/outbox?case=A-1&case=B-2", headers=bearer(reader))
    assert answer.status_code == 422, answer.text
    assert "query case: given 2 times: give it once" in answer.json()["detail"]
