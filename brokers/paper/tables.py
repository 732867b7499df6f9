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

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text

from host.trading.model import Fill, OrderType, TimeInForce
from host.trading.positions import Holding
from host.trading.states import OrderStatus

from .execution import PaperOrder

__all__ = [
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
    sqlite_with_rowid=False,
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
    sqlite_with_rowid=False,
)

orders_table = Table(
    "paper_orders",
    metadata,
    Column("broker", String(64), primary_key=True),
    Column("client_order_id", String(120), primary_key=True),
    Column("broker_order_id", String(40), nullable=True),
    Column("instrument", String(64), nullable=False),
    Column("side", Integer, nullable=False),
    Column("type", String(20), nullable=False),
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
    # Added later (nullable, so add_missing_columns adds it to an older table): see PaperOrder.trailing_stop.
    Column("trailing_stop", String(40), nullable=True),
    sqlite_with_rowid=False,
)
"""Working orders only (ACCEPTED or PARTIALLY_FILLED)."""

history_table = Table(
    "paper_history",
    metadata,
    Column("broker", String(64), primary_key=True),
    Column("client_order_id", String(120), primary_key=True),
    Column("data", Text, nullable=False),  # see history_text,
    sqlite_with_rowid=False,
)
"""Orders that are done (filled, cancelled, expired, rejected)."""

feeds_table = Table(
    "paper_feeds",
    metadata,
    Column("broker", String(64), primary_key=True),
    Column("kind", String(20), nullable=False),
    # Wall-clock seconds of step 0, kept so that a restart continues the same quotes.
    Column("origin", Float, nullable=False),
    sqlite_with_rowid=False,
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
        _opt(order.trailing_stop),
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
        trailing_stop=_dec(row.trailing_stop),
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


