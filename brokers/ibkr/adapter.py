"""The Interactive Brokers adapter: orders, positions, account and quotes through TWS / IB Gateway (ib_async).

Our client order id travels as IB's ``orderRef``: :meth:`IbkrBroker.lookup`
finds an order by it among open orders, completed orders and executions. An
order is placed once; if the connection drops, or TWS stays silent or answers
with an error code :mod:`.errors` does not classify before it acknowledged the
order, :meth:`~IbkrBroker.submit` raises OutcomeUnknown and the router looks
the order up. Changes TWS pushes later (fills of resting orders, cancels,
bracket children) are reported through ``services.emit``, one report per
change, after each TCP packet. Nothing is kept in the state database: TWS
holds the orders, and after a reconnect the adapter reports what changed
while it was away.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from ib_async import CommissionReport, Contract, Trade, TradeLogEntry
from ib_async import Fill as IbFill
from ib_async import Order as IbOrder

from brokers.base import AdapterOptions, AdapterServices, BrokerAdapter, Capabilities, ExecutionReport, OutcomeUnknown
from brokers.retry import retrying
from host.trading.errors import ConnectionFailed, InvalidRequest, NotSupported, OrderNotFound, TradingError, error_for
from host.trading.model import Account, Instrument, Order, OrderChanges, OrderRequest, OrderType, Position, Quote, TimeInForce
from host.trading.states import OPEN_STATES, TERMINAL_STATES, OrderStatus

from .connection import ErrorWatch, IbConnection, sending
from .errors import Effect, ib_error, refuses, trading_error, unknown_outcome
from .instruments import InstrumentBook
from .marketdata import MarketData
from .options import IbkrOptions
from .orders import bracket_parent, changes_to_ib, ib_to_request, legs_needed, order_to_ib
from .portfolio import account_from_values, commission_in, positions_from
from .reports import OrderState, fills_of, trade_report, trade_state
from .tracking import ReportTracker, waits_for_details

__all__ = ["IbkrBroker"]

T = TypeVar("T")
S = OrderStatus
_DONE = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
_FOREIGN = "ibkr-perm-"
"""Client order id given to an order placed without ours (in TWS by hand, by another program)."""


@dataclass(frozen=True, slots=True)
class _Meta:
    """What we know of an order we placed that IB does not tell back."""

    instrument: str
    tag: str | None
    parent: str | None = None
    terms: OrderRequest | None = None


class IbkrBroker(BrokerAdapter):
    """One IB account through one TWS / IB Gateway API session; see :mod:`brokers.ibkr.options`."""

    type_name = "ibkr"
    Options = IbkrOptions
    credential_fields = ()  # TWS / IB Gateway holds the login

    def __init__(self, name: str, options: AdapterOptions, services: AdapterServices) -> None:
        if not isinstance(options, IbkrOptions):
            raise TypeError(f"ibkr broker {name} needs IbkrOptions, got {type(options).__name__}")
        super().__init__(name, options, services)
        self.opts = options
        self._log = services.logger
        self._conn = IbConnection(options, services.logger, on_ready=self._on_ready, on_restored=self._on_restored, on_down=self._on_down)
        self._ib = self._conn.ib
        self._book = InstrumentBook(dict(options.instruments), services.logger)
        self._market = MarketData(self._conn, broker=name, stream=options.quotes == "stream", timeout=options.timeout)
        self._tracker = ReportTracker(services.emit, self._build, hold=options.commission_wait, logger=services.logger)
        self._meta: dict[str, _Meta] = {}
        self._completed: dict[int, str] = {}
        """permId → status, from TWS's completed orders (re-read after a restored link)."""
        self._sync = asyncio.Lock()
        self._synced = False
        """The session's orders have been read (changes are reported only from then on)."""
        self._latency: float | None = None
        self._capabilities = self._make_capabilities()
        ib = self._ib
        self._keep_trail_triggers()
        ib.orderStatusEvent += self._tracker.mark
        ib.openOrderEvent += self._tracker.mark
        ib.execDetailsEvent += self._on_fill
        ib.commissionReportEvent += self._on_commission
        ib.errorEvent += self._on_error
        ib.updateEvent += self._flush

    def _keep_trail_triggers(self) -> None:
        """Copy a trailing stop's trigger from each openOrder TWS sends onto the trade ib_async keeps.

        ib_async copies only quantity, prices, type and orderRef of a re-sent order onto its trade; the trigger
        of a TRAIL order (``trailStopPrice``), which TWS moves with the market, would stay as first placed.
        """
        wrapper = self._ib.wrapper
        original = wrapper.openOrder

        def open_order(order_id: int, contract: Contract, order: IbOrder, state: Any) -> None:
            trade = None if order.whatIf else wrapper.trades.get(wrapper.orderKey(order.clientId, order.orderId, order.permId))
            if trade is not None:
                trade.order.trailStopPrice, trade.order.trailingPercent = order.trailStopPrice, order.trailingPercent
            original(order_id, contract, order, state)

        wrapper.openOrder = open_order  # type: ignore[method-assign,assignment]

    def _make_capabilities(self) -> Capabilities:
        instruments = self._book.instruments
        return Capabilities(
            order_types=frozenset(OrderType),
            time_in_force=frozenset(TimeInForce),
            fractional_units=any(i.quantity_increment < 1 for i in instruments.values()),
            hedging=False,
            brackets=True,
            trailing_stops=True,
            modify=True,
            instruments=tuple(instruments),
        )

    # ------------------------------------------------------------- life cycle

    async def start(self) -> None:
        """Connect (or keep trying in the background), qualify the instruments, read the session's orders."""
        await self._conn.start()

    async def stop(self) -> None:
        self._tracker.close()
        await self._conn.stop()

    async def _on_ready(self, initial: bool) -> None:
        self._market.reset()
        try:
            await self._book.qualify(self._conn, self.opts.timeout)
        except Exception:  # orders still go out by symbol; quotes ask again
            self._log.exception("qualifying the instruments with TWS failed")
        self._capabilities = self._make_capabilities()
        if initial:
            # The router looks up what it left in flight right after start(): tell it nothing twice.
            for trade in self._ib.trades():
                if trade.order.orderRef:
                    self._tracker.told(self._build(trade))
        self._synced = True
        self._report_all()

    async def _on_restored(self, code: int) -> None:
        if code == 1101:
            self._market.reset()
        await self._refresh()
        self._report_all()

    def _on_down(self) -> None:
        self._synced = False
        self._tracker.forget_marks()  # the session's trades are gone; the next session marks its own
        self._market.reset()

    def _flush(self) -> None:
        if self._synced:
            self._tracker.flush()

    def _report_all(self) -> None:
        for trade in self._ib.trades():
            self._tracker.mark(trade)
        self._tracker.flush()

    # ---------------------------------------------------------------- events

    def _on_fill(self, trade: Trade, fill: IbFill) -> None:
        self._tracker.mark(trade)

    def _on_commission(self, trade: Trade, fill: IbFill, report: CommissionReport) -> None:
        self._tracker.mark(trade)

    def _on_error(self, req_id: int, code: int, text: str, contract: Any) -> None:
        trade = self._ib.wrapper.trades.get((self._ib.wrapper.clientId, req_id))
        if trade is None:
            return
        status = trade.orderStatus.status
        if status in _DONE:
            # ib_async marks an order Cancelled on a refused cancel or modification; IB keeps it working.
            state = self._state(trade)
            if state.status in OPEN_STATES:
                trade.orderStatus.status = state.raw_status
        self._tracker.mark(trade)

    # ---------------------------------------------------------------- reports

    def _build(self, trade: Trade) -> ExecutionReport:
        self._adopt_fills(trade)
        cid = trade.order.orderRef or f"{_FOREIGN}{trade.order.permId}"
        meta = self._meta.get(cid)
        parent, terms = (meta.parent, meta.terms) if meta is not None else self._derived_family(trade)
        if meta is not None and terms is None and meta.parent is not None:  # a trailing stop: a STOP at its trigger, once TWS tells it
            terms = _terms_of(trade.order, meta.instrument, meta.tag)
        completed = self._completed.get(trade.order.permId) if trade.order.permId else None
        return trade_report(trade, completed=completed, parent=parent, terms=terms, client_order_id=cid)

    def _adopt_fills(self, trade: Trade) -> None:
        """Attach the executions of the trade that ib_async got before it had the trade.

        ib_async files an execution that arrives before its order is known (a fill while a session
        starts) under no trade, and never attaches it later, not even from the executions it re-reads.
        """
        perm_id = trade.order.permId or trade.orderStatus.permId
        if not perm_id:
            return
        attached = {f.execution.execId for f in trade.fills}
        for fill in self._ib.wrapper.fills.values():
            if fill.execution.permId == perm_id and fill.execution.execId not in attached:
                trade.fills.append(fill)

    def _derived_family(self, trade: Trade) -> tuple[str | None, OrderRequest | None]:
        """Parent and terms of an order placed before this process (or by someone else)."""
        order, parent = trade.order, None
        if order.parentId or order.parentPermId:
            parent = bracket_parent(order.orderRef) or self._parent_ref(order)
        return parent, _terms_of(order, self._book.name_of(trade.contract))

    def _parent_ref(self, order: IbOrder) -> str | None:
        wrapper = self._ib.wrapper
        found = wrapper.trades.get((order.clientId, order.parentId)) if order.parentId else wrapper.permId2Trade.get(order.parentPermId)
        return found.order.orderRef or None if found is not None else None

    def _state(self, trade: Trade) -> OrderState:
        return trade_state(trade, self._completed.get(trade.order.permId) if trade.order.permId else None)

    def _find(self, client_order_id: str, *, confirmed: bool = True) -> Trade | None:
        """The trade carrying our client order id: a live one of this session, else a completed one.

        ``confirmed``: only a trade TWS has said something about (a placed order TWS never
        acknowledged is no evidence that IB has it).
        """
        found = None
        for trade in self._ib.wrapper.trades.values():
            if trade.order.orderRef != client_order_id or (confirmed and not self._confirmed(trade)):
                continue
            if trade.order.orderId > 0:
                return trade
            found = trade
        return found

    def _confirmed(self, trade: Trade) -> bool:
        return bool(trade.order.permId or trade.orderStatus.permId or trade.fills) or self._state(trade).answered

    # ----------------------------------------------------------------- orders

    async def submit(self, order: Order) -> ExecutionReport:
        """Place the order (an entry with its bracket children) once; OutcomeUnknown if TWS did not acknowledge it.

        An unclassified IB error instead of an acknowledgement is an unknown outcome too (``IbOutcomeUnknown``,
        with IB's code and text): TWS may have the order working.
        """
        cid = order.client_order_id
        contract = self._book.contract(order.instrument)
        self._conn.require()
        known = self._find(cid, confirmed=False) if cid in self._meta else None
        if known is not None:  # never place an order twice: what TWS has is the answer
            return self._told(self._build(known))
        await self._conn.pace(legs_needed(order))
        self._conn.require()
        ib, session = self._ib, self._conn.session
        ids = [ib.client.getReqId() for _ in range(legs_needed(order))]
        stock = self._book.kind(order.instrument) == "stock"
        legs = order_to_ib(order, ids, account=self._conn.account, outside_rth=self.opts.outside_rth and stock)
        for leg in legs:
            self._meta[leg.client_order_id] = _Meta(order.instrument, order.tag, leg.parent_client_order_id, leg.terms)
        started = time.perf_counter()
        with self._tracker.busy(leg.client_order_id for leg in legs), self._conn.watch(ids) as watch:
            trades = self._place(contract, [leg.order for leg in legs])
            entry = trades[0]
            answered = await self._conn.pulse.until(
                lambda: self._conn.session != session or not ib.isConnected() or self._answered(entry, watch), self.opts.timeout,
            )  # fmt: skip
            if self._conn.session != session or not ib.isConnected():
                raise OutcomeUnknown(f"the connection to TWS dropped before it acknowledged order {cid}")
            if not answered:
                raise OutcomeUnknown(f"TWS did not acknowledge order {cid} within {self.opts.timeout:g} s")
            await self._conn.pulse.until(lambda: not any(waits_for_details(t) for t in trades), self.opts.commission_wait)
            self._latency = time.perf_counter() - started
            report = self._told(self._build(entry))
            unknown = unknown_outcome(cid, watch.of(entry.order.orderId)) if report.status is S.SUBMITTED else None
            if unknown is not None:
                raise unknown
        for child in trades[1:]:
            self._tracker.mark(child)
        asyncio.get_running_loop().call_soon(self._tracker.flush)  # the children, after this answer
        if report.status is S.REJECTED and report.error is not None:
            raise _as_error(report)
        return report

    def _place(self, contract: Contract, orders: list[IbOrder]) -> list[Trade]:
        trades: list[Trade] = []
        try:
            for ib_order in orders:
                trades.append(self._ib.placeOrder(contract, ib_order))
        except ConnectionError:
            if not trades:
                raise ConnectionFailed("the connection to TWS dropped before the order was sent; nothing was sent") from None
            raise OutcomeUnknown("the connection to TWS dropped while a bracket was being sent") from None
        return trades

    def _answered(self, trade: Trade, watch: ErrorWatch) -> bool:
        if trade.fills or self._state(trade).answered:
            return True
        # An unclassified error answers too: what it means for the order is then unknown (see submit).
        return any(ib_error(code).effect in (Effect.REFUSED, Effect.UNKNOWN) for code, _ in watch.of(trade.order.orderId))

    def _told(self, report: ExecutionReport) -> ExecutionReport:
        self._tracker.told(report)
        return report

    async def cancel(self, order: Order) -> ExecutionReport:
        """Cancel a working order; its state once TWS answered (PENDING_CANCEL if it has not yet)."""
        return await self._retry(lambda: self._cancel(order))

    async def _cancel(self, order: Order) -> ExecutionReport:
        await self._conn.ready(self.opts.timeout)
        await self._conn.pace()
        trade = await self._working(order)  # after the wait: the trade of the current session, as it is now
        ib, session, order_id = self._ib, self._conn.session, trade.order.orderId
        started = time.perf_counter()
        with self._tracker.busy([order.client_order_id]), self._conn.watch([order_id]) as watch:
            with sending("the cancel"):
                ib.cancelOrder(trade.order)
            await self._conn.pulse.until(
                lambda: self._conn.session != session or not ib.isConnected() or _cancel_answered(trade, watch), self.opts.timeout,
            )  # fmt: skip
            if self._conn.session != session or not ib.isConnected():
                raise ConnectionFailed(f"the connection to TWS dropped while cancelling order {order.client_order_id}")
            self._latency = time.perf_counter() - started
            for code, text in watch.of(order_id):
                if refuses(code):
                    raise trading_error(code, text)
            return self._told(self._build(trade))

    async def modify(self, order: Order, changes: OrderChanges) -> ExecutionReport:
        """Change quantity or prices: IB re-places the same order id with the new terms."""
        await self._conn.ready(self.opts.timeout)
        await self._conn.pace()
        trade = await self._working(order)  # after the wait: a fill meanwhile must not be re-placed with new terms
        changed = changes_to_ib(trade.order, changes)
        ib, session, order_id = self._ib, self._conn.session, trade.order.orderId
        started = time.perf_counter()
        with self._tracker.busy([order.client_order_id]), self._conn.watch([order_id]) as watch:
            with sending("the modification"):
                ib.placeOrder(trade.contract, changed)
            since = len(trade.log)
            answered = await self._conn.pulse.until(
                lambda: self._conn.session != session or not ib.isConnected() or _modify_answered(trade, changed, since, watch),
                self.opts.timeout,
            )  # fmt: skip
            if self._conn.session != session or not ib.isConnected():
                raise ConnectionFailed(f"the connection to TWS dropped while modifying order {order.client_order_id}")
            for code, text in watch.of(order_id):
                if refuses(code):
                    raise trading_error(code, text)
            if not answered:
                raise ConnectionFailed(f"TWS did not answer the change of order {order.client_order_id} within {self.opts.timeout:g} s")
            self._latency = time.perf_counter() - started
            if not any(not line.errorCode and not line.message.startswith("Fill ") for line in trade.log[since:]):
                # Acknowledged by TWS's echo of the new terms alone (a held order keeps its status): note it as ib_async would.
                trade.log.append(TradeLogEntry(datetime.now(UTC), trade.orderStatus.status, "Modified"))
            return self._told(self._build(trade))

    async def _working(self, order: Order) -> Trade:
        """The live trade of a working order; OrderNotFound if TWS does not have it working."""
        trade = self._live(order)
        if trade is None:
            await self._refresh()
            trade = self._live(order)
        if trade is None:
            raise OrderNotFound(f"order {order.client_order_id} is not working at IB")
        state = self._state(trade)
        if state.status in TERMINAL_STATES:
            raise OrderNotFound(f"order {order.client_order_id} is not working at IB: it is {state.status}")
        client_id = self._ib.wrapper.clientId
        if trade.order.clientId != client_id:
            # An order id means an order only to the client that placed it: sent from here, a change would place a new order.
            raise InvalidRequest(
                f"order {order.client_order_id} was placed by TWS API client {trade.order.clientId}; client {client_id} cannot change or "
                "cancel it (do it in TWS)"
            )
        return trade

    def _live(self, order: Order) -> Trade | None:
        wrapper = self._ib.wrapper
        if order.broker_order_id and order.broker_order_id.isdigit():
            trade = wrapper.trades.get((wrapper.clientId, int(order.broker_order_id)))
            if trade is not None and trade.order.orderRef == order.client_order_id:
                return trade
        trade = self._find(order.client_order_id)
        return trade if trade is not None and trade.order.orderId > 0 else None

    async def lookup(self, client_order_id: str, order: Order | None = None) -> ExecutionReport | None:
        """The order's state at IB, found by orderRef among open and completed orders and executions; None if IB never got it."""
        return await self._retry(lambda: self._lookup(client_order_id))

    async def _lookup(self, client_order_id: str) -> ExecutionReport | None:
        await self._conn.ready(self.opts.timeout)
        trade = self._find(client_order_id)
        if trade is None:
            await self._refresh()
            trade = self._find(client_order_id)
        if trade is not None:
            return self._told(self._build(trade))
        fills = [f for f in self._ib.fills() if f.execution.orderRef == client_order_id]
        if not fills:
            return None
        # Executions of an order TWS no longer lists: the router completes the status from the quantity.
        return ExecutionReport(client_order_id, S.PARTIALLY_FILLED, "executions only", str(fills[0].execution.orderId), fills_of(fills))

    async def open_orders(self) -> list[ExecutionReport]:
        """Every order working in the account (ours with their client order ids, others as ibkr-perm-<permId>)."""

        async def read() -> list[ExecutionReport]:
            await self._conn.ready(self.opts.timeout)
            async with self._sync:
                await self._conn.pace()
                trades: list[Trade] = await self._request(self._ib.reqAllOpenOrdersAsync)
            reports = [self._build(t) for t in trades]
            return [r for r in reports if r.status in OPEN_STATES]

        return await self._retry(read)

    async def _refresh(self) -> None:
        """Re-read open orders (of every client id), completed orders and executions from TWS."""
        async with self._sync:
            await self._conn.pace(3)
            await self._request(self._ib.reqAllOpenOrdersAsync)
            completed: list[Trade] = await self._request(lambda: self._ib.reqCompletedOrdersAsync(False))
            self._completed.update({t.order.permId: t.orderStatus.status for t in completed if t.order.permId})
            await self._request(self._ib.reqExecutionsAsync)

    # ------------------------------------------------------------------ reads

    async def positions(self) -> list[Position]:
        async def read() -> list[Position]:
            await self._conn.ready(self.opts.timeout)
            async with self._sync:
                await self._conn.pace()
                found = await self._request(self._ib.reqPositionsAsync)
            account = self._conn.account
            return positions_from(found, self._ib.portfolio(account), broker=self.name, account=account, symbol_of=self._book.name_of)

        return await self._retry(read)

    async def account(self) -> Account:
        async def read() -> Account:
            await self._conn.ready(self.opts.timeout)
            account = self._conn.account
            if not self._ib.wrapper.acctSummary:
                await self._conn.pace()
            values = await self._request(lambda: self._ib.accountSummaryAsync(account))
            currency = next((v.currency for v in values if v.tag == "NetLiquidation"), "")
            fills = (f for f in self._ib.fills() if f.execution.acctNumber == account)  # a login may manage several accounts
            charged = commission_in(((f.commissionReport.commission, f.commissionReport.currency) for f in fills), currency)
            return account_from_values(values, broker=self.name, account=account, commission=charged)

        return await self._retry(read)

    async def quote(self, instrument: str) -> Quote:
        contract = self._book.contract(instrument)

        async def read() -> Quote:
            await self._conn.ready(self.opts.timeout)
            if not contract.conId:
                await self._book.qualify(self._conn, self.opts.timeout)
            if not contract.conId:
                raise ConnectionFailed(f"TWS has not identified the contract of {instrument} yet")
            return await self._market.quote(instrument, contract)

        return await self._retry(read)

    async def _request(self, request: Callable[[], Awaitable[T]]) -> T:
        """Send a request (ib_async sends when it is called) and wait for its answer; ConnectionFailed if none comes."""
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(request(), self.opts.timeout)
        except (ConnectionError, TimeoutError) as exc:
            raise ConnectionFailed(f"TWS did not answer ({type(exc).__name__})") from None
        self._latency = time.perf_counter() - started
        return result

    async def _retry(self, call: Callable[[], Awaitable[T]]) -> T:
        return await retrying(call, retry_on=(ConnectionFailed,), attempts=3, base=0.1, cap=1.0)

    # ------------------------------------------------------------- the rest

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def instrument(self, symbol: str) -> Instrument | None:
        return self._book.get(symbol)

    def describe(self) -> dict[str, Any]:
        o = self.opts
        return super().describe() | {
            "environment": o.environment,
            "endpoint": f"{o.host}:{o.port}",
            "client_id": o.client_id,
            "account": self._conn.account or None,
            "connected": self._conn.connected,
            "link_to_ib": self._conn.link_up,
            "reconnects": self._conn.reconnects,
            "last_request_latency_ms": None if self._latency is None else round(self._latency * 1000, 3),
            "instruments": len(self._book.instruments),
            "market_data": o.market_data,
        }


def _terms_of(order: IbOrder, instrument: str, tag: str | None = None) -> OrderRequest | None:
    try:
        return ib_to_request(order, instrument, tag)
    except (NotSupported, ValueError):
        return None


def _cancel_answered(trade: Trade, watch: ErrorWatch) -> bool:
    if any(line.status in _DONE for line in trade.log if not line.errorCode):
        return True
    return any(refuses(code) or ib_error(code).effect is Effect.CANCELLED for code, _ in watch.of(trade.order.orderId))


def _modify_answered(trade: Trade, changed: IbOrder, since: int, watch: ErrorWatch) -> bool:
    order = trade.order
    echoed = (order.totalQuantity, order.lmtPrice, order.auxPrice) == (changed.totalQuantity, changed.lmtPrice, changed.auxPrice)
    if echoed or any(not line.errorCode and not line.message.startswith("Fill ") for line in trade.log[since:]):
        return True
    return any(ib_error(code).effect is not Effect.WARNING for code, _ in watch.of(order.orderId))


def _as_error(report: ExecutionReport) -> TradingError:
    error = report.error
    assert error is not None
    return error_for(error.code, error.message, broker_code=error.broker_code, broker_message=error.broker_message)
