"""Writing to the append-only case history. Rows are only ever added, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from workflow.model import Case, HistoryEntry
from workflow.timeutil import utc_now


def record(
    session: Session, case: Case, kind: str, at: datetime, received_id: int | None, **detail: Any
) -> None:
    session.add(
        HistoryEntry(
            case_id=case.id,
            episode=case.episode,
            kind=kind,
            at=at,
            recorded_at=utc_now(),
            event_id=received_id,
            detail=detail,
        )
    )
