"""Writing to the append-only case history. Rows are only ever added, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from workflow import batch
from workflow.model import Case, HistoryEntry
from workflow.timeutil import utc_now


def record(
    session: Session, case: Case, kind: str, at: datetime, received_id: int | None, **detail: Any
) -> None:
    row = {
        "case_id": case.id,
        "episode": case.episode,
        "kind": kind,
        "at": at,
        "recorded_at": utc_now(),
        "event_id": received_id,
        "detail": detail,
    }
    loaded = batch.current(session)
    if loaded is not None:
        # Nothing reads a history row back while a batch applies its events: the batch writes
        # it as it is, with no object to build and track (most of the rows a batch adds).
        loaded.append(HistoryEntry, row)
    else:
        session.add(HistoryEntry(**row))
