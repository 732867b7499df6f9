"""Statements compiled once and run with one driver-level executemany.

The router writes a batch of rows to several tables on every commit;
SQLAlchemy Core's per-call work (compiling, caching, execution context and
result set-up, about 25 µs a statement) would cost more than the insert
itself. These helpers compile a Core statement once for the database's dialect
and hand the rows to the driver's cursor of the SQLAlchemy connection, inside
the transaction that connection began, so the code stays portable (SQLite and
PostgreSQL) and the hot path stays cheap. Rows are tuples of plain str, int,
float and None in the order of ``names``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

__all__ = ["Delete", "Prepared", "Upsert"]


class Prepared:
    """One statement, compiled for one dialect."""

    def __init__(self, stmt: Any, names: tuple[str, ...], dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(names))
        self.sql = str(compiled)
        self.names = names
        self.positional = dialect.positional
        self.order: tuple[int, ...] | None = None
        if self.positional and compiled.positiontup is not None:
            index = {name: i for i, name in enumerate(names)}
            order = tuple(index[name] for name in compiled.positiontup)
            self.order = None if order == tuple(range(len(names))) else order

    def params(self, rows: list[tuple[Any, ...]]) -> list[Any]:
        """The rows as the driver wants them: tuples in the order the SQL names its parameters, or dicts."""
        if not self.positional:
            return [dict(zip(self.names, row, strict=True)) for row in rows]
        if self.order is not None:
            order = self.order
            return [tuple(row[i] for i in order) for row in rows]
        return rows

    def run(self, conn: Connection, rows: list[tuple[Any, ...]]) -> Any:
        """Execute for every row (one executemany) on the driver's cursor; returns that cursor (rowcount)."""
        params = self.params(rows)
        cursor = conn.connection.cursor()
        try:
            if len(params) == 1:
                cursor.execute(self.sql, params[0])
            else:
                cursor.executemany(self.sql, params)
        except conn.dialect.loaded_dbapi.Error as exc:
            # The same exception SQLAlchemy would raise (OperationalError, IntegrityError …), driver error inside.
            raise DBAPIError.instance(self.sql, params, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect) from exc
        return cursor


class Upsert:
    """Insert-or-update rows of one table by its primary key.

    SQLite and PostgreSQL use ``ON CONFLICT DO UPDATE``; another dialect
    updates row by row and inserts what was missing.
    """

    def __init__(self, table: Table, dialect: Dialect) -> None:
        self.table = table
        self.names = tuple(c.name for c in table.columns)
        keys = [c.name for c in table.primary_key.columns.values()]
        self.prepared: Prepared | None = None
        if dialect.name in ("sqlite", "postgresql"):
            insert = sqlite_insert(table) if dialect.name == "sqlite" else postgresql_insert(table)
            values = insert.values({name: bindparam(name) for name in self.names})
            others = {c.name: insert.excluded[c.name] for c in table.columns if c.name not in keys}
            stmt = values.on_conflict_do_update(index_elements=keys, set_=others) if others else values.on_conflict_do_nothing(index_elements=keys)
            self.prepared = Prepared(stmt, self.names, dialect)

    def __call__(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.prepared is not None:
            self.prepared.run(conn, rows)
            return
        keys = list(self.table.primary_key.columns.values())
        for row in rows:
            values = dict(zip(self.names, row, strict=True))
            where = and_(*(c == values[c.name] for c in keys))
            if conn.execute(self.table.update().where(where).values(**values)).rowcount == 0:
                conn.execute(self.table.insert().values(**values))


class Delete:
    """Delete rows of one table by primary key (tuples in key order)."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        keys = list(table.primary_key.columns.values())
        stmt = table.delete().where(and_(*(c == bindparam(c.name) for c in keys)))
        self.prepared = Prepared(stmt, tuple(c.name for c in keys), dialect)

    def __call__(self, conn: Connection, keys: list[tuple[Any, ...]]) -> None:
        if keys:
            self.prepared.run(conn, keys)
