"""The order journal: every order, fill and strategy position, in memory and in the state database.

Changes accumulate in memory during one batch and are written by
:meth:`Journal.flush` inside the router's batch transaction, so an order, its
audit rows and its fills become durable together, with one fsync per batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, bindparam, func, or_, select

from host.sqlprep import Prepared, Upsert
from host.trading.model import Fill, Quote
from host.trading.positions import Holding, apply_fill, average_price, unrealised
from host.trading.states import TERMINAL_STATES

from .records import OrderRecord, day_of, record_from_row, record_to_row
from .tables import fills_table, orders_table, router_state_table, strategy_positions_table

__all__ = ["Journal", "Marks", "StrategyPosition", "TradingDays", "mark_positions"]

ZERO = Decimal(0)


class TradingDays:
    """Names the trading day an epoch time falls in, computing its bounds once per day."""

    def __init__(self, bounds: Callable[[float], tuple[float, float]]) -> None:
        self._bounds = bounds
        self._start = self._end = 0.0
        self._label = ""

    def __call__(self, now: float) -> str:
        if not self._start <= now < self._end:
            self._start, self._end = self._bounds(now)
            self._label = f"{self._start:.0f}"
        return self._label


@dataclass
class StrategyPosition:
    """One strategy's net position in one instrument at one broker, kept at signed cost (see :mod:`host.trading.positions`)."""

    quantity: Decimal = ZERO
    """Signed: below zero is short."""
    cost: Decimal = ZERO
    """Signed Σ quantity × price of the open units: the average price is derived, so realised P&L stays exact."""
    realised_pnl: Decimal = ZERO
    """Realised P&L of all its fills, after commissions."""

    @property
    def holding(self) -> Holding:
        """The open units as a :class:`Holding` (its ``realised`` left at zero: this position keeps its own, after commissions)."""
        return Holding(self.quantity, self.cost, ZERO)

    @property
    def average_price(self) -> Decimal:
        """Average entry price of the open units; 0 when flat."""
        return average_price(self.holding)

    def unrealised(self, mark: Decimal) -> Decimal:
        """P&L of the open units if they were closed at ``mark``."""
        return unrealised(self.holding, mark)

    @classmethod
    def at_average(cls, quantity: Decimal, average: Decimal, realised_pnl: Decimal = ZERO) -> StrategyPosition:
        """A position of ``quantity`` bought (or sold) at ``average``: what a reconciliation, or a row an older version wrote, gives."""
        return cls(quantity, quantity * average if quantity else ZERO, realised_pnl)


@dataclass(frozen=True, slots=True)
class Marks:
    """Open positions valued at the last known prices."""

    unrealised: Decimal
    """P&L of the positions that have a price."""
    unpriced: tuple[tuple[str, str], ...]
    """(broker, instrument) of open positions with no price yet, sorted: their P&L is unknown, not zero."""


def mark_positions(
    positions: Iterable[tuple[tuple[str, str, str], StrategyPosition]],
    prices: Mapping[tuple[str, str], Decimal],
    brokers: Container[str] | None = None,
) -> Marks:
    """Value ``(strategy, broker, instrument) → position`` pairs at ``prices`` keyed by (broker, instrument) (pure).

    A position at a broker outside ``brokers`` (one no longer configured, which the router can neither
    price nor trade) is left out of ``unpriced``; None counts every broker.
    """
    total = ZERO
    unpriced: set[tuple[str, str]] = set()
    for (_, broker, instrument), p in positions:
        if not p.quantity:
            continue
        mark = prices.get((broker, instrument))
        if mark is not None:
            total += p.unrealised(mark)
        elif brokers is None or broker in brokers:
            unpriced.add((broker, instrument))
    return Marks(total, tuple(sorted(unpriced)))


