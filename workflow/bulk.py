"""Many rows in one statement on PostgreSQL: each column sent as one array and unnested.

A multi-row ``VALUES`` list has a parameter per value, so a chunk of a thousand rows is a
statement of thousands of parameters that the driver parses and the server plans each time; and
an ``executemany`` is a statement per row. An array per column keeps it one short statement,
planned once, whatever the number of rows. SQLite, in process and without arrays, takes the rows
as an ``executemany``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import TableValuedAlias, bindparam, cast, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import KeyedColumnElement

PREFIX = "each_"


def unnested(columns: Sequence[KeyedColumnElement[Any]], name: str = "given") -> TableValuedAlias:
    """The rows given as one array parameter per column, as a table whose columns are named like
    them (the parameters are prefixed: an update may not name one after a column it sets)."""
    arrays = [cast(bindparam(f"{PREFIX}{c.key}"), ARRAY(c.type)) for c in columns]
    return func.unnest(*arrays).table_valued(*(c.key for c in columns)).render_derived(name=name)


def as_arrays(
    columns: Sequence[KeyedColumnElement[Any]], rows: Sequence[Mapping[str, Any]]
) -> dict[str, list[Any]]:
    """The parameters of :func:`unnested` for ``rows``: a list of values per column."""
    return {f"{PREFIX}{c.key}": [row[c.key] for row in rows] for c in columns}
