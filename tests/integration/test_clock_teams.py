"""Every clock carries its case's team, on SQLite and PostgreSQL, whichever way its events came
in (a batch at once, or line by line): when the clock starts, when the case moves team, when a
closed case is referred again to another team (its earlier episode's clocks, still owed, move
with it). The team queue reads clocks by that copy, so a clock whose team drifted would vanish
from its team's queue and appear in another's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from config.wiring import Runtime
from services import queries, team_queue
from services.actors import SYSTEM, staff_member
from tests.factories import event, import_events, import_line_by_line, import_staff, referral
from workflow.model import Case, ClockRow

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
WHEN = "2026-11-09T09:00:00+00:00"


def _by_batch(rt: Runtime, *events: dict[str, Any]) -> None:
    report = import_events(rt, *events, now=WHEN)
    assert report.ok, report.rejected


def _line_by_line(rt: Runtime, *events: dict[str, Any]) -> None:
    report = import_line_by_line(rt, *events, now=WHEN)
    assert report.ok, report.rejected


TAKE = [pytest.param(_by_batch, id="batch"), pytest.param(_line_by_line, id="line-by-line")]


def _teams(rt: Runtime) -> dict[str, tuple[str, set[str]]]:
    """Each case's team and the teams its clocks carry."""
    with rt.reading() as uow:
        found = {ref: (team, set[str]()) for ref, team in uow.session.execute(select(Case.ref, Case.team))}
        query = select(Case.ref, ClockRow.team).join(Case, Case.id == ClockRow.case_id)
        for ref, team in uow.session.execute(query):
            found[ref][1].add(team)
    return found


@pytest.mark.parametrize("take", TAKE)
def test_a_clock_starts_with_its_case_team_and_moves_when_the_case_does(
    runtime: Runtime, take: Callable[..., None]
) -> None:
    take(
        runtime,
        referral("C1", "2026-11-02T09:00:00+00:00"),
        referral("C2", "2026-11-02T09:00:00+00:00"),
        event("decision.made", "C1", "2026-11-02T11:00:00+00:00", outcome="assessment"),
        event("case.transferred", "C1", "2026-11-03T14:00:00+00:00", team="south"),
    )
    # C1's clocks from before the move (its decision's) and after it (the assessment's) alike.
    assert _teams(runtime) == {"C1": ("south", {"south"}), "C2": ("front-door", {"front-door"})}
    take(runtime, event("case.transferred", "C1", "2026-11-04T14:00:00+00:00", team="north"))
    assert _teams(runtime)["C1"] == ("north", {"north"})


@pytest.mark.parametrize("take", TAKE)
def test_a_case_referred_again_to_another_team_takes_its_earlier_clocks_with_it(
    runtime: Runtime, take: Callable[..., None]
) -> None:
    take(
        runtime,
        referral("C1", "2026-10-26T09:00:00+00:00", id="one"),
        event("decision.made", "C1", "2026-10-26T11:00:00+00:00", outcome="nfa"),
        event("case.closed", "C1", "2026-10-27", reason="NFA"),
        referral("C1", "2026-11-02T09:00:00+00:00", id="two", team="north"),
    )
    with runtime.reading() as uow:
        episodes = set(uow.session.scalars(select(ClockRow.episode)))
    assert episodes == {1, 2}  # the first episode's clocks are still there, and moved
    assert _teams(runtime) == {"C1": ("north", {"north"})}


def test_the_team_queue_and_the_overdue_queue_of_a_team_follow_a_moved_case(runtime: Runtime) -> None:
    import_staff(runtime)
    _by_batch(
        runtime,
        referral("C1", "2026-11-02T09:00:00+00:00"),
        referral("C2", "2026-11-02T09:00:00+00:00"),
        event("case.transferred", "C2", "2026-11-03T09:00:00+00:00", team="south"),
    )
    overdue = queries.overdue_page(runtime, SYSTEM, 100, 0, "front-door", NOW)
    assert {r["case"] for r in overdue.items} == {"C1"} and overdue.total == len(overdue.items)
    moved = queries.overdue_page(runtime, SYSTEM, 100, 0, "south", NOW)
    assert {r["case"] for r in moved.items} == {"C2"} and moved.total == len(moved.items)
    with runtime.reading() as uow:
        manager = staff_member(uow.session, "TM1", NOW.date())
    assert manager.team == "front-door"
    filters = team_queue.QueueFilter()
    rows = team_queue.queue(runtime, manager, team_queue.Table.STATUTORY, filters, 50, 0, NOW)
    assert rows.items and {r.case for r in rows.items} == {"C1"}
    assert rows.total == len(rows.items)
