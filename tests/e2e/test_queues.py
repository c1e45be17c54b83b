"""Every queue the code sends to is consumed by the worker (a fast test: no process is started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.processes import _worker_args
from config.celery import make_celery
from config.queues import QUEUES, ROUTES, SWEEP_TASK
from config.settings import Settings


@pytest.fixture(autouse=True)
def _no_caseloop_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("CASELOOP_")]:
        monkeypatch.delenv(name)


def _consumed(beat: bool) -> list[str]:
    (option,) = [a for a in _worker_args(None, beat=beat) if a.startswith("--queues=")]
    return option.removeprefix("--queues=").split(",")


@pytest.mark.parametrize("beat", [False, True], ids=["caseloop worker", "caseloop run"])
def test_the_worker_consumes_every_routed_queue(beat: bool) -> None:
    routed = {route["queue"] for route in ROUTES.values()}
    assert routed <= set(_consumed(beat))
    assert set(QUEUES) == set(_consumed(beat))


def test_every_task_and_the_beat_entry_have_a_route_to_a_declared_queue(tmp_path: Path) -> None:
    app = make_celery(Settings(broker_url="redis://127.0.0.1:1/0", var_dir=tmp_path))
    app.loader.import_default_modules()  # tasks.jobs, as a worker does
    declared = {q.name: q.routing_key for q in app.conf.task_queues}
    ours = {name for name in app.tasks if name.startswith("caseloop.")}
    assert ours == set(ROUTES)
    for task, route in ROUTES.items():
        assert declared[route["queue"]] == route["routing_key"], task
        assert route["queue"] in _consumed(beat=False)
    assert {entry["task"] for entry in app.conf.beat_schedule.values()} == {SWEEP_TASK}
    assert app.conf.task_create_missing_queues is False
