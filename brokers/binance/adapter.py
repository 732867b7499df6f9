"""Binance spot through ccxt: orders by ``newClientOrderId``, filters checked before sending, working orders polled.

Every call goes to the ``/api/v3`` REST endpoints (the only ones the spot testnet
has): ``POST/GET/DELETE /order`` (our id as ``newClientOrderId`` /
``origClientOrderId``), ``GET /openOrders``, ``/myTrades``, ``/account``,
``/ticker/bookTicker``, ``/avgPrice`` and ``/exchangeInfo``. One token bucket counts
request weight (ccxt's endpoint costs × 5, 6000 a minute by default) and a second
one new orders (Binance allows 100 per 10 seconds; we send at most 9 a second).
Binance has no in-place modification for spot orders — cancel-replace gives the
order a new id and queue place — so :meth:`modify` raises NOT_SUPPORTED. Signed
requests carry a timestamp checked against ``recvWindow`` (5 s): ccxt measures our
clock's difference to Binance's at start (``GET /api/v3/time``); a -1021 answer means
the host clock drifted since (keep it NTP-synchronised). That request was refused, and
the difference is measured again before the next one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import ccxt.async_support as ccxt_async

from brokers.base import AdapterOptions, AdapterServices, ExecutionReport
from brokers.ccxt.adapter import CcxtBroker, Target
from brokers.ccxt.errors import MalformedAnswer
from brokers.ccxt.exchange import build_exchange, point_at
from brokers.ccxt.mapping import dec, trim
from brokers.ratelimit import TokenBucket
from host.trading.errors import TradingError
from host.trading.model import Order, OrderType, TimeInForce
from host.trading.states import OrderStatus

from .errors import binance_error
from .filters import SymbolFilters, check_order, filters_from_info
from .options import BinanceOptions
from .orders import order_to_request, status_of, supports, wire_client_id

__all__ = ["BinanceBroker"]

RAW_KEYS = (
    "symbol", "orderId", "clientOrderId", "status", "type", "side", "timeInForce", "price", "stopPrice",
    "origQty", "executedQty", "cummulativeQuoteQty", "transactTime", "updateTime", "workingTime",
)  # fmt: skip
ORDERS_PER_SECOND = 9.0
"""New orders a second: inside Binance's 100 per 10 seconds even with a full burst of 10."""
WEIGHT_PER_COST = 5.0
"""ccxt writes Binance's request weight as cost = 0.2 × weight."""
CLOCK_SKEW = "-1021"
"""INVALID_TIMESTAMP: the request's timestamp fell outside recvWindow of Binance's clock."""
T = TypeVar("T")


