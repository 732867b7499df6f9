"""A local server speaking Binance spot's REST API (``/api/v3``) closely enough for contract tests.

Signed endpoints check ``X-MBX-APIKEY`` and the HMAC-SHA256 ``signature`` over the
exact query string or form body (as Binance does), and the timestamp against
``recvWindow``. Orders match against a fixed top of book: an order crossing the
spread takes what the touch offers, a GTC rest stays on the book, IOC/FOK/MARKET
remainders expire. :meth:`FakeBinance.fill` executes a resting order later.
Response shapes follow the examples of Binance's REST API documentation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.brokers.ccxt.fakehttp import ScriptedServer

FIXTURES = Path(__file__).parent / "fixtures"
API_KEY = "test-binance-key"
SECRET = "test-binance-secret-0123456789abcdef"
D = Decimal
FEE = D("0.001")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _s(value: Decimal) -> str:
    return f"{value:.8f}"


@dataclass
class Touch:
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal


class FakeBinance(ScriptedServer):
    def __init__(self) -> None:
        self.info = fixture("exchange_info.json")
        self.book = {"BTCUSDT": Touch(D("30000.00"), D("2"), D("30000.10"), D("0.5")), "ETHUSDT": Touch(D("2000.00"), D("10"), D("2000.05"), D("10"))}
        self.bases = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT")}
        self.balances = {b["asset"]: D(b["free"]) for b in fixture("account.json")["balances"]}
        self.orders: dict[int, dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.next_order = 1000
        self.next_trade = 5000
        self.bad_signatures = 0
        self.clock_offset_ms = 0
        """How far Binance's clock is ahead of ours (the host clock drifting)."""
        super().__init__()

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/v3/time", self.server_time)
        router.add_get("/api/v3/exchangeInfo", self.exchange_info)
        router.add_get("/api/v3/ticker/bookTicker", self.book_ticker)
        router.add_get("/api/v3/avgPrice", self.avg_price)
        router.add_post("/api/v3/order", self.signed(self.new_order))
        router.add_get("/api/v3/order", self.signed(self.query_order))
        router.add_delete("/api/v3/order", self.signed(self.cancel_order))
        router.add_get("/api/v3/openOrders", self.signed(self.open_orders))
        router.add_get("/api/v3/myTrades", self.signed(self.my_trades))
        router.add_get("/api/v3/account", self.signed(self.account))

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def error(key: str, status: int = 400) -> web.Response:
        return web.json_response(fixture("errors.json")[key], status=status)

    def signed(self, handler: Any) -> Any:
        async def check(request: web.Request) -> web.StreamResponse:
            if request.headers.get("X-MBX-APIKEY") != API_KEY:
                return self.error("-2015", 401)
            raw = request.query_string if request.method in ("GET", "DELETE") else await request.text()
            payload, _, signature = raw.rpartition("&signature=")
            expected = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, signature):
                self.bad_signatures += 1
                return self.error("-1022")
            fields = dict(parse_qsl(payload, keep_blank_values=True))
            window = int(fields.get("recvWindow", "5000"))
            if abs(int(fields.get("timestamp", "0")) - self._now_ms()) > window:
                return self.error("-1021")
            return await handler(request, fields)

        return check

    # ------------------------------------------------------------------ public

    def _now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    async def server_time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": self._now_ms()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        return web.json_response(self.info)

    def _ticker(self, symbol: str) -> dict[str, str]:
        t = self.book[symbol]
        return {"symbol": symbol, "bidPrice": _s(t.bid), "bidQty": _s(t.bid_qty), "askPrice": _s(t.ask), "askQty": _s(t.ask_qty)}

    async def book_ticker(self, request: web.Request) -> web.Response:
        if "symbols" in request.query:
            return web.json_response([self._ticker(s) for s in json.loads(request.query["symbols"])])
        if "symbol" in request.query:
            return web.json_response(self._ticker(request.query["symbol"]))
        return web.json_response([self._ticker(s) for s in self.book])

    async def avg_price(self, request: web.Request) -> web.Response:
        t = self.book[request.query["symbol"]]
        return web.json_response({"mins": 5, "price": _s((t.bid + t.ask) / 2), "closeTime": int(time.time() * 1000)})

    # ------------------------------------------------------------------ orders

    def _order_view(self, o: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in o.items() if not k.startswith("_")}
        return view

    def _execute(self, o: dict[str, Any], qty: Decimal, price: Decimal) -> dict[str, Any]:
        base, quote = self.bases[o["symbol"]]
        buyer = o["side"] == "BUY"
        commission, asset = (qty * FEE, base) if buyer else (qty * price * FEE, quote)
        trade = {
            "symbol": o["symbol"], "id": self.next_trade, "orderId": o["orderId"], "orderListId": -1, "price": _s(price),
            "qty": _s(qty), "quoteQty": _s(qty * price), "commission": _s(commission), "commissionAsset": asset,
            "time": int(time.time() * 1000), "isBuyer": buyer, "isMaker": False, "isBestMatch": True,
        }  # fmt: skip
        self.next_trade += 1
        self.trades.append(trade)
        o["executedQty"] = _s(D(o["executedQty"]) + qty)
        o["cummulativeQuoteQty"] = _s(D(o["cummulativeQuoteQty"]) + qty * price)
        o["updateTime"] = trade["time"]
        self.balances[base] += qty if buyer else -qty
        self.balances[quote] += -qty * price if buyer else qty * price
        return {"price": _s(price), "qty": _s(qty), "commission": _s(commission), "commissionAsset": asset, "tradeId": trade["id"]}

    def fill(self, order_id: int, qty: str, price: str) -> None:
        """A resting order trades later (another participant took it)."""
        o = self.orders[order_id]
        self._execute(o, D(qty), D(price))
        o["status"] = "FILLED" if D(o["executedQty"]) >= D(o["origQty"]) else "PARTIALLY_FILLED"

    def _match(self, o: dict[str, Any]) -> list[dict[str, Any]]:
        touch = self.book[o["symbol"]]
        buy = o["side"] == "BUY"
        level, available = (touch.ask, touch.ask_qty) if buy else (touch.bid, touch.bid_qty)
        limit = D(o["price"]) if o["type"] == "LIMIT" else None
        crosses = limit is None or (limit >= level if buy else limit <= level)
        qty = D(o["origQty"])
        tif = o["timeInForce"]
        if o["type"] in ("STOP_LOSS", "STOP_LOSS_LIMIT") or not crosses or (tif == "FOK" and qty > available):
            o["status"] = "NEW" if o["type"] in ("STOP_LOSS", "STOP_LOSS_LIMIT") or (tif == "GTC" and o["type"] == "LIMIT") else "EXPIRED"
            return []
        fills = [self._execute(o, min(qty, available), level)]
        done = D(o["executedQty"]) >= qty
        o["status"] = "FILLED" if done else ("PARTIALLY_FILLED" if tif == "GTC" and o["type"] == "LIMIT" else "EXPIRED")
        return fills

    async def new_order(self, request: web.Request, f: dict[str, str]) -> web.Response:
        symbol = f["symbol"]
        if symbol not in self.book:
            return self.error("-1121")
        if any(o["clientOrderId"] == f["newClientOrderId"] and o["status"] in ("NEW", "PARTIALLY_FILLED") for o in self.orders.values()):
            return self.error("-2010_duplicate")
        qty, price = D(f["quantity"]), D(f.get("price", "0"))
        base, quote = self.bases[symbol]
        cost = qty * (price or self.book[symbol].ask)
        if (f["side"] == "BUY" and cost > self.balances[quote]) or (f["side"] == "SELL" and qty > self.balances[base]):
            return self.error("-2010_balance")
        now = int(time.time() * 1000)
        o = {
            "symbol": symbol, "orderId": self.next_order, "orderListId": -1, "clientOrderId": f["newClientOrderId"],
            "price": _s(price), "origQty": _s(qty), "executedQty": _s(D(0)), "cummulativeQuoteQty": _s(D(0)), "status": "NEW",
            "timeInForce": f.get("timeInForce", "GTC"), "type": f["type"], "side": f["side"], "stopPrice": _s(D(f.get("stopPrice", "0"))),
            "icebergQty": _s(D(0)), "time": now, "updateTime": now, "isWorking": True, "workingTime": now,
            "origQuoteOrderQty": _s(D(0)), "selfTradePreventionMode": "EXPIRE_MAKER",
        }  # fmt: skip
        self.next_order += 1
        self.orders[o["orderId"]] = o
        fills = self._match(o)
        answer = {k: o[k] for k in ("symbol", "orderId", "orderListId", "clientOrderId", "price", "origQty", "executedQty",
                                    "origQuoteOrderQty", "cummulativeQuoteQty", "status", "timeInForce", "type", "side",
                                    "workingTime", "selfTradePreventionMode")}  # fmt: skip
        answer["transactTime"] = now
        answer["fills"] = fills
        return web.json_response(answer)

    def _find(self, f: dict[str, str]) -> dict[str, Any] | None:
        for o in self.orders.values():
            if o["symbol"] != f.get("symbol"):
                continue
            if "orderId" in f and str(o["orderId"]) == f["orderId"] or o["clientOrderId"] == f.get("origClientOrderId"):
                return o
        return None

    async def query_order(self, request: web.Request, f: dict[str, str]) -> web.Response:
        o = self._find(f)
        return self.error("-2013") if o is None else web.json_response(self._order_view(o))

    async def cancel_order(self, request: web.Request, f: dict[str, str]) -> web.Response:
        o = self._find(f)
        if o is None or o["status"] not in ("NEW", "PARTIALLY_FILLED"):
            return self.error("-2011")
        o["status"] = "CANCELED"
        view = {k: o[k] for k in ("symbol", "orderId", "orderListId", "price", "origQty", "executedQty", "origQuoteOrderQty",
                                  "cummulativeQuoteQty", "status", "timeInForce", "type", "side", "selfTradePreventionMode")}  # fmt: skip
        view.update(origClientOrderId=o["clientOrderId"], clientOrderId="cancel-7f3a9e", transactTime=int(time.time() * 1000))
        return web.json_response(view)

    async def open_orders(self, request: web.Request, f: dict[str, str]) -> web.Response:
        found = [self._order_view(o) for o in self.orders.values()
                 if o["status"] in ("NEW", "PARTIALLY_FILLED") and ("symbol" not in f or o["symbol"] == f["symbol"])]  # fmt: skip
        return web.json_response(found)

    async def my_trades(self, request: web.Request, f: dict[str, str]) -> web.Response:
        found = [t for t in self.trades if t["symbol"] == f["symbol"] and ("orderId" not in f or str(t["orderId"]) == f["orderId"])]
        return web.json_response(found)

    async def account(self, request: web.Request, f: dict[str, str]) -> web.Response:
        answer = fixture("account.json")
        answer["balances"] = [{"asset": a, "free": _s(v), "locked": _s(D(0))} for a, v in self.balances.items()]
        return web.json_response(answer)
