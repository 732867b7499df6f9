"""Read helpers over the router's tables: orders and positions as plain, JSON-ready dicts.

Decimal columns stay the strings they are stored as; epoch-float times
become ISO 8601 UTC text. :func:`open_readonly` opens the state database for
a reader that must neither create it nor take a writer's lock.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, inspect, select
from sqlalchemy.engine import make_url

from host.trading.states import TERMINAL_STATES, OrderStatus

from .tables import orders_table, strategy_positions_table

__all__ = ["STATUS_GROUPS", "STATUS_NAMES", "has_tables", "iso_time", "open_readonly", "orders", "positions"]

_ORDER_TIMES = ("created_at", "updated_at")

STATUS_GROUPS: dict[str, frozenset[str]] = {
    "OPEN": frozenset(str(status) for status in OrderStatus if status not in TERMINAL_STATES),
    "TERMINAL": frozenset(str(status) for status in TERMINAL_STATES),
}
"""Names ``status`` may also be: every state that is not terminal (INITIALIZED too), or every terminal one."""

STATUS_NAMES = frozenset({*(str(status) for status in OrderStatus), *STATUS_GROUPS})
"""Every value ``status`` understands (upper case)."""


def iso_time(epoch: float | None) -> str | None:
    """Return epoch seconds as ISO 8601 UTC text (``2024-05-01T09:30:00.250000+00:00``)."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


def _sqlite_path(url: str) -> str | None:
    """The file of an SQLite URL; "" for an in-memory database; None for another backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    return "" if database in ("", ":memory:") else database


def open_readonly(url: str) -> Engine | None:
    """Open the database for reading; None if it is an SQLite file that does not exist yet.

    An SQLite file is opened ``mode=ro``: nothing is created, and no pragma
    that needs a write (such as switching to WAL) is run.
    """
    path = _sqlite_path(url)
    if path is None:
        return create_engine(url)
    if path == "" or not Path(path).is_file():
        return None
    uri = f"file:{quote(str(Path(path).absolute()))}?mode=ro"
    return create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, timeout=5.0, check_same_thread=False))


def has_tables(engine: Engine, *names: str) -> bool:
    """Whether every named table exists (a database the router has not used yet has none)."""
    found = set(inspect(engine).get_table_names())
    return all(name in found for name in names)


def _order_dict(values: dict[str, Any]) -> dict[str, Any]:
    for name in _ORDER_TIMES:
        values[name] = iso_time(values[name])
    if values.get("error"):
        try:
            values["error"] = json.loads(values["error"])
        except ValueError:
            pass  # not JSON: show it as written
    return values


def _statuses(status: str | Iterable[str]) -> list[str]:
    names = [status] if isinstance(status, str) else list(status)
    found: set[str] = set()
    for name in names:
        found |= STATUS_GROUPS.get(name.upper(), {name.upper()})
    return sorted(found)


def orders(
    engine: Engine,
    *,
    strategy: str | None = None,
    since: float | None = None,
    until: float | None = None,
    status: str | Iterable[str] | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Orders, newest first; ``since`` ≤ created_at < ``until`` (epoch seconds).

    ``status`` is a status name (any case), ``open``, ``terminal``, or several;
    ``limit`` None or 0 means all.
    """
    table = orders_table
    # A database the router has not opened since a column was added lacks it: read what is there, the rest is None.
    present = {c["name"] for c in inspect(engine).get_columns(table.name)}
    missing = [c.name for c in table.columns if c.name not in present]
    statement = select(*(c for c in table.columns if c.name in present)).order_by(table.c.created_at.desc(), table.c.client_order_id.desc())
    if strategy is not None:
        statement = statement.where(table.c.strategy == strategy)
    if since is not None:
        statement = statement.where(table.c.created_at >= since)
    if until is not None:
        statement = statement.where(table.c.created_at < until)
    if status is not None:
        statement = statement.where(table.c.status.in_(_statuses(status)))
    if limit:
        statement = statement.limit(limit)
    with engine.connect() as conn:
        return [_order_dict({**dict(row._mapping), **dict.fromkeys(missing)}) for row in conn.execute(statement)]


def _is_flat(quantity: str) -> bool:
    try:
        return Decimal(quantity) == 0
    except InvalidOperation:
        return False  # unreadable: show it rather than hide it


def positions(
    engine: Engine,
    *,
    strategy: str | None = None,
    since: float | None = None,
    until: float | None = None,
    include_flat: bool = False,
) -> list[dict[str, Any]]:
    """Positions by strategy, broker and instrument; ``since`` ≤ updated_at < ``until``; flat ones only if asked."""
    table = strategy_positions_table
    # ``cost`` is the journal's own bookkeeping (readers get the average price), and a database the
    # router has not opened since it was added lacks it: read every column but that one.
    statement = select(*(c for c in table.columns if c.name != "cost")).order_by(table.c.strategy, table.c.broker, table.c.instrument)
    if strategy is not None:
        statement = statement.where(table.c.strategy == strategy)
    if since is not None:
        statement = statement.where(table.c.updated_at >= since)
    if until is not None:
        statement = statement.where(table.c.updated_at < until)
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(statement)]
    return [{**row, "updated_at": iso_time(row["updated_at"])} for row in rows if include_flat or not _is_flat(row["quantity"])]