class Journal:
    """Orders by client order id and by (strategy, request id); positions and today's P&L per strategy."""

    def __init__(self, engine: Engine, *, window: float = 48 * 3600, trading_day: Callable[[float], str] = day_of) -> None:
        self.engine = engine
        self.window = window
        self.trading_day = trading_day
        """The trading day of an epoch time (the daily-loss limit resets when it changes)."""
        self.orders: dict[str, OrderRecord] = {}
        self.by_request: dict[tuple[str, str], OrderRecord] = {}
        self.positions: dict[tuple[str, str, str], StrategyPosition] = {}
        # Kept alongside so a risk check costs the same with 10 positions or 10,000.
        self._net: dict[tuple[str, str], Decimal] = {}
        """(broker, instrument) → the net of every strategy's position."""
        self._keys_of: dict[str, set[tuple[str, str, str]]] = {}
        """strategy → its position keys."""
        self.day = ""
        self.day_realised: dict[str, Decimal] = defaultdict(lambda: ZERO)
        self.last_price: dict[tuple[str, str], Decimal] = {}
        """The latest fill or quote price per (broker, instrument), for marking positions."""
        self._open: dict[str, OrderRecord] = {}
        """Orders that may still be working; finished ones are dropped from it lazily."""
        self._seq: dict[tuple[str, str], int] = {}
        self._trades: set[tuple[str, str]] = set()
        self._new: dict[str, OrderRecord] = {}
        self._dirty: dict[str, OrderRecord] = {}
        self._fill_rows: list[dict[str, Any]] = []
        self._dirty_positions: set[tuple[str, str, str]] = set()
        self._state_rows: dict[str, str] = {}
        self._sql: _Statements | None = None
        self._reader: Connection | None = None

    # -- loading ---------------------------------------------------------------

    def load(self, now: float) -> None:
        """Read open orders, the idempotency window, positions and today's P&L from the database."""
        self.day = self.trading_day(now)
        since = now - self.window
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(orders_table).where(or_(orders_table.c.created_at >= since, orders_table.c.status.not_in([str(s) for s in TERMINAL_STATES])))
            ).all()
            ids = [row.client_order_id for row in rows]
            fills: dict[str, list[Fill]] = defaultdict(list)
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                for f in conn.execute(select(fills_table).where(fills_table.c.client_order_id.in_(chunk)).order_by(fills_table.c.at)):
                    fills[f.client_order_id].append(
                        Fill(trade_id=f.trade_id, quantity=Decimal(f.quantity), price=Decimal(f.price), commission=Decimal(f.commission), at=datetime.fromtimestamp(f.at, timezone.utc))
                    )
                    self._trades.add((f.broker, f.trade_id))
            for row in rows:
                record = record_from_row(row, fills.get(row.client_order_id, []))
                self._index(record)
            for strategy, day, seq in conn.execute(
                select(orders_table.c.strategy, orders_table.c.day, func.max(orders_table.c.seq)).where(orders_table.c.day == day_of(now)).group_by(orders_table.c.strategy, orders_table.c.day)
            ):
                self._seq[(strategy, day)] = int(seq)
            for p in conn.execute(select(strategy_positions_table)):
                self._put_position((p.strategy, p.broker, p.instrument), position_from_row(p))
            # Today's realised P&L per strategy, from its fills since the trading day began (two days back covers any day_start).
            for f in conn.execute(select(fills_table.c.strategy, fills_table.c.realised_pnl, fills_table.c.commission, fills_table.c.at).where(fills_table.c.at >= now - 2 * 86400)):
                if self.trading_day(f.at) == self.day:
                    self.day_realised[f.strategy] += Decimal(f.realised_pnl) - Decimal(f.commission)

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection for point reads of older orders, kept open between them (a pool checkout costs more
        than the query); each read's transaction is ended at once so it never pins an old snapshot."""
        if self._reader is None:
            self._reader = self.engine.connect()
        try:
            yield self._reader
        finally:
            self._reader.rollback()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _index(self, record: OrderRecord) -> None:
        self.orders[record.client_order_id] = record
        self.by_request[(record.strategy, record.request_id)] = record
        if not record.is_terminal:
            self._open[record.client_order_id] = record

    # -- orders ----------------------------------------------------------------

    def next_seq(self, strategy: str, now: float) -> tuple[str, int]:
        day = day_of(now)
        seq = self._seq.get((strategy, day), 0) + 1
        self._seq[(strategy, day)] = seq
        return day, seq

    def add(self, record: OrderRecord) -> None:
        self._index(record)
        self._new[record.client_order_id] = record

    def touch(self, record: OrderRecord) -> None:
        """Mark a record changed; it is written at the next flush."""
        if record.client_order_id not in self._new:
            self._dirty[record.client_order_id] = record
        if not record.is_terminal:
            self._open[record.client_order_id] = record

    def get(self, client_order_id: str) -> OrderRecord | None:
        """A record from memory, or from the database if it is older than the window."""
        record = self.orders.get(client_order_id)
        if record is not None:
            return record
        with self._reading() as conn:
            row = conn.execute(select(orders_table).where(orders_table.c.client_order_id == client_order_id)).first()
            if row is None:
                return None
            fills = [
                Fill(trade_id=f.trade_id, quantity=Decimal(f.quantity), price=Decimal(f.price), commission=Decimal(f.commission), at=datetime.fromtimestamp(f.at, timezone.utc))
                for f in conn.execute(select(fills_table).where(fills_table.c.client_order_id == client_order_id).order_by(fills_table.c.at))
            ]
        record = record_from_row(row, fills)
        for f in fills:
            self._trades.add((record.broker, f.trade_id))
        self._index(record)
        return record

    def find_request(self, strategy: str, request_id: str, *, recent_only: bool) -> OrderRecord | None:
        """The order a (strategy, request id) already made: from memory, else (unless ``recent_only``) the database."""
        record = self.by_request.get((strategy, request_id))
        if record is not None or recent_only:
            return record
        with self._reading() as conn:
            cid = conn.execute(
                select(orders_table.c.client_order_id).where(orders_table.c.strategy == strategy, orders_table.c.request_id == request_id)
            ).scalar()
        return None if cid is None else self.get(cid)

    def open_orders(self, strategy: str | None = None) -> list[OrderRecord]:
        finished = [cid for cid, r in self._open.items() if r.is_terminal]
        for cid in finished:
            del self._open[cid]
        return [r for r in self._open.values() if strategy is None or r.strategy == strategy]

    def recent(self, strategy: str, since: float) -> list[OrderRecord]:
        return [r for r in self.orders.values() if r.strategy == strategy and (r.created_at >= since or not r.is_terminal)]

    # -- fills and positions -------------------------------------------------------

    def seen(self, broker: str, trade_id: str) -> bool:
        return (broker, trade_id) in self._trades

    def record_fill(self, record: OrderRecord, fill: Fill) -> Decimal:
        """Book a new fill to the journal and the strategy's position; return the P&L it realised."""
        self._trades.add((record.broker, fill.trade_id))
        at = fill.at.timestamp()
        self._fill_rows.append({
            "broker": record.broker, "trade_id": fill.trade_id, "client_order_id": record.client_order_id,
            "strategy": record.strategy, "instrument": record.instrument, "side": str(record.side),
            "quantity": str(fill.quantity), "price": str(fill.price), "commission": str(fill.commission), "at": at,
        })
        key = (record.strategy, record.broker, record.instrument)
        position = self.positions.get(key)
        if position is None:
            position = self._put_position(key, StrategyPosition())
        signed = fill.quantity if record.side.sign > 0 else -fill.quantity
        holding, realised = apply_fill(position.holding, signed, fill.price)
        position.quantity, position.cost = holding.quantity, holding.cost
        net = (record.broker, record.instrument)
        self._net[net] = self._net.get(net, ZERO) + signed
        self._fill_rows[-1]["realised_pnl"] = str(realised)
        position.realised_pnl += realised - fill.commission
        self._dirty_positions.add(key)
        self.last_price[(record.broker, record.instrument)] = fill.price
        day = self.trading_day(at)
        if day > self.day:
            self.day = day
            self.day_realised.clear()
        if day == self.day:
            self.day_realised[record.strategy] += realised - fill.commission
        return realised

    def set_position(self, strategy: str, broker: str, instrument: str, quantity: Decimal, average_price: Decimal) -> None:
        """Replace a position outright (reconciliation books what the broker holds and no fill explains)."""
        key = (strategy, broker, instrument)
        current = self.positions.get(key) or StrategyPosition()
        self._put_position(key, StrategyPosition.at_average(quantity, average_price, current.realised_pnl))
        self._dirty_positions.add(key)

    def _put_position(self, key: tuple[str, str, str], position: StrategyPosition) -> StrategyPosition:
        strategy, broker, instrument = key
        old = self.positions.get(key)
        self.positions[key] = position
        self._net[(broker, instrument)] = self._net.get((broker, instrument), ZERO) + position.quantity - (old.quantity if old else ZERO)
        self._keys_of.setdefault(strategy, set()).add(key)
        return position

    def position(self, strategy: str, broker: str, instrument: str) -> Decimal:
        p = self.positions.get((strategy, broker, instrument))
        return ZERO if p is None else p.quantity

    def global_position(self, broker: str, instrument: str) -> Decimal:
        return self._net.get((broker, instrument), ZERO)

    def record_quote(self, broker: str, quote: Quote) -> Decimal:
        """Mark ``quote``'s instrument at ``broker`` at its mid, the price positions are valued at; return the mid."""
        mid = quote.mid
        self.last_price[(broker, quote.instrument)] = mid
        return mid

    def marks(self, strategy: str | None, brokers: Container[str] | None = None) -> Marks:
        """A strategy's positions (all strategies for None) at the last known prices (see :func:`mark_positions`)."""
        keys = self.positions.keys() if strategy is None else self._keys_of.get(strategy, ())
        return mark_positions(((key, self.positions[key]) for key in keys), self.last_price, brokers)

    def unrealised(self, strategy: str | None) -> Decimal:
        """Unrealised P&L of a strategy's positions (all strategies for None), at the last known prices."""
        return self.marks(strategy).unrealised

    def realised_today(self, strategy: str | None, now: float) -> Decimal:
        """Today's realised P&L after commissions of a strategy (all strategies for None)."""
        day = self.trading_day(now)
        if day != self.day:
            self.day = day
            self.day_realised.clear()
        return self.day_realised.get(strategy, ZERO) if strategy is not None else sum(self.day_realised.values(), ZERO)

    def day_pnl(self, strategy: str | None, now: float) -> Decimal:
        """Today's realised (after commissions) plus current unrealised P&L."""
        return self.realised_today(strategy, now) + self.unrealised(strategy)

    # -- persistence -----------------------------------------------------------------

    def put_state(self, key: str, value: str) -> None:
        """Write a router_state row (JSON text) at the next flush."""
        self._state_rows[key] = value

    @property
    def pending(self) -> bool:
        return bool(self._new or self._dirty or self._fill_rows or self._dirty_positions or self._state_rows)

    def _statements(self, conn: Connection) -> _Statements:
        if self._sql is None or self._sql.dialect != conn.dialect.name:
            self._sql = _Statements(conn.dialect)
        return self._sql

    def flush(self, conn: Connection, now: float) -> None:
        """Write everything changed since the last flush, inside the caller's transaction."""
        sql = self._statements(conn)
        if self._new:
            sql.insert_orders.run(conn, [tuple(record_to_row(r).values()) for r in self._new.values()])
            self._new.clear()
        if self._dirty:
            rows = []
            for r in self._dirty.values():
                row = record_to_row(r)
                cid = row.pop("client_order_id")
                rows.append((*row.values(), cid))
            sql.update_orders.run(conn, rows)
            self._dirty.clear()
        if self._fill_rows:
            sql.insert_fills.run(conn, [tuple(row[name] for name in _FILL_COLUMNS) for row in self._fill_rows])
            self._fill_rows = []
        if self._dirty_positions:
            sql.positions(conn, [
                position_values(s, b, i, p, now)
                for (s, b, i) in self._dirty_positions
                for p in (self.positions[(s, b, i)],)
            ])
            self._dirty_positions.clear()
        if self._state_rows:
            sql.state(conn, [(k, v, now) for k, v in self._state_rows.items()])
            self._state_rows.clear()


