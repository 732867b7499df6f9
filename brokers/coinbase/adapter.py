"""Coinbase Advanced Trade (spot) through ccxt: our client order id on the wire, rejects read from HTTP 200 bodies.

Orders go to ``POST /api/v3/brokerage/orders`` with a body built here (ccxt's own
``create_order`` would replace our client order id and turn market buys into quote
amounts). Its answer holds ids only, so the order is read back
(``GET /orders/historical/{id}``, retried); if that read fails the report says
SUBMITTED with the exchange's id, and the poller follows the order. Finding an order
by client order id lists the product's orders from just before it was created
(``GET /orders/historical/batch``, which has no client-id filter) and matches the id.
Cancels use ``POST /orders/batch_cancel``, modifications ``POST /orders/edit``
(limit GTC orders only: size and price). One token bucket allows 30 requests a
second (public market data costs 3, as Coinbase allows 10 of those).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import ccxt.async_support as ccxt_async

from brokers.base import AdapterOptions, AdapterServices, ExecutionReport
from brokers.ccxt.adapter import CcxtBroker, Target
from brokers.ccxt.errors import MalformedAnswer
from brokers.ccxt.exchange import build_exchange, point_at
from brokers.ccxt.mapping import ZERO, trim
from host.trading.errors import ConnectionFailed, ErrorCode, NotSupported, OrderNotFound, ServiceUnavailable, TradingError, error_for
from host.trading.model import Order, OrderChanges, OrderType, TimeInForce
from host.trading.states import OrderStatus

from .errors import coinbase_error
from .jwt import sign_es256_with_cached_key
from .options import CoinbaseOptions
from .orders import changes_to_edit, order_to_body, status_of, supports

__all__ = ["CoinbaseBroker"]

RAW_KEYS = (
    "order_id", "client_order_id", "product_id", "status", "side", "order_type", "time_in_force", "filled_size",
    "average_filled_price", "total_fees", "completion_percentage", "reject_reason", "reject_message", "cancel_message",
    "created_time", "last_fill_time",
)  # fmt: skip
PAGE = 100
PAGES = 5
"""Pages of 100 orders or fills read at most when listing."""
LOOKBACK = 300.0
"""Seconds before an order was created (our clock) from which its product's orders are listed to find it."""
S = OrderStatus


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pem(secret: str) -> str:
    # A PEM key pasted on one line keeps its line breaks as the two characters "\n".
    return secret.replace("\\n", "\n")


def _refused(body: Mapping[str, Any], exchange: str, action: str) -> TradingError:
    found = coinbase_error(dict(body))
    code = found.code if found else ErrorCode.INVALID_REQUEST
    return error_for(
        code, f"{exchange} {action}: refused", broker_code=found.broker_code if found else None,
        broker_message=found.broker_message if found else None,
    )  # fmt: skip


