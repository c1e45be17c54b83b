"""When each recurring piece of work last finished: the sweep today.

One row per kind of work, overwritten each time, so readiness and metrics can tell a beat or a
worker that stopped from one that is merely quiet, from the database every process shares (a
process's memory would only know about itself).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, String
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflow.db import Base, UTCDateTime

SWEEP = "sweep"


class Heartbeat(Base):
    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[float] = mapped_column(Float)


def beat(session: Session, name: str, finished_at: datetime, duration_seconds: float) -> None:
    """Record that ``name`` finished now. An upsert: two beats finishing at once both succeed."""
    values = {"name": name, "finished_at": finished_at, "duration_seconds": duration_seconds}
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(Heartbeat).values(**values)
    update = {
        "finished_at": statement.excluded.finished_at,
        "duration_seconds": statement.excluded.duration_seconds,
    }
    session.execute(statement.on_conflict_do_update(index_elements=["name"], set_=update))


def last(session: Session, name: str) -> Heartbeat | None:
    return session.get(Heartbeat, name)