def position_values(strategy: str, broker: str, instrument: str, position: StrategyPosition, now: float) -> tuple[Any, ...]:
    """The ``strategy_positions`` row of a position, in column order.

    The average price is written too, derived from the cost: the CLI and the
    reports read it, and an older version reading the database needs it.
    """
    values = {
        "strategy": strategy, "broker": broker, "instrument": instrument, "quantity": str(position.quantity),
        "average_price": str(position.average_price), "realised_pnl": str(position.realised_pnl), "updated_at": now, "cost": str(position.cost),
    }
    return tuple(values[name] for name in _POSITION_COLUMNS)


def position_from_row(row: Any) -> StrategyPosition:
    """A position from its ``strategy_positions`` row; one an older version wrote has no cost: it is derived once from the average price."""
    quantity, realised = Decimal(row.quantity), Decimal(row.realised_pnl)
    if row.cost is None:
        return StrategyPosition.at_average(quantity, Decimal(row.average_price), realised)
    return StrategyPosition(quantity, Decimal(row.cost), realised)


_ORDER_COLUMNS = tuple(c.name for c in orders_table.columns)
_POSITION_COLUMNS = tuple(c.name for c in strategy_positions_table.columns)
_FILL_COLUMNS = tuple(c.name for c in fills_table.columns)


class _Statements:
    """The journal's statements, compiled once for the database's dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect.name
        self.insert_orders = Prepared(orders_table.insert(), _ORDER_COLUMNS, dialect)
        columns = tuple(c for c in _ORDER_COLUMNS if c != "client_order_id")
        self.update_orders = Prepared(
            orders_table.update().where(orders_table.c.client_order_id == bindparam("b_id")).values({c: bindparam(c) for c in columns}),
            (*columns, "b_id"),
            dialect,
        )
        self.insert_fills = Prepared(fills_table.insert(), _FILL_COLUMNS, dialect)
        self.positions = Upsert(strategy_positions_table, dialect)
        self.state = Upsert(router_state_table, dialect)
