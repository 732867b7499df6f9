"""The OANDA v20 adapter: orders, lookups, positions, account and prices of one OANDA account.

Our client order id travels in ``clientExtensions.id``; OANDA finds an order
by it as ``@<id>``, which is how :meth:`OandaBroker.lookup` settles an order
whose creation got no answer. What OANDA does on its own later (a resting
order fills, expires, a bracket's stop loss appears) comes from the
transaction stream and goes to ``services.emit``. quote() answers from the
pricing stream while it is alive, else from ``GET .../pricing``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from brokers.tasks import cancel_and_wait
from brokers.base import AdapterOptions, AdapterServices, BrokerAdapter, Capabilities, ExecutionReport, OutcomeUnknown
from host.errors import ConfigError
from host.trading.errors import InvalidInstrument, InvalidPrice, InvalidQuantity, NotSupported, OrderNotFound, ServiceUnavailable
from host.trading.model import Account, Instrument, Order, OrderChanges, OrderType, Position, Quote, TimeInForce
from host.trading.states import OPEN_STATES

from .book import OrderBook
from .client import Call, OandaClient
from .errors import MalformedAnswer
from .mapping import (
    answer_to_report,
    cancel_report,
    client_id,
    fill_to_model,
    order_json_to_report,
    order_json_to_terms,
    order_to_body,
    replacement_body,
)
from .market import instrument_to_model, position_to_model, price_to_quote, summary_to_account
from .options import OandaOptions
from .stream import LineStream
from .transactions import TransactionFeed

__all__ = ["OandaBroker"]

T = TypeVar("T")
RESUBSCRIBE_DELAY = 0.2
"""Seconds to gather new instruments before reopening the pricing stream with them."""
MAX_REPLACEMENTS = 20
"""Replacement links a lookup follows from the first order to the one now standing."""
ELSEWHERE = "oanda-"
"""open_orders() names an order placed elsewhere without a client id ``oanda-<OANDA's order id>``."""