def _expect_dict(raw: Any, *keys: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or any(k not in raw for k in keys):
        raise MalformedAnswer(f"expected an object with {', '.join(keys)}")
    return raw


def _expect_list(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not all(isinstance(o, dict) for o in raw):
        raise MalformedAnswer("expected a list of orders")
    return raw


class BinanceBroker(CcxtBroker):
    """A Binance spot account (testnet or live)."""

    type_name = "binance"
    Options = BinanceOptions
    exchange_name = "Binance"
    order_types: ClassVar[frozenset[OrderType]] = frozenset(OrderType) - {OrderType.MARKET_IF_TOUCHED}
    time_in_force: ClassVar[frozenset[TimeInForce]] = frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK})
    can_modify = False
    default_rate = 100.0
    tokens_per_cost = WEIGHT_PER_COST

    def __init__(self, name: str, options: AdapterOptions, services: AdapterServices) -> None:
        super().__init__(name, options, services)
        self.order_bucket = TokenBucket(ORDERS_PER_SECOND, burst=10)
        self._filters: dict[str, SymbolFilters] = {}
        self._clock_drifted = False

    def _make_exchange(self, api_key: str, secret: str) -> Any:
        opts = self.opts
        assert isinstance(opts, BinanceOptions)
        exchange = build_exchange(
            ccxt_async.binance, api_key=api_key, secret=secret.replace("\\n", "\n"), timeout=opts.timeout,
            bucket=self.bucket, tokens_per_cost=self.tokens_per_cost,
            options={"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "adjustForTimeDifference": True, "recvWindow": 5000},
        )  # fmt: skip
        if opts.environment == "testnet":
            exchange.set_sandbox_mode(True)
        if opts.base_url:
            exchange.urls["api"] = point_at(exchange.urls["api"], opts.base_url)
        return exchange

    _error = staticmethod(binance_error)

    async def _call(self, make: Callable[[], Awaitable[T]], action: str) -> T:
        if self._clock_drifted:
            self._clock_drifted = False
            try:
                await self.exchange.load_time_difference()  # GET /api/v3/time, through the bucket
            except ccxt_async.BaseError as exc:  # unreachable: the request itself will tell, and -1021 asks again
                self.services.logger.warning("%s: measuring the clock difference to Binance failed: %s", self.name, type(exc).__name__)
        return await super()._call(make, action)

    def _on_error(self, error: TradingError) -> None:
        super()._on_error(error)
        if error.broker_code == CLOCK_SKEW:
            self._clock_drifted = True

    def _status(self, order: Mapping[str, Any]) -> tuple[OrderStatus, str]:
        return status_of(order.get("info") or {})

    def _supports(self, kind: OrderType, tif: TimeInForce) -> bool:
        return supports(kind, tif)

    def _wire_id(self, client_order_id: str) -> str:
        return wire_client_id(client_order_id)

    def _raw(self, info: Mapping[str, Any]) -> dict[str, Any]:
        return trim(info, RAW_KEYS)

    def _filters_of(self, market: Mapping[str, Any]) -> SymbolFilters:
        symbol = str(market["symbol"])
        if symbol not in self._filters:
            self._filters[symbol] = filters_from_info(market.get("info") or {})
        return self._filters[symbol]

    async def _check(self, order: Order, market: Mapping[str, Any]) -> None:
        """PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE and NOTIONAL, with Decimal, before anything is sent."""
        filters = self._filters_of(market)
        kind = OrderType(order.type)
        reference: Decimal | None = None
        if kind is OrderType.MARKET and filters.notional is not None:
            reference = await self._average_price(market)
        problem = check_order(filters, kind, order.quantity, order.limit_price, order.stop_price, reference)
        if problem is not None:
            raise problem

    async def _average_price(self, market: Mapping[str, Any]) -> Decimal | None:
        answer = await self._read(lambda: self.exchange.publicGetAvgPrice({"symbol": market["id"]}), "average price")
        return dec(answer.get("price")) if isinstance(answer, dict) else None

    def _create_request(self, order: Order, market: Mapping[str, Any], wire_id: str) -> dict[str, Any]:
        return order_to_request(order, str(market["id"]), wire_id)

    async def _send_create(self, request: dict[str, Any], market: Mapping[str, Any]) -> Any:
        await self.order_bucket.take()
        return _expect_dict(await self.exchange.privatePostOrder(request), "orderId", "status")

    async def _created(self, raw: Any, target: Target, market: Mapping[str, Any]) -> ExecutionReport:
        return await self._report(self.exchange.parse_order(raw, market), market, target.client_order_id)

    def _which(self, target: Target, market: Mapping[str, Any]) -> dict[str, Any]:
        if target.broker_order_id:
            return {"symbol": market["id"], "orderId": target.broker_order_id}
        return {"symbol": market["id"], "origClientOrderId": target.wire_id}

    async def _fetch(self, target: Target, market: Mapping[str, Any]) -> dict[str, Any] | None:
        raw = _expect_dict(await self.exchange.privateGetOrder(self._which(target, market)), "orderId", "status")
        order: dict[str, Any] = self.exchange.parse_order(raw, market)
        return order

    async def _trades(self, order: Mapping[str, Any], market: Mapping[str, Any]) -> list[dict[str, Any]]:
        raw = await self.exchange.privateGetMyTrades({"symbol": market["id"], "orderId": order["id"]})
        if not isinstance(raw, list):
            raise MalformedAnswer("expected a list of trades")
        trades: list[dict[str, Any]] = self.exchange.parse_trades(raw, market)
        return trades

    async def _cancel(self, target: Target, market: Mapping[str, Any]) -> dict[str, Any]:
        raw = _expect_dict(await self.exchange.privateDeleteOrder(self._which(target, market)), "orderId", "status")
        order: dict[str, Any] = self.exchange.parse_order(raw, market)
        return order

    async def _list_open(self, symbol: str | None) -> list[dict[str, Any]]:
        market = self.exchange.markets[symbol] if symbol is not None else None
        params = {"symbol": market["id"]} if market is not None else {}
        orders: list[dict[str, Any]] = self.exchange.parse_orders(_expect_list(await self.exchange.privateGetOpenOrders(params)), market)
        return orders

