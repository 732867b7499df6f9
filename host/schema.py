"""The state database's one kind of migration: new nullable columns, added to tables an older version created."""

from __future__ import annotations

import logging

from sqlalchemy import Engine, MetaData, inspect
from sqlalchemy.schema import CreateColumn

__all__ = ["add_missing_columns"]

log = logging.getLogger("tradehost.schema")


def add_missing_columns(engine: Engine, tables: MetaData) -> list[str]:
    """Add the nullable columns a table of ``tables`` has in code but not yet in the database; return them as ``table.column``.

    The schema only ever grows by nullable columns, so this is the whole
    migration: existing rows read NULL for a new column. Tables that do not
    exist yet are left to ``create_all``; a missing NOT NULL column is an
    error, since no value for the existing rows could be made up.
    """
    inspector = inspect(engine)
    existing_tables = set(inspector.get_table_names())
    added: list[str] = []
    with engine.begin() as conn:
        for table in tables.sorted_tables:
            if table.name not in existing_tables:
                continue
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                if not column.nullable or column.primary_key:
                    raise RuntimeError(f"table {table.name} lacks the NOT NULL column {column.name}; it cannot be added in place")
                definition = CreateColumn(column).compile(dialect=conn.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {conn.dialect.identifier_preparer.format_table(table)} ADD COLUMN {definition}")
                added.append(f"{table.name}.{column.name}")
    for name in added:
        log.info("state database: added column %s", name)
    return added
