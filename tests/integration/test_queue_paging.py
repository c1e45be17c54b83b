"""The overdue queue and open loops page and count in the database, on SQLite and PostgreSQL:
a page beyond the first holds exactly the rows the whole list has there, the count is of every
row that matches (within what the person may see), and a page past the end is empty but still
counted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from config.wiring import Runtime
from services import open_loops, queries
from services.actors import SYSTEM, staff_member
from tests.factories import event, import_events, import_staff, referral

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # a Friday, a fortnight after the referrals
REFS = [f"PG-{n}" for n in range(1, 8)]


@pytest.fixture
def borough(runtime: Runtime) -> Runtime:
    """Seven referrals on successive days, the odd ones allocated to W1, the even ones to nobody."""
    import_staff(runtime)
    events = []
    for day, ref in enumerate(REFS, start=2):
        at = f"2026-11-{day:02d}T09:00:00+00:00"
        events.append(referral(ref, at, id=f"r-{ref}"))
        if int(ref[3:]) % 2:
            events.append(event("worker.allocated", ref, at.replace("09:00", "09:30"), worker="W1"))
    report = import_events(runtime, *events, now="2026-11-09T09:00:00+00:00")
    assert report.ok, report.rejected
    return runtime


def test_a_later_page_of_the_overdue_queue_is_that_part_of_the_whole_and_counts_all(borough: Runtime) -> None:
    whole = queries.overdue(borough, SYSTEM, None, NOW)
    assert len(whole) >= 7  # each referral's decision at least
    keys = [(r["case"], r["clock"]) for r in whole]
    second = queries.overdue_page(borough, SYSTEM, 3, 3, None, NOW)
    assert [(r["case"], r["clock"]) for r in second.items] == keys[3:6]
    assert second.total == len(whole)
    assert second.items == whole[3:6]  # the same words too (allocation, why, what to do)
    beyond = queries.overdue_page(borough, SYSTEM, 3, len(whole), None, NOW)
    assert (beyond.items, beyond.total) == ([], len(whole))
    # Most overdue first: the due dates never go backwards from one page to the next.
    dues = [r["due"] for r in whole]
    assert dues == sorted(dues)


def test_the_overdue_count_is_of_what_the_worker_may_see(borough: Runtime) -> None:
    with borough.reading() as uow:
        w1 = staff_member(uow.session, "W1", NOW.date())
    mine = queries.overdue(borough, w1, None, NOW)
    assert {r["case"] for r in mine} == {"PG-1", "PG-3", "PG-5", "PG-7"}
    page = queries.overdue_page(borough, w1, 2, 2, None, NOW)
    assert page.total == len(mine)
    assert page.items == mine[2:4]
    assert all(r["allocation"] == "W1" for r in mine)
    unallocated = [r for r in queries.overdue(borough, SYSTEM, None, NOW) if r["case"] == "PG-2"]
    assert unallocated and all(r["allocation"] == "unallocated" for r in unallocated)


def test_a_later_page_of_open_loops_is_that_part_of_the_whole_and_the_summary_counts_all(
    borough: Runtime,
) -> None:
    whole = open_loops.open_loops(borough, SYSTEM, limit=1000, now=NOW)
    assert whole.total == len(whole.items) >= 7  # each referrer's acknowledgement waits to go
    second = open_loops.open_loops(borough, SYSTEM, limit=3, offset=3, now=NOW)
    assert second.items == whole.items[3:6]
    assert second.total == whole.total
    assert second.summary == whole.summary
    waiting = [loop for loop in whole.items if loop.why != "nobody"]
    assert whole.summary.people == len(waiting)
    assert whole.summary.referrers == len({loop.ref for loop in waiting if loop.audience == "referrer"})
    beyond = open_loops.open_loops(borough, SYSTEM, limit=3, offset=whole.total, now=NOW)
    assert (beyond.items, beyond.total) == ([], whole.total)
