"""An event storm: the same events sent many times over, shuffled, by several ``caseloop events
import`` processes at once (and by several API clients at once to ``caseloop web``) while a worker
and a beat run. Each event is taken once; one that came
before its case is rejected with a reason and kept, and ``events retry`` takes it once its case is
there; the cases end right and each acknowledgement letter goes once.
"""

from __future__ import annotations

import random
import subprocess
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.engine import Engine, caseloop_script
from tests.e2e.services import SmtpSink, free_port, wait_until
from tests.factories import event, jsonl, referral
from tests.failure import invariants

pytestmark = [pytest.mark.failure, pytest.mark.redis, pytest.mark.postgres]

CASES = 6
SENDERS = 4
COPIES = 3  # each sender sends every event this many times, in its own shuffled order


def _storm_events() -> list[dict[str, Any]]:
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    events: list[dict[str, Any]] = []
    for n in range(1, CASES + 1):
        events.append(
            referral(
                f"S{n}",
                at.isoformat(),
                child={"name": "Child Example", "dob": "2016-05-01"},
                referrer={
                    "source": "2A",
                    "organisation": "Test Primary",
                    "name": "Ms Lead",
                    "email": f"ref{n}@school.example",
                },
            )
        )
        events.append(
            event("worker.allocated", f"S{n}", (at + timedelta(minutes=30)).isoformat(), worker="sw1")
        )
    return events


