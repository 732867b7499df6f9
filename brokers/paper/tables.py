"""The paper broker's tables in the state database (SQLAlchemy Core, own metadata), and row mappings (pure).

Every row carries the broker's name, so several paper brokers share the
tables. Prices, quantities and money are decimal strings, as in the router's
tables. Working orders have a full row in ``paper_orders`` (loaded at start);
an order that is done moves to ``paper_history`` as one compact text, which
is all :meth:`~brokers.paper.adapter.PaperBroker.lookup` needs and keeps the
per-order cost of a market order low.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Connection, Dialect, Float, Integer, MetaData, String, Table, Text, and_, bindparam
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from host.trading.model import Fill, OrderType, TimeInForce
from host.trading.states import OrderStatus

from .execution import PaperOrder
from .ledger import Holding

__all__ = [
    "Delete",
    "Upsert",
    "accounts_table",
    "feeds_table",
    "fills_from_text",
    "fills_to_text",
    "history_table",
    "history_text",
    "holding_from_row",
    "holding_values",
    "metadata",
    "order_from_history",
    "order_from_row",
    "order_values",
    "orders_table",
    "positions_table",
]

metadata = MetaData()

accounts_table = Table(
    "paper_accounts",
    metadata,
    Column("broker", String(64), primary_key=True),
    Column("currency", String(16), nullable=False),
    Column("starting_balance", String(40), nullable=False),
    Column("realised", String(60), nullable=False),
    Column("commission", String(60), nullable=False),
    # Last broker order number (P<n>) and trade number (<broker>-T<n>) handed out.
    Column("order_seq", Integer, nullable=False),
    Column("trade_seq", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
)

positions_table = Table(
    "paper_positions",
    metadata,
    Column("broker", String(64), primary_key=True),
    Column("instrument", String(64), primary_key=True),
    Column("quantity", String(40), nullable=False),
    Column("cost", String(60), nullable=False),
    Column("realised", String(60), nullable=False),
    Column("updated_at", Float, nullable=False),
)

orders_table = Table(
    "paper_orders",
    metadata,
    Column("broker", String(64), primary_key=True),
    Column("client_order_id", String(120), primary_key=True),
    Column("broker_order_id", String(40), nullable=True),
    Column("instrument", String(64), nullable=False),
    Column("side", Integer, nullable=False),
    Column("type", String(12), nullable=False),
    Column("quantity", String(40), nullable=False),
    Column("limit_price", String(40), nullable=True),
    Column("stop_price", String(40), nullable=True),
    Column("time_in_force", String(4), nullable=False),
    Column("stop_loss", String(40), nullable=True),
    Column("take_profit", String(40), nullable=True),
    Column("tag", String(64), nullable=True),
    Column("parent", String(120), nullable=True),
    Column("oco", String(120), nullable=True),
    Column("triggered", Integer, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("status", String(20), nullable=False),
    Column("raw_status", String(120), nullable=False),
    Column("filled", String(40), nullable=False),
    Column("filled_value", String(60), nullable=False),
    Column("commission", String(40), nullable=False),
    Column("fills", Text, nullable=False),  # see fills_to_text
    Column("error", Text, nullable=True),  # JSON: [code, message]
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
"""Working orders only (ACCEPTED or PARTIALLY_FILLED)."""

history_table = Table(
    "paper_history",
    metadata,
    Column("broker", String(64), primary_key=True),
    Column("client_order_id", String(120), primary_key=True),
    Column("data", Text, nullable=False),  # see history_text
)
"""Orders that are done (filled, cancelled, expired, rejected)."""

feeds_table = Table(
    "paper_feeds",
    metadata,
    Column("broker", String(64), primary_key=True),
    Column("kind", String(20), nullable=False),
    # Wall-clock seconds of step 0, kept so that a restart continues the same quotes.
    Column("origin", Float, nullable=False),
)

# Plain str values: drivers bind exact built-in types fastest (and some refuse str subclasses).
_PLAIN: dict[str, str] = {str(e): str(e) for enum in (OrderType, TimeInForce, OrderStatus) for e in enum}


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _micros(t: float) -> str:
    # Whole microseconds: exact for a datetime, and much cheaper to format than repr(float).
    return str(round(t * 1_000_000))


def _seconds(text: str) -> float:
    return int(text) / 1_000_000


def fills_to_text(fills: list[Fill]) -> str:
    """Fills as text, one per line: ``trade_id TAB quantity TAB price TAB commission TAB epoch microseconds``."""
    # str() rather than f-string conversion: Decimal.__format__ is three times slower than __str__.
    return "\n".join("\t".join((f.trade_id, str(f.quantity), str(f.price), str(f.commission), _micros(f.at.timestamp()))) for f in fills)


def fills_from_text(text: str) -> list[Fill]:
    """The inverse of :func:`fills_to_text`."""
    fills = []
    for line in text.splitlines():
        trade_id, quantity, price, commission, at = line.split("\t")
        fills.append(Fill(trade_id=trade_id, quantity=Decimal(quantity), price=Decimal(price), commission=Decimal(commission), at=datetime.fromtimestamp(_seconds(at), UTC)))
    return fills


def order_values(broker: str, order: PaperOrder) -> tuple[Any, ...]:
    """The ``paper_orders`` row of a working order, in column order."""
    plain = _PLAIN
    return (
        broker,
        order.client_order_id,
        order.broker_order_id,
        order.instrument,
        order.side,
        plain[order.type],
        str(order.quantity),
        _opt(order.limit_price),
        _opt(order.stop_price),
        plain[order.time_in_force],
        _opt(order.stop_loss),
        _opt(order.take_profit),
        order.tag,
        order.parent,
        order.oco,
        int(order.triggered),
        order.expires_at,
        plain[order.status],
        order.raw_status,
        str(order.filled),
        str(order.filled_value),
        str(order.commission),
        fills_to_text(order.fills),
        None if order.error is None else json.dumps(list(order.error)),
        order.created_at,
        order.updated_at,
    )


def order_from_row(row: Any) -> PaperOrder:
    """Rebuild a working order from its ``paper_orders`` row."""
    error = json.loads(row.error) if row.error else None
    return PaperOrder(
        client_order_id=row.client_order_id,
        broker_order_id=row.broker_order_id,
        instrument=row.instrument,
        side=int(row.side),
        type=OrderType(row.type),
        quantity=Decimal(row.quantity),
        limit_price=_dec(row.limit_price),
        stop_price=_dec(row.stop_price),
        time_in_force=TimeInForce(row.time_in_force),
        created_at=float(row.created_at),
        stop_loss=_dec(row.stop_loss),
        take_profit=_dec(row.take_profit),
        tag=row.tag,
        parent=row.parent,
        oco=row.oco,
        triggered=bool(row.triggered),
        expires_at=row.expires_at,
        status=OrderStatus(row.status),
        raw_status=row.raw_status,
        filled=Decimal(row.filled),
        filled_value=Decimal(row.filled_value),
        commission=Decimal(row.commission),
        fills=fills_from_text(row.fills),
        error=(str(error[0]), str(error[1])) if error else None,
        updated_at=float(row.updated_at),
        stored=True,
    )


def history_text(order: PaperOrder) -> str:
    """A finished order as one text: a tab-separated header line, then its fills (:func:`fills_to_text`)."""
    plain = _PLAIN
    limit, stop = order.limit_price, order.stop_price
    # Only the tag and the error are free text; JSON keeps their tabs and newlines from breaking the lines.
    head = "\t".join((
        order.broker_order_id or "", order.instrument, "1" if order.side > 0 else "-1", plain[order.type], str(order.quantity),
        "" if limit is None else str(limit), "" if stop is None else str(stop), plain[order.time_in_force], plain[order.status],
        order.raw_status, order.parent or "", _micros(order.created_at), _micros(order.updated_at),
        "" if order.tag is None else json.dumps(order.tag), "" if order.error is None else json.dumps(list(order.error)),
    ))  # fmt: skip
    return f"{head}\n{fills_to_text(order.fills)}" if order.fills else head


def order_from_history(client_order_id: str, text: str) -> PaperOrder:
    """Rebuild a finished order from its ``paper_history`` text."""
    head, _, rest = text.partition("\n")
    bid, instrument, side, kind, quantity, limit, stop, tif, status, raw, parent, created, updated, tag, error = head.split("\t")
    fills = fills_from_text(rest)
    err = json.loads(error) if error else None
    return PaperOrder(
        client_order_id=client_order_id,
        broker_order_id=bid or None,
        instrument=instrument,
        side=int(side),
        type=OrderType(kind),
        quantity=Decimal(quantity),
        limit_price=Decimal(limit) if limit else None,
        stop_price=Decimal(stop) if stop else None,
        time_in_force=TimeInForce(tif),
        created_at=_seconds(created),
        tag=json.loads(tag) if tag else None,
        parent=parent or None,
        status=OrderStatus(status),
        raw_status=raw,
        filled=sum((f.quantity for f in fills), Decimal(0)),
        filled_value=sum((f.quantity * f.price for f in fills), Decimal(0)),
        commission=sum((f.commission for f in fills), Decimal(0)),
        fills=fills,
        error=(str(err[0]), str(err[1])) if err else None,
        updated_at=_seconds(updated),
    )


def holding_values(broker: str, instrument: str, holding: Holding, now: float) -> tuple[Any, ...]:
    """The ``paper_positions`` row of a holding, in column order."""
    return (broker, instrument, str(holding.quantity), str(holding.cost), str(holding.realised), now)


def holding_from_row(row: Any) -> Holding:
    return Holding(Decimal(row.quantity), Decimal(row.cost), Decimal(row.realised))


class _Prepared:
    """A statement compiled once for a dialect and run with one driver-level executemany.

    Binding goes straight to the driver (the values are plain str, int, float
    and None), which is what keeps ``persist`` cheap.
    """

    def __init__(self, stmt: Any, names: tuple[str, ...], dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self.names = names
        self.positional = dialect.positional
        self.order: tuple[int, ...] | None = None
        if self.positional and compiled.positiontup is not None:
            index = {name: i for i, name in enumerate(names)}
            order = tuple(index[name] for name in compiled.positiontup)
            self.order = None if order == tuple(range(len(names))) else order

    def run(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        params: list[Any]
        if not self.positional:
            params = [dict(zip(self.names, row, strict=True)) for row in rows]
        elif self.order is not None:
            order = self.order
            params = [tuple(row[i] for i in order) for row in rows]
        else:
            params = rows
        conn.exec_driver_sql(self.sql, params)


class Upsert:
    """Insert-or-update rows (tuples in the table's column order) of one table, prepared once per dialect.

    SQLite and PostgreSQL use ``ON CONFLICT DO UPDATE``; another dialect
    updates row by row and inserts what was missing.
    """

    def __init__(self, table: Table, dialect: Dialect) -> None:
        self.table = table
        self.names = tuple(c.name for c in table.columns)
        keys = [c.name for c in table.primary_key.columns.values()]
        self.prepared: _Prepared | None = None
        if dialect.name in ("sqlite", "postgresql"):
            insert = sqlite_insert(table) if dialect.name == "sqlite" else postgresql_insert(table)
            stmt = insert.values({name: bindparam(name) for name in self.names}).on_conflict_do_update(
                index_elements=keys, set_={c.name: insert.excluded[c.name] for c in table.columns if c.name not in keys}
            )
            self.prepared = _Prepared(stmt, self.names, dialect)

    def __call__(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if self.prepared is not None:
            self.prepared.run(conn, rows)
            return
        table = self.table
        keys = list(table.primary_key.columns.values())
        for row in rows:
            values = dict(zip(self.names, row, strict=True))
            where = and_(*(c == values[c.name] for c in keys))
            if conn.execute(table.update().where(where).values(**values)).rowcount == 0:
                conn.execute(table.insert().values(**values))


class Delete:
    """Delete rows of one table by primary key (tuples in key order), prepared once per dialect."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        keys = list(table.primary_key.columns.values())
        names = tuple(c.name for c in keys)
        stmt = table.delete().where(and_(*(c == bindparam(c.name) for c in keys)))
        self.prepared = _Prepared(stmt, names, dialect)

    def __call__(self, conn: Connection, keys: list[tuple[Any, ...]]) -> None:
        self.prepared.run(conn, keys)
