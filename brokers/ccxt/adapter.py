"""The adapter base for exchanges reached through ccxt: the flow every call follows, the exchange fills in the rest.

A subclass names its ccxt class and error table and supplies what differs per
exchange: the create request (pure), how an order is sent, read, found by client
order id, cancelled and listed, and its status words. This base does the rest:
capability checks, the rate limiter, error translation, retries of reads and
cancels (never of order creation), reports with fills, the references that map the
exchange's ids back to ours (kept in memory, written in the router's transaction),
lookups from the router's record of an order, and the poller that emits changes of
working orders.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from functools import partial
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import ccxt
from sqlalchemy import Connection

from brokers.base import AdapterOptions, AdapterServices, BrokerAdapter, Capabilities, ExecutionReport, OutcomeUnknown
from brokers.ratelimit import TokenBucket
from brokers.retry import retrying
from host.trading.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    ErrorCode,
    InvalidInstrument,
    NotSupported,
    OrderNotFound,
    RateLimited,
    ServiceUnavailable,
    TradingError,
)
from host.trading.model import Account, Instrument, Order, OrderChanges, OrderType, Position, Quote, TimeInForce
from host.trading.states import OrderStatus

from .errors import BrokerError, MalformedAnswer, outcome_unknown, translate
from .mapping import (
    ZERO,
    account_from_balances,
    dec,
    market_to_instrument,
    order_to_report,
    positions_from_balances,
    settle_status,
    ticker_to_quote,
)
from .options import CcxtOptions
from .poller import Poller, Seen, WorkingOrders
from .refs import OrderRef, OrderRefs

__all__ = ["CcxtBroker", "Target"]

T = TypeVar("T")
S = OrderStatus
RATE_LIMIT_PAUSE = 1.0
"""Seconds the bucket stays shut after a rate-limit answer that named no Retry-After."""
ORDER_PAUSE_MAX = 2.0
"""Seconds of a pause the exchange asked for (Retry-After) that a new order waits out; a longer one refuses it,
rather than send it long after the strategy decided (a Binance IP ban lasts minutes to days)."""


@dataclass(frozen=True)
class Target:
    """One order at the exchange: its symbol, the client id sent on the wire, the exchange's id when known."""

    client_order_id: str
    symbol: str
    wire_id: str
    broker_order_id: str | None
    created_at: float | None = None
    """When the order was created (epoch seconds, our clock): bounds a search by client order id."""


