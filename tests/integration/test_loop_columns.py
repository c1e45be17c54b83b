"""The copies the open loops and the overdue queue read instead of the rows they come from: each
clock's case reference and each letter's episode, on SQLite and PostgreSQL, whichever way the
events came in (a batch at once, or line by line), across a case's episodes. A reference that
drifted from its case would sort a clock into the wrong place in the overdue queue; a letter's
episode that drifted from its payload would make an owed duty look as though it had no letter."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from config.wiring import Runtime
from messaging.outbox import OutboxMessage
from tests.factories import (
    event,
    import_events,
    import_line_by_line,
    import_staff,
    referral,
    sweep,
)
from workflow.model import Case, ClockRow

WHEN = "2026-11-09T09:00:00+00:00"


def _by_batch(rt: Runtime, *events: dict[str, Any]) -> None:
    report = import_events(rt, *events, now=WHEN)
    assert report.ok, report.rejected


def _line_by_line(rt: Runtime, *events: dict[str, Any]) -> None:
    report = import_line_by_line(rt, *events, now=WHEN)
    assert report.ok, report.rejected


@pytest.mark.parametrize(
    "take", [pytest.param(_by_batch, id="batch"), pytest.param(_line_by_line, id="line")]
)
def test_clocks_keep_their_case_reference_and_letters_their_episode(
    runtime: Runtime, take: Callable[..., None]
) -> None:
    import_staff(runtime)
    take(
        runtime,
        referral("C1", "2026-10-26T09:00:00+00:00", id="one"),
        referral("C2", "2026-10-26T09:00:00+00:00", id="other"),
        event("decision.made", "C1", "2026-10-26T11:00:00+00:00", outcome="nfa"),
        event("case.closed", "C1", "2026-10-27", reason="NFA"),
        referral("C1", "2026-11-02T09:00:00+00:00", id="two", team="north"),
        event("case.transferred", "C2", "2026-11-03T14:00:00+00:00", team="south"),
    )
    sweep(runtime, datetime(2026, 11, 9, 10, 0, tzinfo=UTC))
    with runtime.reading() as uow:
        session = uow.session
        refs = list(
            session.execute(select(ClockRow.case_ref, Case.ref).join(Case, Case.id == ClockRow.case_id))
        )
        letters = list(session.execute(select(OutboxMessage.episode, OutboxMessage.payload)))
        episodes = set(session.scalars(select(ClockRow.episode)))
    assert refs and all(copy == ref for copy, ref in refs)
    assert episodes == {1, 2}
    assert {copy for copy, _ in letters} >= {1, 2}  # letters of both of C1's episodes
    assert all(copy == payload.get("episode") for copy, payload in letters)
