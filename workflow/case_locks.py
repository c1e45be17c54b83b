"""One lock per case ref, taken by every intake transaction before it reads or writes anything.

Intake transactions that share cases must queue in one direction. Row locks alone cannot make
them: a case that does not exist yet has no row to lock, so two importers creating the same new
case meet only on the unique index, and whichever inserted first makes the other wait there in
the middle of its work (a batch writes its cases before its received rows, a line-by-line import
writes each line's received row before its case: each then waits for the other, and PostgreSQL
ends one). So an intake transaction first takes a transaction-scoped advisory lock for each ref
it names, existing or not, in one global order; the second of two transactions naming a ref waits
there holding nothing yet, and never in a circle.

SQLite needs none of this: a writing transaction holds the whole database from its first statement.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import Integer

# The first key of the two-key advisory locks these are (the sweep's single-key lock is apart).
_SPACE = 7_316_002
_CHUNK = 1000  # keys a statement: one round trip for any batch the import makes

# The keys in the order given (the order of the target list's volatile calls follows the sort).
_LOCK = text(
    "SELECT pg_advisory_xact_lock(:space, k) FROM unnest(:keys) WITH ORDINALITY AS t(k, n) ORDER BY n"
).bindparams(bindparam("keys", type_=ARRAY(Integer)))


def key(ref: str) -> int:
    """A ref's lock key: stable across processes (``hash`` is not), as a signed 32-bit integer.
    Two refs sharing a key only wait for each other; the order of keys stays one order."""
    value = zlib.crc32(ref.encode("utf-8"))
    return value - (1 << 32) if value >= 1 << 31 else value


def take(session: Session, refs: Iterable[str]) -> None:
    """Lock ``refs`` for the rest of the caller's transaction, in the order of their keys."""
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({key(ref) for ref in refs})
    for start in range(0, len(keys), _CHUNK):
        session.execute(_LOCK, {"space": _SPACE, "keys": keys[start : start + _CHUNK]})