class CcxtBroker(BrokerAdapter):
    """A spot exchange account reached through ccxt; see the subclasses for the options each takes."""

    exchange_name: ClassVar[str]
    credential_fields: ClassVar[tuple[str, ...]] = ("api_key", "api_secret")
    order_types: ClassVar[frozenset[OrderType]]
    time_in_force: ClassVar[frozenset[TimeInForce]]
    can_modify: ClassVar[bool] = False
    default_rate: ClassVar[float]
    """Bucket tokens a second when ``rate_limit`` is not set."""
    tokens_per_cost: ClassVar[float] = 1.0
    """Bucket tokens per unit of ccxt's endpoint cost."""

    read_attempts = 4
    read_backoff = 0.2

    def __init__(self, name: str, options: AdapterOptions, services: AdapterServices) -> None:
        if not isinstance(options, CcxtOptions):
            raise TypeError(f"{self.exchange_name} broker {name} needs {type(self).Options.__name__}, got {type(options).__name__}")
        super().__init__(name, options, services)
        self.opts: CcxtOptions = options
        self.bucket = TokenBucket(options.rate_limit or self.default_rate)
        self.refs = OrderRefs(services.engine, name)
        self.working = WorkingOrders()
        self.poller = Poller(self._poll, lambda: len(self.working) > 0, options.poll_interval, services.logger, name)
        self.exchange: Any = None
        self._instruments: dict[str, Instrument] = {}
        self._capabilities = self._make_capabilities()
        self._latency: float | None = None
        self._connected = False

    # ------------------------------------------------------------ what an exchange supplies

    @abstractmethod
    def _make_exchange(self, api_key: str, secret: str) -> Any:
        """The ccxt client, pointed at the right server (see :func:`.exchange.build_exchange`)."""

    @staticmethod
    @abstractmethod
    def _error(body: Any) -> BrokerError | None:
        """The exchange's one error table applied to an error body."""

    @abstractmethod
    def _status(self, order: Mapping[str, Any]) -> tuple[OrderStatus, str]:
        """Our status and the exchange's word for a ccxt order (read from ``order['info']``)."""

    @abstractmethod
    def _supports(self, kind: OrderType, tif: TimeInForce) -> bool:
        """Whether this order type can be sent with this time in force."""

    @abstractmethod
    def _create_request(self, order: Order, market: Mapping[str, Any], wire_id: str) -> dict[str, Any]:
        """The exchange's create-order request (pure)."""

    @abstractmethod
    async def _send_create(self, request: dict[str, Any], market: Mapping[str, Any]) -> Any:
        """Send the create request once; the raw answer (MalformedAnswer if it is not one)."""

    @abstractmethod
    async def _created(self, raw: Any, target: Target, market: Mapping[str, Any]) -> ExecutionReport:
        """The report of an order the exchange just accepted, from its answer (and reads if needed)."""

    @abstractmethod
    async def _fetch(self, target: Target, market: Mapping[str, Any]) -> dict[str, Any] | None:
        """The ccxt order by client or exchange id; None if the exchange does not know it."""

    @abstractmethod
    async def _trades(self, order: Mapping[str, Any], market: Mapping[str, Any]) -> list[dict[str, Any]]:
        """ccxt trades of one order."""

    @abstractmethod
    async def _cancel(self, target: Target, market: Mapping[str, Any]) -> dict[str, Any]:
        """Cancel once; the ccxt order as the exchange answered (or read afterwards)."""

    async def _after_cancel(self, answer: dict[str, Any], target: Target, market: Mapping[str, Any]) -> dict[str, Any]:
        """The order to report after a cancel was accepted; the cancel's own answer by default."""
        return answer

    @abstractmethod
    async def _list_open(self, symbol: str | None) -> list[dict[str, Any]]:
        """ccxt orders open at the exchange, of one symbol or all."""

    def _wire_id(self, client_order_id: str) -> str:
        """The client order id as sent (exchanges with id rules override this)."""
        return client_order_id

    async def _check(self, order: Order, market: Mapping[str, Any]) -> None:
        """Exchange rules checked before sending (Binance's filters); nothing by default."""

    def _refuse_edit(self, order: Order, changes: OrderChanges) -> None:
        """Raise NotSupported for a modification this exchange cannot make; nothing by default."""

    async def _edit(self, order: Order, changes: OrderChanges, target: Target, market: Mapping[str, Any]) -> None:
        """Change a working order in place, once."""
        raise NotSupported(f"{self.exchange_name} cannot modify working orders", broker_code="modify")

    # ------------------------------------------------------------------- calls and errors

    async def _call(self, make: Callable[[], Awaitable[T]], action: str) -> T:
        """One request: latency measured, ccxt errors translated, a rate-limit answer shuts the bucket."""
        started = time.perf_counter()
        try:
            result = await make()
        except (TradingError, OutcomeUnknown):
            raise
        except Exception as exc:
            if not _is_exchange_error(exc):
                raise
            error = translate(exc, self._error, exchange=self.exchange_name, action=action)
            self._on_error(error)
            raise error from exc
        finally:
            self._latency = time.perf_counter() - started
        self._connected = True
        return result

    def _on_error(self, error: TradingError) -> None:
        if error.code is ErrorCode.RATE_LIMITED:
            self.bucket.block(error.retry_after if error.retry_after is not None else RATE_LIMIT_PAUSE)
        elif error.code is ErrorCode.CONNECTION_ERROR:
            self._connected = False

    async def _read(self, make: Callable[[], Awaitable[T]], action: str) -> T:
        """A read (or a cancel): retried with backoff while the exchange is unreachable or failing."""
        return await retrying(
            lambda: self._call(make, action), retry_on=(ConnectionFailed, ServiceUnavailable),
            attempts=self.read_attempts, base=self.read_backoff,
        )  # fmt: skip

    # ------------------------------------------------------------------------ life cycle

    def _make_capabilities(self) -> Capabilities:
        return Capabilities(
            order_types=self.order_types, time_in_force=self.time_in_force, fractional_units=True,
            hedging=False, brackets=False, modify=self.can_modify, instruments=tuple(sorted(self._instruments)),
        )  # fmt: skip

    async def start(self) -> None:
        """Load the exchange's spot markets, make the references table, start polling working orders."""
        secrets = self.services.secrets
        missing = [f for f in self.credential_fields if not secrets.get(f)]
        if missing:
            raise AuthenticationFailed(f"{self.exchange_name} broker {self.name}: credentials missing: {', '.join(missing)}")
        self.exchange = self._make_exchange(secrets["api_key"], secrets["api_secret"])
        try:
            self.refs.start(self.services.clock())
            markets = await self._read(lambda: self.exchange.load_markets(), "load markets")
        except BaseException:
            await self.exchange.close()  # the router stops only the adapters that started: close the HTTP session here
            raise
        self._instruments = {}
        for symbol, market in markets.items():
            if market.get("spot") and market.get("active") is not False:
                instrument = market_to_instrument(market)
                if instrument is not None:
                    self._instruments[symbol] = instrument
        self._capabilities = self._make_capabilities()
        self.poller.start()

    async def stop(self) -> None:
        """Stop polling and close the HTTP session (working orders stay working at the exchange)."""
        await self.poller.stop()
        if self.exchange is not None:
            await self.exchange.close()
        self._connected = False

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def instrument(self, symbol: str) -> Instrument | None:
        return self._instruments.get(symbol)

    def _market(self, symbol: str) -> dict[str, Any]:
        if symbol not in self._instruments:
            raise InvalidInstrument(f"{self.exchange_name} broker {self.name} does not trade {symbol!r} (spot symbols look like 'BTC/USDT')")
        market: dict[str, Any] = self.exchange.markets[symbol]
        return market

    def describe(self) -> dict[str, Any]:
        return super().describe() | {
            "environment": self.opts.environment,
            "connected": self._connected,
            "latency_ms": None if self._latency is None else round(self._latency * 1000, 3),
            "instruments": len(self._instruments),
            "working_orders": len(self.working),
            "poll_failures": self.poller.failures,
        }

    def persist(self, conn: Connection) -> None:
        self.refs.persist(conn)

    # ------------------------------------------------------------------------ reports

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.services.clock(), UTC)

    async def _report(self, order: Mapping[str, Any], market: Mapping[str, Any], client_order_id: str) -> ExecutionReport:
        """Our report of a ccxt order, with all its fills (read when the answer lacks them); watched while working."""
        status, word = self._status(order)
        trades = list(order.get("trades") or [])
        filled = dec(order.get("filled")) or ZERO
        if filled > sum((dec(t.get("amount")) or ZERO for t in trades), ZERO):
            trades = await self._read(lambda: self._trades(order, market), "read fills")
        info = order.get("info") or {}
        report = order_to_report(
            order, client_order_id=client_order_id, status=status, raw_status=word, market=market,
            trades=trades, raw=self._raw(info), now=self._now(),
        )  # fmt: skip
        if report.broker_order_id:
            created = dec(order.get("timestamp"))
            self.refs.learn(
                client_order_id, report.broker_order_id, str(market["symbol"]), self._wire_id(client_order_id),
                float(created) / 1000 if created is not None else self.services.clock(),
            )  # fmt: skip
        self.working.update(client_order_id, str(market["symbol"]), report.broker_order_id, report.status, filled)
        return report

    def _raw(self, info: Mapping[str, Any]) -> dict[str, Any]:
        return dict(info)

    def _emit(self, report: ExecutionReport) -> bool:
        """Hand a report to the router; False if it could not take it."""
        try:
            self.services.emit(report)
        except Exception:  # one report the router cannot take must not stop the poller
            self.services.logger.exception("%s: emitting the report of %s failed", self.name, report.client_order_id)
            return False
        return True

    # ------------------------------------------------------------------------ orders

    def _refuse_unsupported(self, order: Order) -> None:
        kind, tif = OrderType(order.type), TimeInForce(order.time_in_force)
        if kind not in self.order_types:
            raise NotSupported(f"{self.exchange_name} does not support {kind} orders", broker_code=f"order type {kind}")
        if tif not in self.time_in_force or not self._supports(kind, tif):
            raise NotSupported(f"{self.exchange_name} does not support {kind} orders with time in force {tif}", broker_code=f"time in force {tif}")
        if order.stop_loss is not None or order.take_profit is not None:
            raise NotSupported(f"{self.exchange_name} does not attach brackets (stop_loss / take_profit)", broker_code="brackets")
        if order.trailing_stop is not None:
            raise NotSupported(f"{self.exchange_name} does not support trailing stops", broker_code="trailing stops")

    async def submit(self, order: Order) -> ExecutionReport:
        """Check, send once; a timeout, dropped connection or 5xx raises OutcomeUnknown.

        During a pause the exchange asked for (longer than :data:`ORDER_PAUSE_MAX`) the order is
        refused at once with RATE_LIMITED instead of waiting to be sent late.

        Nothing is written before sending: the router journalled the order and looks it up
        from that record. The reference kept here maps the exchange's ids back to ours and is
        written at the router's next commit.
        """
        self._refuse_unsupported(order)
        market = self._market(order.instrument)
        paused = self.bucket.delay(0)  # > 0 only while a Retry-After pause lasts; takes nothing
        if paused > ORDER_PAUSE_MAX:
            raise RateLimited(
                f"{self.exchange_name} new order: the exchange asked for a pause, {paused:.0f} s left; not sent", retry_after=paused
            )  # fmt: skip
        await self._check(order, market)
        cid = order.client_order_id
        wire = self._wire_id(cid)
        request = self._create_request(order, market, wire)
        created = order.created_at.timestamp()
        target = Target(cid, order.instrument, wire, None, created)
        self.refs.remember(OrderRef(cid, order.instrument, wire, None, created))
        try:
            raw = await self._call(lambda: self._send_create(request, market), "new order")
        except TradingError as error:
            if outcome_unknown(error):
                raise OutcomeUnknown(f"{self.exchange_name} may or may not have order {cid}: {error}") from error
            raise
        try:
            return await self._created(raw, target, market)
        except Exception as exc:  # the exchange took the order; only reading it back failed
            raise OutcomeUnknown(f"{self.exchange_name} accepted order {cid} but reading it back failed: {exc}") from exc

    def _target(self, order: Order) -> Target:
        """Where the router's record says the order is: its instrument, the wire id that follows from its id, the exchange's id."""
        cid = order.client_order_id
        broker_id = order.broker_order_id
        if broker_id is None:
            ref = self.refs.get(cid)
            broker_id = ref.broker_order_id if ref is not None else None
        return Target(cid, order.instrument, self._wire_id(cid), broker_id, order.created_at.timestamp())

    async def cancel(self, order: Order) -> ExecutionReport:
        """Cancel (retried while the exchange is unreachable); ORDER_NOT_FOUND if it is no longer working."""
        market = self._market(order.instrument)
        target = self._target(order)
        answer = await self._read(lambda: self._cancel(target, market), "cancel")
        return await self._report(await self._after_cancel(answer, target, market), market, order.client_order_id)

    async def modify(self, order: Order, changes: OrderChanges) -> ExecutionReport:
        """Change in place; if the answer is lost the order is read back and its terms as the exchange holds them reported."""
        if not self.can_modify:
            raise NotSupported(f"{self.exchange_name} cannot modify working orders (cancel and place a new one)", broker_code="modify")
        self._refuse_edit(order, changes)
        market = self._market(order.instrument)
        target = self._target(order)
        try:
            await self._call(lambda: self._edit(order, changes, target, market), "modify")
        except TradingError as error:
            if not outcome_unknown(error):
                raise
        found = await self._read(lambda: self._fetch(target, market), "read order")
        if found is None:
            raise OrderNotFound(f"{self.exchange_name} no longer knows order {order.client_order_id}")
        return await self._report(found, market, order.client_order_id)

    async def lookup(self, client_order_id: str, order: Order | None = None) -> ExecutionReport | None:
        """The order as the exchange has it, found by our client order id; None if the exchange does not have it.

        ``order`` (the router's record) gives the symbol and creation time the search needs; without
        it the reference kept by this adapter does. With neither the symbol is unknown: that raises
        OrderNotFound, never None, which would tell the router the exchange never got the order.
        """
        if order is not None:
            target = self._target(order)
        else:
            ref = self.refs.get(client_order_id)
            if ref is None:
                raise OrderNotFound(
                    f"{self.exchange_name} broker {self.name} cannot look up order {client_order_id}: its symbol is unknown "
                    "(no reference kept and no order given); this says nothing about whether the exchange has it"
                )  # fmt: skip
            target = Target(client_order_id, ref.symbol, self._wire_id(client_order_id), ref.broker_order_id, ref.created_at)
        market = self.exchange.markets.get(target.symbol)
        if market is None:
            raise InvalidInstrument(f"{self.exchange_name} no longer lists {target.symbol!r} (order {client_order_id})")
        try:
            found = await self._read(lambda: self._fetch(target, market), "lookup")
        except OrderNotFound:
            return None
        return None if found is None else await self._report(found, market, client_order_id)

    async def open_orders(self) -> list[ExecutionReport]:
        """Every order open at the exchange (ours by client order id, others by theirs), with fills so far."""
        orders = await self._read(lambda: self._list_open(None), "open orders")
        reports = []
        for order in orders:
            market = self.exchange.markets.get(order.get("symbol"))
            if market is None:
                continue
            cid = self.refs.client_id_of(str(order.get("clientOrderId") or order.get("id")))
            reports.append(await self._report(order, market, cid))
        return reports

    # ------------------------------------------------------------------------ polling

    async def _poll(self) -> None:
        """One tick: every watched symbol in turn; one that fails (a delisted symbol …) does not keep the others waiting."""
        failure: Exception | None = None
        for symbol in self.working.symbols():
            try:
                await self._poll_symbol(symbol)
            except Exception as exc:  # raised after the other symbols, for the poller to count and log
                failure = failure or exc
        if failure is not None:
            raise failure

    async def _poll_symbol(self, symbol: str) -> None:
        """List the symbol's open orders, read and emit the watched ones that moved."""
        market = self.exchange.markets[symbol]
        listed = await self._read(partial(self._list_open, symbol), "poll open orders")
        open_now = {}
        for o in listed:
            status, _ = self._status(o)
            filled = dec(o.get("filled")) or ZERO
            open_now[str(o.get("id"))] = Seen(settle_status(status, filled, dec(o.get("amount"))), filled)
        for watched in self.working.changed(symbol, open_now):
            target = Target(watched.client_order_id, symbol, self._wire_id(watched.client_order_id), watched.broker_order_id)
            try:
                found = await self._read(partial(self._fetch, target, market), "poll order")
            except OrderNotFound:
                found = None
            if found is None:
                self.working.forget(watched.client_order_id)
                continue
            report = await self._report(found, market, watched.client_order_id)
            if Seen(report.status, dec(found.get("filled")) or ZERO) != watched.last and not self._emit(report):
                self.working.restore(watched)  # not taken: read and offered again next tick (each fill is applied once)

    # ------------------------------------------------------------------------ account

    def _symbol_of(self, asset: str) -> str | None:
        symbol = f"{asset}/{self.opts.currency}"
        return symbol if symbol in self._instruments else None

    async def _marks(self, symbols: list[str]) -> dict[str, Decimal]:
        if not symbols:
            return {}
        tickers = await self._read(lambda: self.exchange.fetch_bids_asks(symbols), "read prices")
        marks = {}
        for symbol, ticker in tickers.items():
            quote = ticker_to_quote(ticker, broker=self.name, instrument=symbol, now=self._now())
            if quote is not None:
                marks[symbol] = quote.mid
        return marks

    async def _balances(self) -> tuple[dict[str, Any], dict[str, Decimal]]:
        balances = await self._read(lambda: self.exchange.fetch_balance(), "read balances")
        if not isinstance(balances, dict):
            raise ServiceUnavailable(f"{self.exchange_name} read balances: malformed answer")
        held = [s for s in (self._symbol_of(a) for a, v in (balances.get("total") or {}).items() if dec(v)) if s]
        return balances, await self._marks(sorted(held))

    async def positions(self) -> list[Position]:
        """Holdings other than the account currency, as positions against it (no cost basis: average price 0)."""
        balances, marks = await self._balances()
        return positions_from_balances(balances, broker=self.name, quote=self.opts.currency, symbol_of=self._symbol_of, marks=marks)

    async def account(self) -> Account:
        """Cash in the account currency; equity adds holdings at their market's mid."""
        balances, marks = await self._balances()
        return account_from_balances(balances, broker=self.name, quote=self.opts.currency, symbol_of=self._symbol_of, marks=marks)

    async def quote(self, instrument: str) -> Quote:
        """Best bid and ask with their sizes."""
        self._market(instrument)
        tickers = await self._read(lambda: self.exchange.fetch_bids_asks([instrument]), "quote")
        ticker = tickers.get(instrument) if isinstance(tickers, dict) else None
        quote = None if ticker is None else ticker_to_quote(ticker, broker=self.name, instrument=instrument, now=self._now())
        if quote is None:
            raise ServiceUnavailable(f"{self.exchange_name} quote: no bid and ask for {instrument}")
        return quote


def _is_exchange_error(exc: BaseException) -> bool:
    return isinstance(exc, (ccxt.BaseError, MalformedAnswer))
