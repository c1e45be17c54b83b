"""Who sees which open loops, read in two parts (the teams a manager sees whole, by the clocks'
own team; and the cases allocated to them elsewhere, by case): the two together are exactly the
cases the rule lets them see, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from config.wiring import Runtime
from services import open_loops
from services.actors import staff_member
from tests.factories import event, import_events, import_staff, referral

NOW = datetime(2026, 11, 9, 10, 0, tzinfo=UTC)


def _refs(rt: Runtime, staff_id: str, team: str | None = None) -> set[str]:
    with rt.reading() as uow:
        actor = staff_member(uow.session, staff_id, NOW.date())
    found = open_loops.open_loops(rt, actor, team=team, limit=100, now=NOW)
    assert found.total == len(found.items)
    return {loop.ref for loop in found.items}


def test_a_manager_sees_the_loops_of_their_teams_and_of_their_own_cases_elsewhere(runtime: Runtime) -> None:
    import_staff(runtime)
    report = import_events(
        runtime,
        referral("HOME", "2026-11-02T09:00:00+00:00"),
        referral("MINE", "2026-11-02T09:00:00+00:00", team="south"),
        referral("AWAY", "2026-11-02T09:00:00+00:00", team="south"),
        event("worker.allocated", "MINE", "2026-11-02T10:00:00+00:00", worker="TM1"),
        now="2026-11-02T12:00:00+00:00",
    )
    assert report.ok, report.rejected
    assert _refs(runtime, "TM1") == {"HOME", "MINE"}
    assert _refs(runtime, "SM1") == {"HOME"}  # MINE is not theirs, nor in a team of theirs
    assert _refs(runtime, "SM1", team="front-door") == {"HOME"}
    assert _refs(runtime, "W1") == set()