class CoinbaseBroker(CcxtBroker):
    """A Coinbase Advanced Trade account (spot products)."""

    type_name = "coinbase"
    Options = CoinbaseOptions
    exchange_name = "Coinbase"
    order_types: ClassVar[frozenset[OrderType]] = frozenset({OrderType.MARKET, OrderType.LIMIT, OrderType.STOP_LIMIT})
    time_in_force: ClassVar[frozenset[TimeInForce]] = frozenset(TimeInForce)
    can_modify = True
    default_rate = 30.0
    tokens_per_cost = 1.0

    def __init__(self, name: str, options: AdapterOptions, services: AdapterServices) -> None:
        super().__init__(name, options, services)
        self._cancel_sent: set[str] = set()

    def _make_exchange(self, api_key: str, secret: str) -> Any:
        opts = self.opts
        exchange = build_exchange(
            ccxt_async.coinbase, api_key=api_key, secret=_pem(secret), timeout=opts.timeout, bucket=self.bucket,
            tokens_per_cost=self.tokens_per_cost,
            options={"fetchBalance": "v3PrivateGetBrokerageAccounts", "fetchMarkets": "fetchMarketsV3", "advanced": True},
        )  # fmt: skip
        if opts.base_url:
            exchange.urls["api"] = point_at(exchange.urls["api"], opts.base_url)
        sign_es256_with_cached_key(exchange)
        return exchange

    _error = staticmethod(coinbase_error)

    def _status(self, order: Mapping[str, Any]) -> tuple[OrderStatus, str]:
        status, word = status_of(order.get("info") or {})
        if status is S.ACCEPTED and str(order.get("id")) in self._cancel_sent:
            return S.PENDING_CANCEL, f"{word} (cancel requested)"  # the cancel was accepted, not yet carried out
        if status not in (S.ACCEPTED, S.PENDING_CANCEL):
            self._cancel_sent.discard(str(order.get("id")))
        return status, word

    def _supports(self, kind: OrderType, tif: TimeInForce) -> bool:
        return supports(kind, tif)

    def _raw(self, info: Mapping[str, Any]) -> dict[str, Any]:
        return trim(info, RAW_KEYS)

    def _create_request(self, order: Order, market: Mapping[str, Any], wire_id: str) -> dict[str, Any]:
        return order_to_body(order, str(market["id"]), wire_id, datetime.now(UTC))

    async def _send_create(self, request: dict[str, Any], market: Mapping[str, Any]) -> Any:
        raw = await self.exchange.v3PrivatePostBrokerageOrders(request)
        if not isinstance(raw, dict) or "success" not in raw:
            raise MalformedAnswer("expected an object with success")
        if raw["success"] is not True:
            raise _refused(raw, self.exchange_name, "new order")
        answer = raw.get("success_response") or {}
        if not isinstance(answer, dict) or not answer.get("order_id"):
            raise MalformedAnswer("expected success_response.order_id")
        return raw

    async def _created(self, raw: Any, target: Target, market: Mapping[str, Any]) -> ExecutionReport:
        order_id = str(raw["success_response"]["order_id"])
        cid = target.client_order_id
        self.refs.learn(cid, order_id)
        try:
            found = await self._read(lambda: self._by_id(order_id, market), "read new order")
        except (ConnectionFailed, ServiceUnavailable, OrderNotFound) as exc:
            self.working.update(cid, target.symbol, order_id, S.SUBMITTED, ZERO)
            return ExecutionReport(cid, S.SUBMITTED, f"accepted; not read back yet ({exc.code})", broker_order_id=order_id, raw=trim(raw, ("success", "order_id")))
        return await self._report(found, market, cid)

    async def _by_id(self, order_id: str, market: Mapping[str, Any]) -> dict[str, Any]:
        raw = await self.exchange.v3PrivateGetBrokerageOrdersHistoricalOrderId({"order_id": order_id})
        if not isinstance(raw, dict) or not isinstance(raw.get("order"), dict) or not raw["order"].get("order_id"):
            raise MalformedAnswer("expected an object with order.order_id")
        order: dict[str, Any] = self.exchange.parse_order(raw["order"], market)
        return order

    async def _pages(self, path_call: Any, key: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """Items of a cursor-paged list, up to :data:`PAGES` pages, and whether they are all of them."""
        items: list[dict[str, Any]] = []
        query = dict(params, limit=PAGE)
        for _ in range(PAGES):
            raw = await path_call(query)
            if not isinstance(raw, dict) or not isinstance(raw.get(key), list):
                raise MalformedAnswer(f"expected an object with a list of {key}")
            items.extend(raw[key])
            cursor = raw.get("cursor")
            if not raw.get("has_next") or not cursor:
                return items, True
            query = dict(query, cursor=cursor)
        return items, False

    async def _fetch(self, target: Target, market: Mapping[str, Any]) -> dict[str, Any] | None:
        if target.broker_order_id:
            return await self._by_id(target.broker_order_id, market)
        since = (target.created_at if target.created_at is not None else self.services.clock()) - LOOKBACK
        listed, complete = await self._pages(
            self.exchange.v3PrivateGetBrokerageOrdersHistoricalBatch, "orders",
            {"product_ids": [market["id"]], "start_date": _iso(since)},
        )  # fmt: skip
        for raw in listed:
            if raw.get("client_order_id") == target.wire_id:
                order: dict[str, Any] = self.exchange.parse_order(raw, market)
                return order
        if not complete:  # newest first: an order of ours may lie beyond the pages read; None would say it was never sent
            raise ServiceUnavailable(
                f"Coinbase lists more than {len(listed)} orders of {market['symbol']} since order {target.client_order_id} "
                "was created and it is not among the newest: whether Coinbase has it is unknown"
            )  # fmt: skip
        return None

    async def _trades(self, order: Mapping[str, Any], market: Mapping[str, Any]) -> list[dict[str, Any]]:
        fills, _ = await self._pages(self.exchange.v3PrivateGetBrokerageOrdersHistoricalFills, "fills", {"order_ids": [order["id"]]})
        trades: list[dict[str, Any]] = self.exchange.parse_trades(fills, market)
        return trades

    async def _order_id(self, target: Target, market: Mapping[str, Any]) -> str:
        if target.broker_order_id:
            return target.broker_order_id
        found = await self._fetch(target, market)
        if found is None:
            raise OrderNotFound(f"Coinbase has no order {target.client_order_id}")
        return str(found["id"])

    async def _cancel(self, target: Target, market: Mapping[str, Any]) -> dict[str, Any]:
        order_id = await self._order_id(target, market)
        raw = await self.exchange.v3PrivatePostBrokerageOrdersBatchCancel({"order_ids": [order_id]})
        results = raw.get("results") if isinstance(raw, dict) else None
        if not isinstance(results, list) or not results or not isinstance(results[0], dict):
            raise MalformedAnswer("expected an object with results")
        if results[0].get("success") is not True:
            raise _refused(results[0], self.exchange_name, "cancel")
        self._cancel_sent.add(order_id)
        return {"id": order_id}

    async def _after_cancel(self, answer: dict[str, Any], target: Target, market: Mapping[str, Any]) -> dict[str, Any]:
        order_id = str(answer["id"])
        return await self._read(lambda: self._by_id(order_id, market), "read cancelled order")

    def _refuse_edit(self, order: Order, changes: OrderChanges) -> None:
        kind, tif = OrderType(order.type), TimeInForce(order.time_in_force)
        if kind is not OrderType.LIMIT or tif is not TimeInForce.GTC:
            raise NotSupported(f"Coinbase can modify limit GTC orders only, not {kind} {tif}", broker_code="modify")
        if changes.stop_price is not None:
            raise NotSupported("Coinbase cannot change a stop price", broker_code="modify")

    async def _edit(self, order: Order, changes: OrderChanges, target: Target, market: Mapping[str, Any]) -> None:
        body = changes_to_edit(await self._order_id(target, market), order, changes)
        raw = await self.exchange.v3PrivatePostBrokerageOrdersEdit(body)
        if not isinstance(raw, dict) or "success" not in raw:
            raise MalformedAnswer("expected an object with success")
        if raw["success"] is not True:
            raise _refused(raw, self.exchange_name, "modify")

    async def _list_open(self, symbol: str | None) -> list[dict[str, Any]]:
        market = self.exchange.markets[symbol] if symbol is not None else None
        params: dict[str, Any] = {"order_status": ["OPEN"]}
        if market is not None:
            params["product_ids"] = [market["id"]]
        listed, _ = await self._pages(self.exchange.v3PrivateGetBrokerageOrdersHistoricalBatch, "orders", params)
        orders: list[dict[str, Any]] = self.exchange.parse_orders(listed, market)
        return orders