def _mapping(answer: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = answer.get(key)
    if not isinstance(value, dict):
        raise MalformedAnswer(f"the answer has no {key!r} object")
    return value


def _items(answer: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = answer.get(key)
    if not isinstance(value, list):
        raise MalformedAnswer(f"the answer has no {key!r} list")
    return [item for item in value if isinstance(item, dict)]


class OandaBroker(BrokerAdapter):
    """One OANDA v20 account (practice or live); see :mod:`brokers.oanda.options`."""

    type_name = "oanda"
    Options = OandaOptions
    credential_fields = ("token",)

    def __init__(self, name: str, options: AdapterOptions, services: AdapterServices) -> None:
        if not isinstance(options, OandaOptions):
            raise TypeError(f"OANDA broker {name} needs OandaOptions, got {type(options).__name__}")
        super().__init__(name, options, services)
        self.opts = options
        self._client: OandaClient | None = None
        self._instruments: dict[str, Instrument] = {}
        self._hedging = False
        self._book = OrderBook()
        self._prices: dict[str, Quote] = {}
        self._wanted: set[str] = set()
        self._price_stream: LineStream | None = None
        self._transaction_stream: LineStream | None = None
        self._feed: TransactionFeed | None = None
        self._price_task: asyncio.Task[None] | None = None
        self._transaction_task: asyncio.Task[None] | None = None
        self._resubscribe: asyncio.TimerHandle | None = None
        self._capabilities = self._make_capabilities()

    # ----------------------------------------------------------------- set-up

    def _make_capabilities(self) -> Capabilities:
        return Capabilities(
            order_types=frozenset(OrderType),
            time_in_force=frozenset(TimeInForce),
            fractional_units=any(i.quantity_increment < 1 for i in self._instruments.values()),
            hedging=self._hedging,
            brackets=True,
            modify=True,
            instruments=tuple(self._instruments),
            trailing_stops=True,
        )

    async def start(self) -> None:
        """Check the account, load its instruments, open the transaction and pricing streams."""
        token = (self.services.secrets.get("token") or "").strip()
        if not token:
            raise ConfigError(f"broker {self.name} has no OANDA token: run `tradehost credentials set {self.name} token`")
        client = OandaClient(self.opts, token)
        try:
            summary = await self._read_with(client, "/summary", lambda a: _mapping(a, "account"))
            listed = await self._read_with(client, "/instruments", lambda a: [instrument_to_model(i) for i in _items(a, "instruments")])
        except BaseException:
            await client.aclose()
            raise
        self._client = client
        self._hedging = bool(summary.get("hedgingEnabled"))
        self._instruments = {i.symbol: i for i in listed}
        self._capabilities = self._make_capabilities()
        last_id = str(summary.get("lastTransactionID") or "0")
        self._start_streams(client, int(last_id) if last_id.isdigit() else 0)

    def _start_streams(self, client: OandaClient, last_id: int) -> None:
        opts, log = self.opts, self.services.logger
        if opts.stream_transactions:
            self._feed = feed = TransactionFeed(client, self._book, self.services.emit, log, last_id)
            self._transaction_stream = self._stream(client, "transactions", dict, feed.on_message, feed.catch_up)
            self._transaction_task = asyncio.create_task(self._transaction_stream.run(), name=f"{self.name} transactions")
        if opts.stream_prices:
            unknown = [s for s in opts.stream_instruments if s not in self._instruments]
            if unknown:
                log.warning("OANDA %s: stream_instruments not traded by the account: %s", self.name, ", ".join(unknown))
            self._wanted = {s for s in opts.stream_instruments if s in self._instruments}
            self._price_stream = self._stream(client, "pricing", lambda: {"instruments": ",".join(sorted(self._wanted))}, self._on_price)
            if self._wanted:
                self._price_task = asyncio.create_task(self._price_stream.run(), name=f"{self.name} prices")

    def _stream(
        self,
        client: OandaClient,
        kind: str,
        params: Callable[[], Mapping[str, str]],
        on_message: Callable[[dict[str, Any]], Awaitable[None]],
        on_open: Callable[[], Awaitable[None]] | None = None,
    ) -> LineStream:
        opts = self.opts
        return LineStream(
            client.streams, f"{client.account_path}/{kind}/stream", name=f"OANDA {self.name} {kind} stream", params=params,
            on_message=on_message, on_open=on_open, idle_timeout=opts.stream_timeout, connect_timeout=opts.timeout,
            reconnect_delay=opts.reconnect_delay, logger=self.services.logger,
        )  # fmt: skip

    async def stop(self) -> None:
        """Close the streams and the connection pool."""
        if self._resubscribe is not None:
            self._resubscribe.cancel()
        tasks = (self._price_task, self._transaction_task)
        self._price_task = self._transaction_task = None
        await cancel_and_wait(*tasks)
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _require(self) -> OandaClient:
        if self._client is None:
            raise RuntimeError(f"OANDA broker {self.name} is not started")
        return self._client

    async def _read_with(self, client: OandaClient, path: str, parse: Callable[[dict[str, Any]], T], params: Mapping[str, str] | None = None) -> T:
        async def once() -> T:
            return parse(await client.request("GET", path, Call.READ, params=params))

        return await client.retried(once)

    async def _read(self, path: str, parse: Callable[[dict[str, Any]], T], params: Mapping[str, str] | None = None) -> T:
        return await self._read_with(self._require(), path, parse, params)

    # ------------------------------------------------------------ the adapter

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def instrument(self, symbol: str) -> Instrument | None:
        return self._instruments.get(symbol)

    def describe(self) -> dict[str, Any]:
        client = self._client
        latency = client.latency if client else None
        streams = {
            label: {"alive": s.alive(), "connections": s.connections}
            for label, s in (("price_stream", self._price_stream), ("transaction_stream", self._transaction_stream)) if s is not None
        }  # fmt: skip
        return super().describe() | {
            "environment": self.opts.environment,
            "account_id": self.opts.account_id,
            "connected": bool(client and client.connected),
            "latency_ms": None if latency is None else round(latency * 1000, 3),
            "instruments": len(self._instruments),
            "streamed_instruments": sorted(self._wanted),
            "last_transaction_id": self._feed.last_id if self._feed else None,
            **streams,
        }

    async def submit(self, order: Order) -> ExecutionReport:
        """POST the order once; a lost answer is OutcomeUnknown, an immediate cancel a REJECTED/CANCELED report."""
        client = self._require()
        cid = order.client_order_id
        try:
            body = order_to_body(order, self._instruments.get(order.instrument))
        except ValueError as exc:
            raise InvalidPrice(f"order {cid}: {exc}") from None
        self._book.track(cid, total=order.quantity)
        # A refusal is final, CLIENT_ORDER_ID_ALREADY_EXISTS included: the router sends each client id once,
        # so the order holding it is someone else's (a restored state database, another host on the account).
        answer = await client.request("POST", "/orders", Call.ORDER, body=body)
        try:
            report = answer_to_report(cid, answer, total=order.quantity)
        except MalformedAnswer as exc:
            raise OutcomeUnknown(f"OANDA accepted order {cid} with an answer that cannot be read ({exc})") from None
        self._remember(report)
        reissue = answer.get("orderReissueTransaction")
        if isinstance(reissue, dict) and isinstance(reissue.get("id"), str):
            self._book.track(cid, reissue["id"])  # the part still open lives on under the reissued order's id
        return report

    def _remember(self, report: ExecutionReport) -> None:
        self._book.track(report.client_order_id, report.broker_order_id, report.quantity)
        for fill in report.fills:
            self._book.add_fill(report.client_order_id, report.broker_order_id, fill)

    async def cancel(self, order: Order) -> ExecutionReport:
        """Cancel the working order (retried); an order already gone is looked up and reported as it ended."""
        client = self._require()
        cid = order.client_order_id
        path = f"/orders/{self._book.specifier(cid)}/cancel"
        try:
            answer = await client.retried(lambda: client.request("PUT", path, Call.CANCEL))
            report = cancel_report(_mapping(answer, "orderCancelTransaction"), cid, filled=order.filled_quantity > 0)
        except OrderNotFound:
            found = await self.lookup(cid)
            if found is not None and found.status not in OPEN_STATES:
                return found
            raise
        except MalformedAnswer as exc:
            found = await self.lookup(cid)
            if found is None:
                raise OrderNotFound(f"OANDA cancelled {cid} with an unreadable answer and no longer knows it ({exc})") from None
            return found
        return report

    async def modify(self, order: Order, changes: OrderChanges) -> ExecutionReport:
        """Replace the order (``PUT .../orders/{specifier}``): OANDA cancels it and creates the new terms under a new id."""
        if str(order.type) == OrderType.MARKET:
            raise NotSupported(f"OANDA cannot change the market order {order.client_order_id}")
        client = self._require()
        cid = order.client_order_id
        try:
            body = replacement_body(order, changes, self._instruments.get(order.instrument))
        except ValueError as exc:
            raise (InvalidQuantity if "quantity" in str(exc) else InvalidPrice)(f"order {cid}: {exc}") from None
        answer = await client.request("PUT", f"/orders/{self._book.specifier(cid)}", Call.ORDER, body=body)
        total = changes.quantity if changes.quantity is not None else order.quantity
        try:
            report = answer_to_report(cid, answer, total=total, filled_before=order.filled_quantity, cancel_key="replacingOrderCancelTransaction")
        except MalformedAnswer as exc:
            raise OutcomeUnknown(f"OANDA replaced order {cid} with an answer that cannot be read ({exc})") from None
        limit = changes.limit_price if changes.limit_price is not None else order.limit_price
        stop = changes.stop_price if changes.stop_price is not None else order.stop_price
        report = dataclasses.replace(report, quantity=total, limit_price=limit, stop_price=stop)
        self._remember(report)
        return report

    async def lookup(self, client_order_id: str, order: Order | None = None) -> ExecutionReport | None:
        """The order OANDA holds under our client id (``oanda-<id>``: under its own id), following replacements, with its fill; None if none."""
        number = client_order_id.removeprefix(ELSEWHERE)
        specifier = number if number != client_order_id and number.isdigit() else self._book.specifier(client_order_id)
        try:
            data = await self._read(f"/orders/{specifier}", lambda a: _mapping(a, "order"))
        except OrderNotFound:
            return None
        for _ in range(MAX_REPLACEMENTS):
            successor = data.get("replacedByOrderID")
            if data.get("state") != "CANCELLED" or not successor:
                break
            data = await self._read(f"/orders/{successor}", lambda a: _mapping(a, "order"))
        if data.get("state") == "CANCELLED" and data.get("replacedByOrderID"):  # a replaced order is not the order's state
            raise ServiceUnavailable(f"OANDA order {client_order_id} was replaced more than {MAX_REPLACEMENTS} times; its state is unknown")
        fills = []
        if data.get("fillingTransactionID"):
            fills.append(await self._read(f"/transactions/{data['fillingTransactionID']}", lambda a: fill_to_model(_mapping(a, "transaction"))))
        elif data.get("state") == "CANCELLED" and data.get("timeInForce") == "IOC" and data.get("cancellingTransactionID"):
            # OANDA names the filling transaction of a FILLED order only; an IOC order filled in part was
            # filled in the batch that created and cancelled it.
            order_id = str(data.get("id"))
            fills.extend(await self._read(
                "/transactions/idrange",
                lambda a: [fill_to_model(t) for t in _items(a, "transactions") if t.get("type") == "ORDER_FILL" and str(t.get("orderID")) == order_id],
                {"from": order_id, "to": str(data["cancellingTransactionID"])},
            ))  # fmt: skip
        reason = None
        if data.get("state") == "CANCELLED" and data.get("cancellingTransactionID"):
            reason = await self._read(f"/transactions/{data['cancellingTransactionID']}", lambda a: str(_mapping(a, "transaction").get("reason")))
        report = order_json_to_report(data, client_order_id, fills=fills, cancel_reason=reason)
        self._remember(report)
        return report

    async def open_orders(self) -> list[ExecutionReport]:
        """Every pending order, ours (by client id) or not (``oanda-<id>``), with what it is in our terms."""
        orders = await self._read("/pendingOrders", lambda a: _items(a, "orders"))
        trades: dict[str, dict[str, Any]] = {}
        if any("units" not in o for o in orders):
            trades = await self._read("/openTrades", lambda a: {str(t.get("id")): t for t in _items(a, "trades")})
        reports = []
        for data in orders:
            order_id = str(data.get("id"))
            # Without a client id it may still be one of ours the book followed (a replacement), else it is named by its id.
            cid = client_id(data) or self._book.cid_of(order_id) or f"{ELSEWHERE}{order_id}"
            terms = order_json_to_terms(data, trades.get(str(data.get("tradeID"))))
            report = order_json_to_report(data, cid, terms=terms)
            if cid == f"{ELSEWHERE}{order_id}":  # so the transaction stream reports its fill or cancel under that name
                self._book.track(cid, order_id, report.quantity)
            reports.append(report)
        return reports

    async def positions(self) -> list[Position]:
        """Open positions, net of long and short units, marked at the streamed mid when there is one."""
        rows = await self._read("/openPositions", lambda a: _items(a, "positions"))
        marks = {s: q.mid for s, q in self._prices.items()} if self._price_stream and self._price_stream.alive() else {}
        return [position_to_model(row, self.name, marks.get(str(row.get("instrument")))) for row in rows]

    async def account(self) -> Account:
        """Balance, NAV, margin and P&L from the account summary, in the account currency."""
        return await self._read("/summary", lambda a: summary_to_account(_mapping(a, "account"), self.name))

    async def quote(self, instrument: str) -> Quote:
        """The streamed price while the stream is alive; else one ``GET .../pricing`` (and the instrument joins the stream)."""
        if instrument not in self._instruments:
            raise InvalidInstrument(f"OANDA account {self.opts.account_id} does not trade {instrument!r}")
        stream = self._price_stream
        if stream is not None and stream.alive() and instrument in self._wanted:
            cached = self._prices.get(instrument)
            if cached is not None:
                return cached
        quotes = await self._read(
            "/pricing", lambda a: [price_to_quote(p, self.name) for p in _items(a, "prices")], {"instruments": instrument},
        )  # fmt: skip
        found = next((q for q in quotes if q.instrument == instrument), None)
        if found is None:
            raise InvalidInstrument(f"OANDA sent no price for {instrument!r}")
        self._subscribe(instrument)
        return found

    # ----------------------------------------------------------------- prices

    async def _on_price(self, message: dict[str, Any]) -> None:
        if message.get("type") == "PRICE":
            quote = price_to_quote(message, self.name)
            self._prices[quote.instrument] = quote

    def _subscribe(self, instrument: str) -> None:
        stream = self._price_stream
        if stream is None or instrument in self._wanted:
            return
        self._wanted.add(instrument)
        if self._price_task is None:
            self._price_task = asyncio.create_task(stream.run(), name=f"{self.name} prices")
        elif self._resubscribe is None:
            self._resubscribe = asyncio.get_running_loop().call_later(RESUBSCRIBE_DELAY, self._reopen_prices)

    def _reopen_prices(self) -> None:
        self._resubscribe = None
        if self._price_stream is not None:
            self._price_stream.restart()
