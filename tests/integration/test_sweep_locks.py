"""The sweep's clock updates never wait for a case an event is being applied to (PostgreSQL).

Applying an event locks its case (``FOR UPDATE``) and then changes that case's clocks. The sweep
marks breaches and recalculates due dates, writing each change to the case history; a history
row's foreign key needs a share lock on its case. Had the sweep locked a clock and then waited
for its case, while the intake held the case and waited for that clock, PostgreSQL would kill
one of them as a deadlock: an API request answered 503 or a sweep lost, found by the topology
test under a real demo week. So the sweep takes each clock together with its case, and skips
both while either is in use: the next pass gets them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select

from config.settings import Settings
from config.wiring import Runtime, build_runtime
from services.sweep import ClockReport
from tests.conftest import upgrade
from tests.factories import import_events, instant, referral, update_clocks
from tests.integration.test_clocks import rulebook_with, set_goal
from workflow.model import Case

pytestmark = pytest.mark.postgres
WAIT = 10.0  # seconds: far more than an unblocked sweep of two cases takes


@pytest.fixture
def pg_runtime(postgres_schema_url: str) -> Iterator[Runtime]:
    upgrade(postgres_schema_url)
    rt = build_runtime(Settings(database_url=postgres_schema_url))
    try:
        yield rt
    finally:
        rt.close()


@contextmanager
def case_in_use(rt: Runtime, ref: str) -> Iterator[None]:
    """Hold ``ref``'s case row as applying an event does, until the block ends."""
    with rt.db.transaction() as session:
        assert session.scalar(select(Case).where(Case.ref == ref).with_for_update()) is not None
        yield
        session.rollback()


def in_time(action: Callable[[], ClockReport]) -> ClockReport:
    """Run ``action`` in a thread; fail if it is still waiting after ``WAIT`` seconds."""
    done: dict[str, Any] = {}

    def run() -> None:
        try:
            done["report"] = action()
        except BaseException as exc:
            done["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(WAIT)
    if thread.is_alive():
        pytest.fail(f"the sweep waited more than {WAIT:.0f}s for a case an event holds")
    if "error" in done:
        raise done["error"]
    return done["report"]  # type: ignore[no-any-return]


def two_cases(rt: Runtime) -> None:
    report = import_events(rt, referral("C1", "2026-04-02"), referral("C2", "2026-04-02"), now="2026-04-02")
    assert report.ok, report.rejected


def test_breaches_skip_a_case_in_use_and_are_marked_by_the_next_pass(pg_runtime: Runtime) -> None:
    two_cases(pg_runtime)
    with case_in_use(pg_runtime, "C1"):
        # Two clocks a case (decision, referrer acknowledgement), both due 7 April: C2's only.
        assert in_time(lambda: update_clocks(pg_runtime, instant("2026-04-08"))).breached == 2
    assert update_clocks(pg_runtime, instant("2026-04-08")).breached == 2  # C1's, now free


def test_recalculation_skips_a_case_in_use_and_reaches_it_next_pass(pg_runtime: Runtime) -> None:
    two_cases(pg_runtime)
    longer = rulebook_with(set_goal("decision", {"working_days": 3}))
    with case_in_use(pg_runtime, "C2"):
        report = in_time(lambda: update_clocks(pg_runtime, instant("2026-04-03"), book=longer))
    assert report.recalculated == 1  # C1's decision clock
    assert update_clocks(pg_runtime, instant("2026-04-03"), book=longer).recalculated == 1
