"""The built-in paper broker: a simulated account that needs no broker, persisted in the state database.

The whole book lives in memory and is written by :meth:`PaperBroker.persist`
inside the router's transaction; no broker call touches the database (except
:meth:`~PaperBroker.lookup` of an order too old to be in memory). Without
latency every call completes without suspending, so the adapter is ``atomic``.

A background task matches working orders against each new quote step and
reports what happens through ``services.emit``. Reports the broker creates
during a call (bracket children, OCO cancels) are emitted on the next loop
iteration, after the call's own answer.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, select

from brokers.tasks import cancel_and_wait
from brokers.base import AdapterOptions, AdapterServices, BrokerAdapter, Capabilities, ExecutionReport
from host.errors import ConfigError
from host.schema import add_missing_columns
from host.trading.errors import InsufficientFunds, InvalidInstrument, InvalidPrice, InvalidQuantity, OrderNotFound, TradingError
from host.trading.model import (
    Account,
    Fill,
    Instrument,
    Order,
    OrderChanges,
    OrderType,
    Position,
    Quote,
    Side,
    TimeInForce,
)
from host.trading.positions import FLAT, Holding, apply_fill, average_price, exposure, is_increase, unrealised
from host.trading.states import OrderStatus

from .execution import PaperOrder, commission, match, next_utc_midnight, order_to_report, order_to_request, slippage, slipped_price, trail
from .feed import CsvReplayFeed, Feed, FeedQuote, RandomWalkFeed, WalkSpec, infer_tick, read_quotes_csv
from .ledger import Balance, book, cash
from .options import CsvFeedOptions, InstrumentSpec, NoSlippage, PaperOptions, conversion_pair
from host.sqlprep import Delete, Upsert

from .tables import (
    accounts_table,
    feeds_table,
    history_table,
    history_text,
    holding_from_row,
    holding_values,
    metadata,
    order_from_history,
    order_from_row,
    order_values,
    orders_table,
    positions_table,
)

__all__ = ["PaperBroker"]

ZERO = Decimal(0)
ONE = Decimal(1)
_MONEY = Decimal("0.01")
_CONVERTED = Decimal("1e-8")
RECENT_ORDERS = 10_000
"""Final orders kept in memory for lookup; older ones are read back from the database."""
POLL_AT_MOST = 0.05
"""Seconds between checks of working orders, at most (less when the feed steps faster)."""

S = OrderStatus
_SIDE = {1: Side.BUY, -1: Side.SELL}
_TYPES: dict[str, OrderType] = {str(t): t for t in OrderType}
_TIFS: dict[str, TimeInForce] = {str(t): t for t in TimeInForce}
_TRIGGERED = frozenset({OrderType.STOP, OrderType.STOP_LIMIT, OrderType.MARKET_IF_TOUCHED})
"""Order types with a trigger price (``stop_price``)."""


class _NotStarted:
    symbols: tuple[str, ...] = ()
    poll_interval = 1.0

    def quote(self, symbol: str, now: float) -> FeedQuote:
        raise RuntimeError("the paper broker has no quotes before start()")


class PaperBroker(BrokerAdapter):
    """A simulated broker account; see :mod:`brokers.paper.options` for what it can be told."""

    type_name = "paper"
    Options = PaperOptions

    def __init__(self, name: str, options: AdapterOptions, services: AdapterServices) -> None:
        if not isinstance(options, PaperOptions):
            raise TypeError(f"paper broker {name} needs PaperOptions, got {type(options).__name__}")
        super().__init__(name, options, services)
        self.opts = options
        self.atomic = options.latency == 0
        self._latency = options.latency
        self._clock: Callable[[], float] = services.clock
        self._liquidity = options.liquidity
        self._slippage = options.slippage
        self._charges = options.commission.per_unit > 0 or options.commission.percent > 0 or options.commission.minimum > 0
        self._feed: Feed = _NotStarted()
        self._specs: dict[str, InstrumentSpec] = {}
        self._instruments: dict[str, Instrument] = {}
        self._conversions: dict[str, tuple[str, bool]] = {}
        self._capabilities = self._make_capabilities()
        if isinstance(options.feed, CsvFeedOptions):
            self._poll_every = POLL_AT_MOST
        else:
            self._set_specs(options.instrument_specs())
            self._poll_every = min(options.feed.interval, POLL_AT_MOST)
        self._balance = Balance(options.starting_balance, ZERO, ZERO)
        self._positions: dict[str, Holding] = {}
        self._working: dict[str, PaperOrder] = {}
        self._recent: OrderedDict[str, PaperOrder] = OrderedDict()
        self._dirty_orders: dict[str, PaperOrder] = {}
        self._dirty_positions: set[str] = set()
        self._dirty_account = False
        self._dirty_origin = False
        self._origin = 0.0
        self._order_seq = 0
        self._trade_seq = 0
        self._taken: dict[tuple[str, int], tuple[int, Decimal]] = {}
        self._quotes: dict[str, tuple[FeedQuote, Quote]] = {}
        self._outbox: list[ExecutionReport] = []
        self._upserts: dict[str, dict[str, Upsert]] = {}
        self._deletes: dict[str, Delete] = {}
        self._at: tuple[float, datetime] = (0.0, datetime.fromtimestamp(0, UTC))
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- set-up

    def _set_specs(self, specs: dict[str, InstrumentSpec]) -> None:
        self._specs = specs
        self._instruments = {symbol: spec.to_instrument() for symbol, spec in specs.items()}
        self._conversions = {}
        for currency in {spec.currency for spec in specs.values()} - {self.opts.currency}:
            found = conversion_pair(currency, self.opts.currency, specs)
            if found is None:
                self.services.logger.warning(
                    "paper broker %s: no %s/%s instrument to convert with; %s amounts are booked 1:1 in %s",
                    self.name, currency, self.opts.currency, currency, self.opts.currency,
                )  # fmt: skip
            else:
                self._conversions[currency] = found
        self._capabilities = self._make_capabilities()

    def _make_capabilities(self) -> Capabilities:
        return Capabilities(
            order_types=frozenset(OrderType),
            time_in_force=frozenset(TimeInForce),
            fractional_units=True,
            hedging=False,
            brackets=True,
            modify=True,
            trailing_stops=True,
            instruments=tuple(self._specs),
        )

    def _build_feed(self, origin: float) -> Feed:
        feed = self.opts.feed
        if isinstance(feed, CsvFeedOptions):
            path = Path(feed.path)
            path = path if path.is_absolute() else Path(os.getcwd()) / path
            try:
                rows = read_quotes_csv(path)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"paper broker {self.name}: cannot read quotes: {exc}", path=str(path)) from None
            configured = self.opts.instrument_specs()
            symbols = dict.fromkeys(r.symbol for r in rows)
            for symbol in set(self.opts.instruments) - set(symbols):
                self.services.logger.warning("paper broker %s: instrument %s has no quotes in %s", self.name, symbol, path)
            specs = {s: configured.get(s) or _inferred_spec(s, rows, self.opts.currency) for s in symbols}
            self._set_specs(specs)
            replay = CsvReplayFeed(rows, origin=origin, loop=feed.loop, speed=feed.speed, ticks={s: p.tick for s, p in specs.items()})
            self._poll_every = min(replay.poll_interval, POLL_AT_MOST)
            return replay
        walks = {s: WalkSpec(p.price, p.tick, p.spread) for s, p in self._specs.items()}
        return RandomWalkFeed(walks, seed=feed.seed, interval=feed.interval, volatility=feed.volatility, origin=origin)

    async def start(self) -> None:
        """Create the tables, load the account, positions, working orders and feed origin, start matching."""
        engine = self.services.engine
        metadata.create_all(engine)
        add_missing_columns(engine, metadata)  # tables an older version created lack the newer (nullable) columns
        name = self.name
        with engine.connect() as conn:
            feed_row = conn.execute(select(feeds_table).where(feeds_table.c.broker == name)).first()
            account_row = conn.execute(select(accounts_table).where(accounts_table.c.broker == name)).first()
            position_rows = conn.execute(select(positions_table).where(positions_table.c.broker == name)).all()
            order_rows = conn.execute(select(orders_table).where(orders_table.c.broker == name).order_by(orders_table.c.created_at)).all()
        if feed_row is None:
            self._origin, self._dirty_origin = self._clock(), True
        else:
            self._origin = float(feed_row.origin)
        self._feed = self._build_feed(self._origin)
        self._load_account(account_row)
        self._positions = {row.instrument: holding_from_row(row) for row in position_rows}
        self._working = {row.client_order_id: order_from_row(row) for row in order_rows}
        for symbol in set(self._positions) - set(self._specs):
            self.services.logger.warning("paper broker %s: position in %s, which it no longer quotes, is marked at cost", name, symbol)
        self._wake = asyncio.Event()
        if self._working:
            self._wake.set()
        self._task = asyncio.create_task(self._run(), name=f"paper broker {name}")

    def _load_account(self, row: Any) -> None:
        starting = self.opts.starting_balance
        if row is None:
            self._balance = Balance(starting, ZERO, ZERO)
            self._dirty_account = True
            return
        self._balance = Balance(starting, Decimal(row.realised), Decimal(row.commission))
        self._order_seq, self._trade_seq = int(row.order_seq), int(row.trade_seq)
        if row.currency != self.opts.currency:
            self.services.logger.warning(
                "paper broker %s: currency changed from %s to %s; amounts so far are not converted", self.name, row.currency, self.opts.currency
            )
            self._dirty_account = True
        if Decimal(row.starting_balance) != starting:
            self.services.logger.info("paper broker %s: starting balance changed from %s to %s", self.name, row.starting_balance, starting)
            self._dirty_account = True

    async def stop(self) -> None:
        """Stop matching working orders (they stay working, in the database)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            if not self._working:
                wake.clear()
                await wake.wait()
            await asyncio.sleep(self._poll_every)
            try:
                self.poll()
            except Exception:
                self.services.logger.exception("paper broker %s: matching working orders failed", self.name)

    # ------------------------------------------------------------ the adapter

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def instrument(self, symbol: str) -> Instrument | None:
        return self._instruments.get(symbol)

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"feed": self.opts.feed.kind, "currency": self.opts.currency, "atomic": self.atomic}

    async def submit(self, order: Order) -> ExecutionReport:
        """Validate and match a new order at once; FILLED, PARTIALLY_FILLED, ACCEPTED (resting) or CANCELED (IOC/FOK)."""
        if self._latency:
            await asyncio.sleep(self._latency)
        try:
            return self._submit_now(order)
        finally:
            self._flush_later()

    async def cancel(self, order: Order) -> ExecutionReport:
        """Cancel a working order; OrderNotFound if it is not working."""
        if self._latency:
            await asyncio.sleep(self._latency)
        try:
            return self._cancel_now(order.client_order_id)
        finally:
            self._flush_later()

    async def modify(self, order: Order, changes: OrderChanges) -> ExecutionReport:
        """Change a working order's quantity, limit or stop; it may fill at once."""
        if self._latency:
            await asyncio.sleep(self._latency)
        try:
            return self._modify_now(order.client_order_id, changes)
        finally:
            self._flush_later()

    async def lookup(self, client_order_id: str, order: Order | None = None) -> ExecutionReport | None:
        """The current report of any order this broker has seen, with all its fills; None if never seen."""
        if self._latency:
            await asyncio.sleep(self._latency)
        po = self._known(client_order_id)
        if po is None:
            po = self._load_order(client_order_id)
        return None if po is None else self._report(po, po.fills, self._clock())

    async def open_orders(self) -> list[ExecutionReport]:
        """Every working order (bracket children with their parent and terms), with its fills so far."""
        if self._latency:
            await asyncio.sleep(self._latency)
        now = self._clock()
        # With its terms, so a router that lost its own record can still book the order (reconciliation).
        return [replace(self._report(po, po.fills, now), terms=order_to_request(po)) for po in self._working.values()]

    async def positions(self) -> list[Position]:
        """Account-level positions (open, or flat with realised P&L), marked at the current mid.

        P&L is in the instrument's price currency (JPY for USD_JPY); :meth:`account` converts.
        """
        if self._latency:
            await asyncio.sleep(self._latency)
        now = self._clock()
        result = []
        for symbol, holding in self._positions.items():
            if not holding.quantity and not holding.realised:
                continue
            mark, _ = self._mark(symbol, holding, now)
            result.append(
                Position(
                    broker=self.name,
                    instrument=symbol,
                    quantity=holding.quantity,
                    average_price=average_price(holding),
                    realised_pnl=holding.realised,
                    unrealised_pnl=unrealised(holding, mark),
                    market_price=mark if symbol in self._specs else None,
                )
            )
        return result

    async def account(self) -> Account:
        """Cash, equity and P&L in the account currency; margin used is gross exposure / leverage."""
        if self._latency:
            await asyncio.sleep(self._latency)
        gross, open_pnl = self._exposure(self._clock())
        balance = cash(self._balance)
        equity = balance + open_pnl
        leverage = self.opts.leverage
        return Account(
            broker=self.name,
            currency=self.opts.currency,
            balance=balance,
            equity=equity,
            realised_pnl=self._balance.realised,
            unrealised_pnl=open_pnl,
            commission=self._balance.commission,
            margin_used=gross / leverage,
            buying_power=max(ZERO, equity * leverage - gross),
        )

    async def quote(self, instrument: str) -> Quote:
        """The feed's current bid and ask, with the size at the touch; InvalidInstrument if not traded."""
        if self._latency:
            await asyncio.sleep(self._latency)
        spec = self._specs.get(instrument) or self._spec(instrument)
        q = self._feed.quote(spec.symbol, self._clock())
        cached = self._quotes.get(instrument)
        if cached is not None and cached[0] == q:
            return cached[1]  # the router asks for every order it checks; a step's quote is built once
        quote = Quote(
            broker=self.name,
            instrument=spec.symbol,
            bid=q.bid,
            ask=q.ask,
            at=datetime.fromtimestamp(q.at, UTC),
            bid_size=self._liquidity if q.bid_size is None else q.bid_size,
            ask_size=self._liquidity if q.ask_size is None else q.ask_size,
        )
        self._quotes[instrument] = (q, quote)
        return quote

    # ------------------------------------------------------------ validation

    def _spec(self, symbol: str) -> InstrumentSpec:
        spec = self._specs.get(symbol)
        if spec is None:
            known = list(self._specs)
            listed = ", ".join(known[:12]) + (", …" if len(known) > 12 else "")
            raise InvalidInstrument(f"paper broker {self.name} does not trade {symbol!r} (it trades {listed or 'nothing yet'})")
        return spec

    @staticmethod
    def _check_quantity(spec: InstrumentSpec, quantity: Decimal) -> None:
        if quantity <= 0:
            raise InvalidQuantity(f"quantity {quantity} of {spec.symbol} must be positive")
        if quantity % spec.lot:
            raise InvalidQuantity(f"quantity {quantity} of {spec.symbol} is not a multiple of the lot size {spec.lot}")
        if quantity < spec.min:
            raise InvalidQuantity(f"quantity {quantity} of {spec.symbol} is below the minimum {spec.min}")

    @staticmethod
    def _check_price(spec: InstrumentSpec, what: str, price: Decimal) -> Decimal:
        if price <= 0:
            raise InvalidPrice(f"{what} {price} of {spec.symbol} must be positive")
        if price % spec.tick:
            raise InvalidPrice(f"{what} {price} of {spec.symbol} is not a multiple of the tick {spec.tick}")
        return price

    def _check_terms(self, spec: InstrumentSpec, kind: OrderType, limit: Decimal | None, stop: Decimal | None) -> None:
        if kind is OrderType.LIMIT or kind is OrderType.STOP_LIMIT:
            if limit is None:
                raise InvalidPrice(f"a {kind} order of {spec.symbol} needs a limit price")
            self._check_price(spec, "limit price", limit)
        if kind is OrderType.STOP or kind is OrderType.STOP_LIMIT or kind is OrderType.MARKET_IF_TOUCHED:
            if stop is None:
                raise InvalidPrice(f"a {kind} order of {spec.symbol} needs a stop price")
            self._check_price(spec, "stop price", stop)

    def _check_bracket(self, spec: InstrumentSpec, side: int, reference: Decimal, stop_loss: Decimal | None, take_profit: Decimal | None) -> None:
        word = "BUY" if side > 0 else "SELL"
        if stop_loss is not None:
            self._check_price(spec, "stop loss", stop_loss)
            if (stop_loss - reference) * side >= 0:
                where = "below" if side > 0 else "above"
                raise InvalidPrice(f"stop loss {stop_loss} of a {word} of {spec.symbol} must be {where} the entry price {reference}")
        if take_profit is not None:
            self._check_price(spec, "take profit", take_profit)
            if (take_profit - reference) * side <= 0:
                where = "above" if side > 0 else "below"
                raise InvalidPrice(f"take profit {take_profit} of a {word} of {spec.symbol} must be {where} the entry price {reference}")

    def _funds_problem(self, spec: InstrumentSpec, quantity: Decimal, price: Decimal, now: float) -> str | None:
        """Why a trade of signed ``quantity`` at ``price`` would over-lever the account; None if it would not."""
        position = self._positions.get(spec.symbol, FLAT).quantity
        if not is_increase(position, quantity):
            return None
        gross, open_pnl = self._exposure(now, skip=spec.symbol)
        rate = ONE if spec.currency == self.opts.currency else self._rate(spec.currency, now)
        gross += abs(position + quantity) * price * rate
        equity = cash(self._balance) + open_pnl
        allowed = equity * self.opts.leverage
        if gross <= allowed:
            return None
        ccy = self.opts.currency
        return (
            f"{_SIDE[1 if quantity > 0 else -1]} {abs(quantity)} {spec.symbol} would bring gross exposure to "
            f"{gross.quantize(_MONEY)} {ccy}, over equity {equity.quantize(_MONEY)} {ccy} × leverage {self.opts.leverage}"
        )

    # -------------------------------------------------------------- matching

    def _submit_now(self, order: Order) -> ExecutionReport:
        cid = order.client_order_id
        known = self._known(cid)
        if known is not None:
            return self._report(known, known.fills, self._clock())
        now = self._clock()
        # The router builds Orders without validation: accept plain strings where enums are expected.
        side = 1 if order.side == Side.BUY else -1
        kind, tif = _TYPES[order.type], _TIFS[order.time_in_force]
        try:
            spec = self._spec(order.instrument)
            self._check_quantity(spec, order.quantity)
            limit = order.limit_price if kind is OrderType.LIMIT or kind is OrderType.STOP_LIMIT else None
            stop = order.stop_price if kind in _TRIGGERED else None
            if kind is not OrderType.MARKET:
                self._check_terms(spec, kind, limit, stop)
            quote = self._feed.quote(spec.symbol, now)
            reference = limit if limit is not None else stop if stop is not None else quote.ask if side > 0 else quote.bid
            if order.stop_loss is not None or order.take_profit is not None:
                self._check_bracket(spec, side, reference, order.stop_loss, order.take_profit)
            if order.trailing_stop is not None:
                self._check_price(spec, "trailing stop distance", order.trailing_stop)
            problem = self._funds_problem(spec, order.quantity if side > 0 else -order.quantity, reference, now)
            if problem is not None:
                raise InsufficientFunds(problem)
        except TradingError as exc:
            self._remember_rejection(order, side, exc, now)
            raise
        self._order_seq += 1
        self._dirty_account = True
        po = PaperOrder(
            cid, f"P{self._order_seq}", spec.symbol, side, kind, order.quantity, limit, stop, tif, now,
            order.stop_loss, order.take_profit, order.tag, triggered=stop is None, updated_at=now, trailing_stop=order.trailing_stop,
        )  # fmt: skip
        if tif is TimeInForce.DAY:
            po.expires_at = next_utc_midnight(now)
        report = self._advance(po, quote, now, fresh=True)
        assert report is not None  # a fresh order always gets an answer
        return report

    def _advance(self, po: PaperOrder, quote: FeedQuote, now: float, *, fresh: bool) -> ExecutionReport | None:
        """Match one order against one quote; the report if anything changed (always when ``fresh``)."""
        if po.expires_at is not None and now >= po.expires_at:
            self._end(po, S.EXPIRED, "expired", now)
            return self._report(po, (), now)
        po.checked_step = quote.step
        symbol, side = po.instrument, po.side
        size = (quote.ask_size if side > 0 else quote.bid_size) or self._liquidity
        taken = self._taken.get((symbol, side))
        available = size - taken[1] if taken is not None and taken[0] == quote.step else size
        spec = self._specs[symbol]
        was_triggered = po.triggered
        if po.trailing_stop is not None and po.parent is not None and po.stop_price is not None and not was_triggered:
            # A trailing stop first follows the market (never loosening), then is matched as a STOP.
            trailed = trail(side, po.stop_price, po.trailing_stop, quote.bid, quote.ask)
            if trailed != po.stop_price:
                po.stop_price, po.updated_at = trailed, now
                self._dirty_orders[po.client_order_id] = po
        m = match(
            po.type, side, po.quantity - po.filled, po.limit_price, po.stop_price, was_triggered,
            quote.bid, quote.ask, available, spec.lot, po.time_in_force is TimeInForce.FOK,
        )  # fmt: skip
        fill: Fill | None = None
        if m.quantity:
            price = m.price
            if m.taker and not isinstance(self._slippage, NoSlippage):
                price = slipped_price(side, price, slippage(self._slippage, price, m.quantity, size), spec.tick)
            if not fresh:
                problem = self._funds_problem(spec, m.quantity if side > 0 else -m.quantity, price, now)
                if problem is not None:
                    return self._refuse(po, problem, now)
            fill = self._execute(po, spec, m.quantity, price, now)
            self._taken[(symbol, side)] = (quote.step, size - available + m.quantity)
        po.triggered = m.triggered
        eligible = (m.triggered and not was_triggered) or (fresh and po.type in (OrderType.MARKET, OrderType.LIMIT))
        if po.filled == po.quantity:
            po.status, po.raw_status = S.FILLED, "filled"
        elif eligible and po.time_in_force is TimeInForce.IOC:
            po.status, po.raw_status = S.CANCELED, "cancelled: ioc remainder"
        elif eligible and po.time_in_force is TimeInForce.FOK:
            po.status, po.raw_status = S.CANCELED, "cancelled: fok not fillable"
        elif fill is not None:
            po.status, po.raw_status = S.PARTIALLY_FILLED, "partially_filled"
        elif fresh or m.triggered != was_triggered:
            # A trigger alone changes no status: it is recorded, and reported only in a fresh order's answer.
            if m.triggered and po.stop_price is not None:
                po.raw_status = "triggered"
            po.updated_at = now
            self._dirty_orders[po.client_order_id] = po
            if fresh:
                self._add_working(po)
                return self._report(po, (), now)
            return None
        else:
            return None
        po.updated_at = now
        self._dirty_orders[po.client_order_id] = po
        if po.status is S.PARTIALLY_FILLED:
            if fresh:
                self._add_working(po)
        else:
            self._finish(po, now)
        if fill is not None and po.oco is not None:
            # One cancels the others: every other working child of the same entry.
            for sibling in [o for o in self._working.values() if o.parent == po.parent and o is not po]:
                self._end(sibling, S.CANCELED, "cancelled: oco", now)
                self._outbox.append(self._report(sibling, (), now))
        return self._report(po, () if fill is None else (fill,), now)

    def _execute(self, po: PaperOrder, spec: InstrumentSpec, quantity: Decimal, price: Decimal, now: float) -> Fill:
        """Book one fill: position, cash, commission, the order's totals; return it."""
        notional = quantity * price
        rate = ONE if spec.currency == self.opts.currency else self._rate(spec.currency, now)
        fee = commission(self.opts.commission, quantity, notional if rate is ONE else notional * rate) if self._charges else ZERO
        symbol = spec.symbol
        holding, gain = apply_fill(self._positions.get(symbol, FLAT), quantity if po.side > 0 else -quantity, price)
        self._positions[symbol] = holding
        self._dirty_positions.add(symbol)
        if gain or fee:
            self._balance = book(self._balance, gain if rate is ONE else (gain * rate).quantize(_CONVERTED), fee)
        self._trade_seq += 1
        self._dirty_account = True
        fill = Fill(trade_id=f"{self.name}-T{self._trade_seq}", quantity=quantity, price=price, commission=fee, at=self._datetime(now))
        po.filled += quantity
        po.filled_value += notional
        po.commission += fee
        po.fills.append(fill)
        return fill

    def _refuse(self, po: PaperOrder, problem: str, now: float) -> ExecutionReport:
        # A working order that can no longer be afforded: REJECTED if untouched, else the rest is cancelled.
        po.error = ("INSUFFICIENT_FUNDS", problem)
        if po.filled:
            self._end(po, S.CANCELED, "cancelled: insufficient funds", now)
        else:
            self._end(po, S.REJECTED, "rejected: insufficient funds", now)
        return self._report(po, (), now)

    def _end(self, po: PaperOrder, status: OrderStatus, raw: str, now: float) -> None:
        po.status, po.raw_status, po.updated_at = status, raw, now
        self._dirty_orders[po.client_order_id] = po
        self._finish(po, now)

    def _finish(self, po: PaperOrder, now: float) -> None:
        """Move a final order out of the book; an entry with brackets that filled gets its children now."""
        self._working.pop(po.client_order_id, None)
        recent = self._recent
        recent[po.client_order_id] = po
        if len(recent) > RECENT_ORDERS:
            recent.popitem(last=False)
        if po.parent is None and po.filled and po.has_brackets:
            self._spawn_children(po, now)

    def _spawn_children(self, parent: PaperOrder, now: float) -> None:
        legs: list[tuple[str, OrderType, Decimal | None, Decimal | None]] = []
        if parent.stop_loss is not None:
            legs.append((f"{parent.client_order_id}-SL", OrderType.STOP, None, parent.stop_loss))
        if parent.take_profit is not None:
            legs.append((f"{parent.client_order_id}-TP", OrderType.LIMIT, parent.take_profit, None))
        distance = parent.trailing_stop
        if distance is not None and parent.instrument in self._specs:
            # The trailing stop starts one distance behind the touch it would close at, the best price seen since the fill.
            q = self._feed.quote(parent.instrument, now)
            legs.append((f"{parent.client_order_id}-TSL", OrderType.STOP, None, q.bid - distance if parent.side > 0 else q.ask + distance))
        children = []
        for cid, kind, limit, stop in legs:
            self._order_seq += 1
            children.append(
                PaperOrder(
                    cid, f"P{self._order_seq}", parent.instrument, -parent.side, kind, parent.filled, limit, stop, TimeInForce.GTC, now,
                    tag=parent.tag, parent=parent.client_order_id, triggered=stop is None, updated_at=now,
                    trailing_stop=distance if cid.endswith("-TSL") else None,
                )  # fmt: skip
            )
        if len(children) > 1:
            # Linked in a ring; a child that fills cancels every other working child of the entry.
            for child, other in zip(children, children[1:] + children[:1], strict=True):
                child.oco = other.client_order_id
        self._dirty_account = True
        for child in children:
            self._dirty_orders[child.client_order_id] = child
            self._add_working(child)
            self._outbox.append(self._report(child, (), now))

    def _add_working(self, po: PaperOrder) -> None:
        self._working[po.client_order_id] = po
        if self._wake is not None:
            self._wake.set()

    def poll(self) -> int:
        """Match every working order against the current quotes once; return how many reports were emitted.

        An order is matched once per quote step; DAY orders expire at their UTC midnight.
        """
        now = self._clock()
        emitted = 0
        emit = self._emit
        for po in list(self._working.values()):
            if po.client_order_id not in self._working:
                continue  # cancelled by its OCO sibling during this pass
            report: ExecutionReport | None
            if po.expires_at is not None and now >= po.expires_at:
                self._end(po, S.EXPIRED, "expired", now)
                report = self._report(po, (), now)
            elif po.instrument not in self._specs:
                continue  # no longer quoted: it can only be cancelled (or expire)
            else:
                quote = self._feed.quote(po.instrument, now)
                if quote.step == po.checked_step:
                    continue
                report = self._advance(po, quote, now, fresh=False)
            reports = ([] if report is None else [report]) + self._outbox
            self._outbox = []
            for item in reports:
                emit(item)
            emitted += len(reports)
        return emitted

    def _cancel_now(self, client_order_id: str) -> ExecutionReport:
        po = self._working.get(client_order_id)
        if po is None:
            raise self._not_working(client_order_id)
        now = self._clock()
        self._end(po, S.CANCELED, "cancelled", now)
        return self._report(po, (), now)

    def _modify_now(self, client_order_id: str, changes: OrderChanges) -> ExecutionReport:
        po = self._working.get(client_order_id)
        if po is None:
            raise self._not_working(client_order_id)
        now = self._clock()
        spec = self._spec(po.instrument)
        quantity = po.quantity if changes.quantity is None else changes.quantity
        if changes.quantity is not None:
            self._check_quantity(spec, quantity)
            if quantity < po.filled:
                raise InvalidQuantity(f"quantity {quantity} of order {client_order_id} is below its filled quantity {po.filled}")
        limit, stop = po.limit_price, po.stop_price
        if changes.limit_price is not None:
            if limit is None:
                raise InvalidPrice(f"order {client_order_id} is a {po.type} order and has no limit price to change")
            limit = self._check_price(spec, "limit price", changes.limit_price)
        if changes.stop_price is not None:
            if stop is None:
                raise InvalidPrice(f"order {client_order_id} is a {po.type} order and has no stop price to change")
            if po.triggered:
                raise InvalidPrice(f"the stop of order {client_order_id} has already triggered")
            stop = self._check_price(spec, "stop price", changes.stop_price)
        reference = limit if limit is not None else stop if stop is not None else self._touch(po, now)
        if po.has_brackets and po.parent is None and po.type is not OrderType.MARKET:
            self._check_bracket(spec, po.side, reference, po.stop_loss, po.take_profit)
        if quantity > po.quantity:
            extra = quantity - po.quantity
            problem = self._funds_problem(spec, extra if po.side > 0 else -extra, reference, now)
            if problem is not None:
                raise InsufficientFunds(problem)
        po.quantity, po.limit_price, po.stop_price, po.checked_step = quantity, limit, stop, None
        if po.filled == quantity:
            self._end(po, S.FILLED, "filled", now)
            return self._report(po, (), now)
        po.raw_status, po.updated_at = "modified", now
        self._dirty_orders[client_order_id] = po
        report = self._advance(po, self._feed.quote(po.instrument, now), now, fresh=False)
        return report if report is not None else self._report(po, (), now)

    def _touch(self, po: PaperOrder, now: float) -> Decimal:
        q = self._feed.quote(po.instrument, now)
        return q.ask if po.side > 0 else q.bid

    def _not_working(self, client_order_id: str) -> OrderNotFound:
        known = self._known(client_order_id)
        if known is not None:
            return OrderNotFound(f"order {client_order_id} is not working at paper broker {self.name}: it is {known.status}")
        return OrderNotFound(f"order {client_order_id} is not working at paper broker {self.name}")

    def _remember_rejection(self, order: Order, side: int, exc: TradingError, now: float) -> None:
        # So that lookup() answers REJECTED for it, as for any order this broker has seen.
        po = PaperOrder(
            order.client_order_id, None, order.instrument, side, _TYPES[order.type], order.quantity, order.limit_price, order.stop_price,
            _TIFS[order.time_in_force], now, order.stop_loss, order.take_profit, order.tag,
            status=S.REJECTED, raw_status=f"rejected: {exc.code.lower().replace('_', ' ')}", error=(str(exc.code), exc.message),
            updated_at=now,
        )  # fmt: skip
        self._dirty_orders[po.client_order_id] = po
        self._finish(po, now)

    # --------------------------------------------------------------- marking

    def _rate(self, currency: str, now: float) -> Decimal:
        """Account-currency value of one unit of ``currency`` (1 without a conversion pair)."""
        pair = self._conversions.get(currency)
        if pair is None:
            return ONE
        q = self._feed.quote(pair[0], now)
        mid = (q.bid + q.ask) / 2
        return ONE / mid if pair[1] else mid

    def _mark(self, symbol: str, holding: Holding, now: float) -> tuple[Decimal, Decimal]:
        """(mark price, conversion rate) of a position: the mid, or its cost when the broker no longer quotes it."""
        spec = self._specs.get(symbol)
        if spec is None:
            return average_price(holding), ONE
        q = self._feed.quote(symbol, now)
        rate = ONE if spec.currency == self.opts.currency else self._rate(spec.currency, now)
        return (q.bid + q.ask) / 2, rate

    def _exposure(self, now: float, skip: str | None = None) -> tuple[Decimal, Decimal]:
        """(gross exposure of the open positions but ``skip``'s, unrealised P&L of them all), in the account currency."""
        gross = open_pnl = ZERO
        for symbol, holding in self._positions.items():
            if not holding.quantity:
                continue
            mark, rate = self._mark(symbol, holding, now)
            pnl = unrealised(holding, mark)
            open_pnl += pnl if rate is ONE else pnl * rate
            if symbol != skip:
                gross += exposure(holding, mark) if rate is ONE else exposure(holding, mark) * rate
        return gross, open_pnl

    # --------------------------------------------------------------- reports

    def _datetime(self, now: float) -> datetime:
        if self._at[0] != now:
            self._at = (now, datetime.fromtimestamp(now, UTC))
        return self._at[1]

    def _report(self, po: PaperOrder, fills: Iterable[Fill], now: float) -> ExecutionReport:
        return order_to_report(po, fills, self._datetime(now))

    def _flush_later(self) -> None:
        # Reports made during a call go out after the call's answer, so the router sees the parent first.
        if not self._outbox:
            return
        reports, self._outbox = self._outbox, []
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            for report in reports:
                self._emit(report)
            return
        for report in reports:
            loop.call_soon(self._emit, report)

    def _emit(self, report: ExecutionReport) -> None:
        # One report the router cannot take must not hold back the others.
        try:
            self.services.emit(report)
        except Exception:
            self.services.logger.exception("paper broker %s: emitting the report of %s failed", self.name, report.client_order_id)

    # ----------------------------------------------------------- persistence

    def _known(self, client_order_id: str) -> PaperOrder | None:
        return self._working.get(client_order_id) or self._dirty_orders.get(client_order_id) or self._recent.get(client_order_id)

    def _load_order(self, client_order_id: str) -> PaperOrder | None:
        # Working orders are all in memory; a done one older than the recent ones is only in the history.
        table = history_table
        with self.services.engine.connect() as conn:
            row = conn.execute(select(table.c.data).where(and_(table.c.broker == self.name, table.c.client_order_id == client_order_id))).first()
        return None if row is None else order_from_history(client_order_id, row.data)

    def persist(self, conn: Connection) -> None:
        """Upsert what changed since the last call (account and counters, positions, orders, feed origin); no commit.

        If a statement fails, what was to be written stays marked as changed for the next call.
        """
        if not (self._dirty_account or self._dirty_orders or self._dirty_positions or self._dirty_origin):
            return
        dialect = conn.dialect.name
        if dialect not in self._upserts:
            self._upserts[dialect] = {t.name: Upsert(t, conn.dialect) for t in metadata.sorted_tables}
            self._deletes[dialect] = Delete(orders_table, conn.dialect)
        # Swap the change sets out first: whatever changes while we write is kept for the next call.
        account, origin = self._dirty_account, self._dirty_origin
        symbols, orders = self._dirty_positions, self._dirty_orders
        self._dirty_account = self._dirty_origin = False
        self._dirty_positions, self._dirty_orders = set(), {}
        try:
            self._write(conn, dialect, account, origin, symbols, orders)
        except BaseException:
            self._dirty_account |= account
            self._dirty_origin |= origin
            self._dirty_positions |= symbols
            self._dirty_orders = orders | self._dirty_orders
            raise

    def _write(self, conn: Connection, dialect: str, account: bool, origin: bool, symbols: set[str], orders: dict[str, PaperOrder]) -> None:
        upserts = self._upserts[dialect]
        now = self._clock()
        name = self.name
        if origin:
            upserts[feeds_table.name](conn, [(name, self.opts.feed.kind, self._origin)])
        if account:
            b = self._balance
            row = (name, self.opts.currency, str(b.starting), str(b.realised), str(b.commission), self._order_seq, self._trade_seq, now)
            upserts[accounts_table.name](conn, [row])
        if symbols:
            positions = self._positions
            upserts[positions_table.name](conn, [holding_values(name, s, positions[s], now) for s in symbols])
        if not orders:
            return
        working: list[PaperOrder] = []
        done: list[PaperOrder] = []
        for po in orders.values():
            (working if po.status is S.ACCEPTED or po.status is S.PARTIALLY_FILLED else done).append(po)
        if working:
            upserts[orders_table.name](conn, [order_values(name, po) for po in working])
        if done:
            upserts[history_table.name](conn, [(name, po.client_order_id, history_text(po)) for po in done])
            gone = [po for po in done if po.stored]
            if gone:
                self._deletes[dialect](conn, [(name, po.client_order_id) for po in gone])
        # Only now that every statement ran: which orders have a working row.
        for po in working:
            po.stored = True
        for po in done:
            po.stored = False


def _inferred_spec(symbol: str, rows: list[Any], currency: str) -> InstrumentSpec:
    """Rules for a replayed instrument nobody configured: the tick seen in the file, whole units."""
    tick = infer_tick(rows, symbol)
    first = next(r for r in rows if r.symbol == symbol)
    return InstrumentSpec(symbol, first.bid, tick, ONE, ONE, tick, currency, "other")
