"""A first end-to-end path through intake and clocks on both databases."""

from __future__ import annotations

from config.wiring import Runtime
from services import intake, queries
from services.actors import SYSTEM
from tests.factories import event, instant, jsonl, referral


def test_referral_to_decision(runtime: Runtime) -> None:
    lines = jsonl(
        referral("C1", "2026-12-24"),
        event("decision.made", "C1", "2026-12-29", outcome="assessment"),
    )
    report = intake.import_events(runtime, SYSTEM, lines, "t.jsonl", instant("2026-12-30"))
    assert report.accepted == 2 and report.ok
    view = queries.case(runtime, SYSTEM, "C1", instant("2026-12-30"))
    clocks = {c["name"]: c for c in view["clocks"]}
    # 24 Dec is day 0; 25, 26 (Sat), 27 (Sun), 28 (Boxing Day substitute) do not count.
    assert clocks["decision"]["due"] == "2026-12-29"
    assert clocks["decision"]["status"] == "met"
    assert clocks["assessment"]["counted_from"] == "2026-12-24"
