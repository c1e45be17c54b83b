"""A batch of events applied together: what its cases need, read once; what it adds, written at once.

Applying events one by one costs a handful of queries and flushes each (the case, its clocks, its
letters, the staff directory), and the flushes are most of the time an import takes. A batch
instead locks all of its cases in one statement, reads their clocks and letters in one more each,
and keeps them here, in ``Session.info``, where the domain's look-ups find them
(:func:`current`). Rows the batch adds get their ids up front (:class:`Ids`), so nothing needs a
flush to learn an id, and they are written by table, handed to the driver at once (COPY on
PostgreSQL), and the changes to the cases a statement for each set of columns changed
(:func:`write`).

Outside a batch (``current`` is None) the domain queries as it always did: a caseloop event, a
retry, a dismissal each touch one case and need none of this.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any, cast

from sqlalchemy import (
    Column,
    ColumnElement,
    Table,
    UniqueConstraint,
    bindparam,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import InstanceState, Mapper, Session
from sqlalchemy.orm.attributes import set_committed_value

from workflow.db import Base
from workflow.model import Case, ClockRow
from workflow.staff import Staff

KEY = "caseloop.batch"  # where the loaded batch sits in ``Session.info``
CHUNK = 500  # values in one IN (...): well inside every database's limit on parameters

LetterLoader = Callable[[Session, list[int]], Sequence[Any]]  # the outbox rows of some cases
KeyOf = Callable[[Any], str]  # an outbox row's idempotency key


_NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)")


class Ids:
    """Ids handed out before the rows exist, so a row can be referred to before it is written.

    PostgreSQL's sequences give them (other transactions may take ids at the same time: the
    sequence never gives one twice). On SQLite the transaction holds the write lock from its
    first statement (``BEGIN IMMEDIATE``), so the highest id in the table plus one is ours alone.
    """

    STEP = 256  # ids asked of a PostgreSQL sequence at once (unused ones are a gap, no harm)

    def __init__(self, session: Session) -> None:
        self._session = session
        self._postgres = session.get_bind().dialect.name == "postgresql"
        self._free: dict[str, list[int]] = {}
        self._next: dict[str, int] = {}

    def next(self, model: type[Base]) -> int:
        table = model.__table__.name  # type: ignore[attr-defined]
        if self._postgres:
            free = self._free.setdefault(table, [])
            if not free:
                free.extend(reversed(self._session.scalars(_NEXT_IDS, {"t": table, "n": self.STEP}).all()))
            return free.pop()
        if table not in self._next:
            highest = self._session.scalar(select(func.max(model.id)))  # type: ignore[attr-defined]
            self._next[table] = (highest or 0) + 1
        self._next[table] += 1
        return self._next[table] - 1


@dataclass
class Loaded:
    """The batch's cases (locked), their clocks and letters, and the staff its events name."""

    ids: Ids
    cases: dict[str, Case] = field(default_factory=dict)  # by ref
    clocks: defaultdict[int, list[ClockRow]] = field(default_factory=lambda: defaultdict(list))
    letters: defaultdict[int, list[Any]] = field(default_factory=lambda: defaultdict(list))  # outbox rows
    letter_keys: set[str] = field(default_factory=set)
    directory_imported: bool = False
    teams: set[str] = field(default_factory=set)  # those named in the batch that the directory knows
    workers: set[str] = field(default_factory=set)
    # Set by casework.apply once an event's checks have passed and the case starts to change: a
    # rejection after that point would leave half an event behind (see LateRejection).
    mutated: bool = False
    # Rows only ever added (the history), kept as the values of their columns, in the order made.
    appended: defaultdict[Table, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    # New objects of the batch (:func:`add`), by identity: kept out of the session, which would
    # track each one (a cascade walk when added, another when taken out again to be written).
    new: dict[int, Base] = field(default_factory=dict)

    def append(self, model: type[Base], row: dict[str, Any]) -> None:
        """Add a row of an append-only table, written with the batch (every column named; the
        database gives its id)."""
        self.appended[cast(Table, model.__table__)].append(row)

    def add_case(self, case: Case) -> None:
        case.id = self.ids.next(Case)
        self.cases[case.ref] = case

    def add_clock(self, clock: ClockRow) -> None:
        clock.id = self.ids.next(ClockRow)
        self.clocks[clock.case_id].append(clock)


def current(session: Session) -> Loaded | None:
    return session.info.get(KEY)


def add(session: Session, obj: Base) -> None:
    """``session.add``, but within a batch the new object is kept for :func:`write` instead: no
    query of the batch's reads it back (they are answered from :class:`Loaded`), and its id is
    given beforehand, so the session has nothing to do for it until it is written."""
    loaded = current(session)
    if loaded is None:
        session.add(obj)
    else:
        loaded.new[id(obj)] = obj


def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def load(
    session: Session,
    refs: Iterable[str],
    teams: Iterable[str],
    workers: Iterable[str],
    letters_of: LetterLoader,
    letter_key: KeyOf,
) -> Loaded:
    """Lock the cases named by ``refs`` and read what applying their events reads.

    The cases are locked in the order of their refs, so two importers whose batches share cases
    take the locks in the same order and never wait on each other in a circle.
    """
    loaded = Loaded(Ids(session))
    for part in _chunks(refs):
        for case in session.scalars(
            select(Case).where(Case.ref.in_(part)).order_by(Case.ref).with_for_update()
        ):
            loaded.cases[case.ref] = case
    case_ids = [c.id for c in loaded.cases.values()]
    for part in _chunks(case_ids):
        query = select(ClockRow).where(ClockRow.case_id.in_(part)).order_by(ClockRow.id)
        for clock in session.scalars(query):
            loaded.clocks[clock.case_id].append(clock)
    for part in _chunks(case_ids):
        for message in letters_of(session, part):
            loaded.letters[message.case_id].append(message)
            loaded.letter_keys.add(letter_key(message))
    loaded.directory_imported = session.scalar(select(Staff.id).limit(1)) is not None
    if loaded.directory_imported:
        for part in _chunks(teams):
            loaded.teams.update(session.scalars(select(Staff.team).where(Staff.team.in_(part)).distinct()))
        for part in _chunks(workers):
            loaded.workers.update(session.scalars(select(Staff.id).where(Staff.id.in_(part))))
    return loaded


def write(session: Session, loaded: Loaded) -> None:
    """Write the changes to the cases that were read, what the batch added (a statement per
    table, in the order foreign keys need), then the other changes to rows that were read (the
    unit of work's own flush)."""
    with session.no_autoflush:  # its statements would flush the changed cases first, one by one
        _update_cases(session, loaded)
    added: defaultdict[Any, list[InstanceState[Any]]] = defaultdict(list)
    for new in loaded.new.values():
        state = inspect(new)
        added[state.mapper.local_table].append(state)
    for obj in list(session.new):  # any added to the session directly
        state = inspect(obj)
        added[state.mapper.local_table].append(state)
        session.expunge(obj)  # written here, not by the flush
    for table in Base.metadata.sorted_tables:
        by_columns: defaultdict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for state in added.get(table, ()):
            row = _row(state)
            by_columns[tuple(row)].append(row)
        order = _lock_order(table)
        for rows in by_columns.values():
            # Every importer writes a table's rows in the order of its unique key: two batches
            # naming the same new event ids (or case refs) then wait for each other in one
            # direction only, and never deadlock on the unique index's locks.
            rows.sort(key=lambda row: tuple((row.get(k) is None, str(row.get(k))) for k in order))
            _insert(session, table, rows)
        if appended := loaded.appended.get(table):
            _insert(session, table, appended)
    session.flush()


def _update_cases(session: Session, loaded: Loaded) -> None:
    """The changes to the batch's cases that were read, a statement for each set of columns
    changed. The flush writes one for each run of cases in the order of their ids changed alike:
    hundreds a batch, as its events change their cases in different ways. The cases were locked
    when they were read, so the order they are written in makes no one wait."""
    table = cast(Table, Case.__table__)
    changed: defaultdict[tuple[str, ...], list[tuple[Case, dict[str, Any]]]] = defaultdict(list)
    for case in loaded.cases.values():
        state = inspect(case)
        if not state.persistent or not state.modified:
            continue  # new (written above), or untouched
        values = {
            key: state.dict[key]
            for key in state.committed_state.keys() & _CASE_COLUMNS.keys()
            # As the flush compares (a value set again to what it was is no change).
            if state.manager[key].impl.is_equal(state.dict[key], state.committed_state[key]) is not True
        }
        if values:
            changed[tuple(sorted(values))].append((case, values))
    for keys, cases in changed.items():
        cases.sort(key=lambda pair: pair[0].id)
        statement = (
            update(table)
            .where(table.c.id == bindparam("case_id"))
            .values({_CASE_COLUMNS[k]: bindparam(f"new_{k}", type_=_CASE_COLUMNS[k].type) for k in keys})
        )
        session.execute(statement, [{"case_id": c.id, **{f"new_{k}": v[k] for k in keys}} for c, v in cases])
        for case, values in cases:
            for key, value in values.items():
                set_committed_value(case, key, value)  # written: the flush has nothing left to do


# The column of each attribute of a case that can change (its id never does).
_CASE_COLUMNS: dict[str, ColumnElement[Any]] = {
    attr.key: attr.columns[0] for attr in inspect(Case).column_attrs if not attr.columns[0].primary_key
}


def _insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Rows that all name the same columns, into ``table``, handed to the driver at once: by
    COPY on PostgreSQL (its driver would otherwise send a statement a row), by the driver's
    ``executemany`` on SQLite. The values are bound as the statement would bind them (JSON
    serialised, times in UTC), without the statement's per-row bookkeeping."""
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name not in ("postgresql", "sqlite"):
        session.execute(insert(table), rows)
        return
    keys = list(rows[0])
    processors = [table.c[k].type.dialect_impl(dialect).bind_processor(dialect) for k in keys]
    values = (
        [v if p is None else p(v) for p, v in zip(processors, (row[k] for k in keys), strict=True)]
        for row in rows
    )
    preparer = dialect.identifier_preparer
    columns = ", ".join(preparer.quote(table.c[k].name) for k in keys)
    driver: Any = connection.connection.driver_connection
    error = dialect.loaded_dbapi.Error
    if dialect.name == "postgresql":
        statement = f"COPY {preparer.format_table(table)} ({columns}) FROM STDIN"
    else:
        marks = ", ".join("?" for _ in keys)  # the sqlite3 module's placeholders
        statement = f"INSERT INTO {preparer.format_table(table)} ({columns}) VALUES ({marks})"
    try:
        cursor = driver.cursor()
        try:
            if dialect.name == "postgresql":
                with cursor.copy(statement) as copy:
                    for row in values:
                        copy.write_row(row)
            else:
                cursor.executemany(statement, values)
        finally:
            cursor.close()
    except error as exc:
        # Raised as a statement's would be: a duplicate key is an IntegrityError (the batch is
        # then taken line by line), a deadlock a DBAPIError with its code (taken again). Only
        # PostgreSQL's primary message is kept: its DETAIL and a COPY's CONTEXT quote the row.
        primary = getattr(getattr(exc, "diag", None), "message_primary", None)
        if primary:
            exc.args = (primary,)
        raise DBAPIError.instance(statement, None, exc, error, dialect=dialect) from exc


def _lock_order(table: Table) -> tuple[str, ...]:
    """The columns of the table's unique key (the primary key where it has none)."""
    for column in table.columns:
        if column.unique:
            return (column.key,)
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            return tuple(c.key for c in constraint.columns)
    for index in table.indexes:
        if index.unique:
            return tuple(c.key for c in index.columns if isinstance(c, Column))
    return tuple(c.key for c in table.primary_key.columns)


def _row(state: InstanceState[Any]) -> dict[str, Any]:
    """The values of a new object's columns as its flush would have written them."""
    values = state.dict
    row: dict[str, Any] = {}
    for attr_key, column_key, default, database_fills in _columns(state.mapper):
        value = values.get(attr_key)
        if value is None:
            if default is not None:
                value = default()
            elif database_fills:
                continue
        row[column_key] = value
    return row


_Column = tuple[str, str, Callable[[], Any] | None, bool]


@cache
def _columns(mapper: Mapper[Any]) -> tuple[_Column, ...]:
    """For each column of a mapped class: its attribute, its column, the value a flush gives it
    when it is None (its default), and whether the database fills it in instead. Worked out once
    per class, not once per row."""
    found: list[_Column] = []
    for attr in mapper.column_attrs:
        column = attr.columns[0]
        default: Callable[[], Any] | None = None
        if column.default is not None:
            arg = column.default.arg
            default = partial(arg, None) if column.default.is_callable else partial(_same, arg)
        fills = column.server_default is not None or column.primary_key
        found.append((attr.key, column.key, default, fills))
    return tuple(found)


def _same(value: Any) -> Any:
    return value
