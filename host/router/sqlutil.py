"""Database helpers the router's stores share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table

__all__ = ["upsert"]

_STATEMENTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Any] = {}
"""Built upsert statements: building one costs far more than running it."""


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    """Insert ``rows``, replacing the non-key columns of rows whose ``keys`` already exist (one statement, executemany)."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    else:
        raise NotImplementedError(f"upsert is not implemented for {dialect}")
    columns = tuple(c for c in rows[0] if c not in keys)
    cache_key = (dialect, table.name, tuple(keys), columns)
    statement = _STATEMENTS.get(cache_key)
    if statement is None:
        base = insert(table)
        statement = _STATEMENTS[cache_key] = base.on_conflict_do_update(index_elements=list(keys), set_={c: base.excluded[c] for c in columns})
    conn.execute(statement, list(rows))