def test_duplicate_shuffled_events_from_four_importers_at_once_are_each_taken_once(
    postgres_schema_url: str, redis_db_url: str, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(postgres_schema_url, broker_url=redis_db_url, smtp_url=smtp_sink.url)
    engine.prepare([])
    worker = engine.start("worker")
    engine.start("beat")
    events = _storm_events()
    ids = [e["id"] for e in events]
    assert len(set(ids)) == len(events)

    rng = random.Random(20261202)
    senders = []
    for s in range(SENDERS):
        storm = [e for _ in range(COPIES) for e in events]
        rng.shuffle(storm)
        path = engine.root / f"storm{s}.jsonl"
        path.write_text("".join(jsonl(*storm)), encoding="utf-8")
        senders.append(
            subprocess.Popen(
                [str(caseloop_script()), "events", "import", str(path), "--json"],
                cwd=engine.root,
                env=engine.env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for sender in senders:
        _out, err = sender.communicate(timeout=120)
        # 0: all taken; 1: some came before their case and were kept as rejected. Never 2.
        assert sender.returncode in (0, 1), err

    engine.cli("events", "retry", check=False)  # what came too early, now that its case is here
    statuses = Counter(
        engine.scalar(f"SELECT status FROM received_events WHERE event_id = '{event_id}'") for event_id in ids
    )
    assert statuses == Counter({"accepted": len(ids)}), engine.cli("events", "rejected", check=False).stdout
    # One row per event however often it came (caseloop's own events, a letter sent, aside).
    received = "SELECT count(*) FROM received_events WHERE event_id NOT LIKE 'caseloop:%'"
    assert engine.scalar(received) == len(ids)
    for n in range(1, CASES + 1):
        case = engine.cli_json("case", "show", f"S{n}")
        assert case["worker"] == "sw1", case

    letters = {f"ref{n}@school.example" for n in range(1, CASES + 1)}
    engine.wait(
        lambda: letters <= set(smtp_sink.recipients()), "each acknowledgement letter to go", sink=smtp_sink
    )
    engine.wait_for_sweeps(worker, 3)
    assert {a: n for a, n in smtp_sink.recipients().items() if a in letters} == dict.fromkeys(letters, 1)
    invariants.check(engine, smtp_sink, posted_event_ids=ids)


API_SENDERS = 4
API_REQUEST_EVENTS = 4  # small requests, so the senders' transactions interleave on the cases
RESENDS = 20  # tries of one request that is answered 503 (the database failed: send it again)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_duplicate_shuffled_events_from_four_api_clients_at_once_are_each_taken_once(
    postgres_schema_url: str, redis_db_url: str, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    _api_storm(postgres_schema_url, redis_db_url, smtp_sink, make_engine, resend_503=True)


def test_api_clients_posting_the_same_events_at_once_are_never_answered_503(
    postgres_schema_url: str, redis_db_url: str, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    _api_storm(postgres_schema_url, redis_db_url, smtp_sink, make_engine, resend_503=False)


def _api_storm(
    postgres_schema_url: str,
    redis_db_url: str,
    smtp_sink: SmtpSink,
    make_engine: Callable[..., Engine],
    *,
    resend_503: bool,
) -> None:
    """Four clients post every event three times over, shuffled, to a real ``caseloop web``.
    ``resend_503``: a 503 is sent again, as the API tells its callers (what it took is kept)."""
    engine = make_engine(postgres_schema_url, broker_url=redis_db_url, smtp_url=smtp_sink.url)
    engine.prepare([])
    token = engine.cli("tokens", "create", "storm", "--scope", "events:write").stdout.strip().splitlines()[-1]
    port = free_port()
    web = engine.start("web", "--port", str(port))
    worker = engine.start("worker")
    engine.start("beat")
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(f"{url}/healthz"), timeout=60, what="the web", diagnostics=web.log)
    events = _storm_events()
    ids = [e["id"] for e in events]

    rng = random.Random(20261203)
    storms = []
    for _ in range(API_SENDERS):
        storm = [e for _ in range(COPIES) for e in events]
        rng.shuffle(storm)
        storms.append(storm)
    start = threading.Barrier(API_SENDERS)

    def send(storm: list[dict[str, Any]]) -> Counter[str]:
        seen: Counter[str] = Counter()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            start.wait()  # every sender begins together
            for at in range(0, len(storm), API_REQUEST_EVENTS):
                chunk = storm[at : at + API_REQUEST_EVENTS]
                for _attempt in range(RESENDS if resend_503 else 1):
                    answer = client.post("/api/events", json={"events": chunk})
                    if answer.status_code != 503:
                        break
                    seen["503"] += 1
                assert answer.status_code == 200, f"{answer.status_code}: {answer.text}"
                results = answer.json()["results"]
                assert [r["id"] for r in results] == [e["id"] for e in chunk]
                seen.update(r["status"] for r in results)
        return seen

    with ThreadPoolExecutor(API_SENDERS) as pool:
        answered = sum((f.result(timeout=120) for f in [pool.submit(send, s) for s in storms]), Counter())
    resent = answered.pop("503", 0)
    # Every copy was answered, and nothing was refused for what it says: only order or repetition.
    assert sum(answered.values()) == API_SENDERS * COPIES * len(events), f"{resent} resent after a 503"
    assert answered.keys() <= {"accepted", "duplicate", "rejected"}, answered
    assert answered["accepted"] <= len(events)

    engine.cli("events", "retry", check=False)  # what came before its case, now that the case is here
    statuses = Counter(
        engine.scalar(f"SELECT status FROM received_events WHERE event_id = '{event_id}'") for event_id in ids
    )
    assert statuses == Counter({"accepted": len(ids)}), engine.cli("events", "rejected", check=False).stdout
    received = "SELECT count(*) FROM received_events WHERE event_id NOT LIKE 'caseloop:%'"
    assert engine.scalar(received) == len(ids)
    for n in range(1, CASES + 1):
        case = engine.cli_json("case", "show", f"S{n}")
        assert case["worker"] == "sw1", case

    letters = {f"ref{n}@school.example" for n in range(1, CASES + 1)}
    engine.wait(
        lambda: letters <= set(smtp_sink.recipients()), "each acknowledgement letter to go", sink=smtp_sink
    )
    engine.wait_for_sweeps(worker, 3)
    assert {a: n for a, n in smtp_sink.recipients().items() if a in letters} == dict.fromkeys(letters, 1)
    invariants.check(engine, smtp_sink, posted_event_ids=ids)
