"""No name, address or case detail in any Redis message or log line (issue 3, "Done when").

Canary values are planted in every personal field of a referral and in the staff names; the
engine runs on a private Redis whose every command is recorded with ``redis-cli MONITOR``; the
worker's and the beat's logs are collected; no canary may appear in either, decoded or not. The
referral owes its referrer an acknowledgement letter, so a letter goes through the same queues and
logs as the staff digests (and its duty is fulfilled) while everything is recorded.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.canaries import canaries_in, canary_referral, readable_forms
from tests.e2e.engine import Engine, front_door_staff
from tests.e2e.services import RedisMonitor, RedisServer, SmtpSink
from workflow.reminders import DIGEST_KIND

CANARIES = {
    "child": "Zqxchildcanary Alpha",
    "mother": "Zqxmothercanary Bravo",
    "father": "Zqxfathercanary Charlie",
    "address1": "17 Zqxaddresscanary Road, Delta",
    "address2": "9 Zqxsecondaddress Lane, Echo",
    "email": "zqxparentcanary@family.example",
    "school": "Zqxschoolcanary Primary",
    "dsl": "Zqxdslcanary Foxtrot",
    "referrer": "Zqxreferrercanary Golf",
    "organisation": "Zqxorgcanary Health Trust",
    "referrer_address": "1 Zqxreferreraddress Street",
    "referrer_email": "zqxreferreremail@referrer.example",
    "school_email": "zqxschoolemail@school.example",
}
HOUSEHOLD = ("mother", "father", "address1", "address2", "email")
STAFF_CANARIES = {
    "sw1": "Zqxworkercanary Hotel",
    "tm1": "Zqxteamcanary India",
    "sm1": "Zqxservicecanary Juliet",
}


def _needles(values: list[str] | None = None) -> list[str]:
    # Each value whole, and each distinctive word on its own (a log might print part of a name).
    values = values if values is not None else [*CANARIES.values(), *STAFF_CANARIES.values()]
    words = {w.strip(",") for v in values for w in v.split() if w.lower().startswith("zqx")}
    return sorted(set(values) | words)


def _monitor_line(args: list[object]) -> str:
    """How ``redis-cli MONITOR`` shows kombu pushing a task message whose arguments are ``args``."""
    body = base64.b64encode(json.dumps([args, {}, {}]).encode()).decode()
    envelope = json.dumps(
        {"body": body, "content-encoding": "utf-8", "headers": {"task": "caseloop.deliver"}}
    )
    return (
        '1764390000.1 [0 127.0.0.1:5555] "LPUSH" "caseloop.delivery" "' + envelope.replace('"', '\\"') + '"'
    )


def test_the_scan_finds_a_canary_in_a_base64_kombu_body_seen_through_monitor() -> None:
    assert "Zqxchildcanary" not in _monitor_line([{"name": "Zqxchildcanary Alpha"}])  # only encoded
    assert canaries_in(_monitor_line([{"name": "Zqxchildcanary Alpha"}]), ["zqxchildcanary"]) == [
        "zqxchildcanary"
    ]
    assert canaries_in(_monitor_line([42]), ["zqxchildcanary"]) == []
    assert canaries_in("sent to Zqxchildcanary", ["zqxchildcanary"]) == ["zqxchildcanary"]


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
def test_no_canary_in_redis_traffic_or_any_log_line(
    postgres_schema_url: str,
    private_redis: RedisServer,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    make_engine: Callable[..., Engine],
) -> None:
    monitor = RedisMonitor(private_redis.port, tmp_path / "redis-monitor.txt")
    try:
        engine = make_engine(postgres_schema_url, broker_url=private_redis.url(0), smtp_url=smtp_sink.url)
        engine.prepare(canary_referral("C1", CANARIES), staff=front_door_staff(STAFF_CANARIES))
        smtp_sink.transient_rcpt_failures = 1  # one 451, so the retry path logs too
        worker = engine.start("worker")
        engine.start("beat")
        # The whole outbox: a digest for each member of staff and the referrer's acknowledgement.
        engine.wait_for_statuses(
            {"sw1": "sent", "tm1": "sent", "sm1": "sent", "referrer": "sent"}, sink=smtp_sink, timeout=40
        )
        engine.wait_for_sweeps(worker, 2)
    finally:
        monitor.stop()
    engine.stop_all()  # so the logs are complete, shutdown included

    traffic = monitor.text()
    # The capture saw the task messages and the scan decodes their bodies: ids only.
    decoded = readable_forms(traffic)
    assert "caseloop.deliver" in decoded and "caseloop.sweep" in decoded
    outbox = engine.outbox()
    assert sorted((r["kind"], r["duty"], r["recipient"]) for r in outbox) == [
        ("referrer_acknowledgement", "referrer_acknowledgement", "referrer"),
        *[(DIGEST_KIND, None, staff) for staff in ("sm1", "sw1", "tm1")],
    ]
    for row in outbox:  # the letter's task too
        assert f"[[{row['id']}], {{}}" in decoded
    # The letter's going fulfilled its duty (in the worker, whose log is scanned below).
    assert engine.scalar("SELECT status FROM clocks WHERE name = 'referrer_acknowledgement'") == "met_late"
    assert any("attempt 1 retrying" in log for log in engine.logs().values())

    needles = _needles()
    assert canaries_in(traffic, needles) == [], "personal data in Redis traffic"
    for name, log in engine.logs().items():
        assert canaries_in(log, needles) == [], f"personal data in the {name} log"
    staff_addresses = [f"{sid}@council.example" for sid in STAFF_CANARIES]
    assert smtp_sink.recipients() == Counter(dict.fromkeys([*staff_addresses, CANARIES["referrer_email"]], 1))
    # Emails to staff carry no child's (or family's, or referrer's) details at all, only a link.
    family = [w for w in needles if not any(w in s or s in w for s in STAFF_CANARIES.values())]
    to_staff = [m for m in smtp_sink.received() if set(m.rcpt_tos) <= set(staff_addresses)]
    assert len(to_staff) == 3
    for message in to_staff:
        assert canaries_in(message.subject + "\n" + message.text, family) == []
        assert "https://caseloop.council.example/cases/C1" in message.text
    # The letter is for the referrer: it names them and the child they referred (so the canaries
    # really went through the letter's path), and nothing of the household.
    [letter] = [m for m in smtp_sink.received() if m.rcpt_tos == (CANARIES["referrer_email"],)]
    body = letter.subject + "\n" + letter.text
    named = [CANARIES["referrer"], CANARIES["child"]]
    assert canaries_in(body, named) == named
    assert canaries_in(body, _needles([CANARIES[k] for k in HOUSEHOLD])) == []
