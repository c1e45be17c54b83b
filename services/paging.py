"""One page of a long list, as the services hand it to the pages: the rows and how many in all.

The services count and page in SQL (``COUNT`` and ``LIMIT/OFFSET``), never in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar, TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")
Row = TypeVarTuple("Row")


@dataclass(frozen=True)
class Slice(Generic[T]):
    """``items`` from ``offset`` (at most ``limit`` of them) of ``total`` rows."""

    items: list[T]
    total: int
    offset: int
    limit: int


def page_of(session: Session, query: Select[*Row], offset: int, limit: int) -> tuple[int, list[Any]]:
    """The number of rows ``query`` selects and the rows from ``offset``, at most ``limit``."""
    if offset < 0 or limit < 1:
        raise ValueError("a page starts at an offset of 0 or more and holds at least one row")
    total = int(session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)
    rows = list(session.execute(query.offset(offset).limit(limit)).all()) if total > offset else []
    return total, rows
