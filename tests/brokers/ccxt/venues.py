"""The Binance and Coinbase fakes as the shared contract tests see them (test_contract.py): what differs between the two.

Each venue names its adapter, its wire paths and symbol ids, how its servers answer a
5xx or a rate limit, the broker codes to expect, and does on its fake what a test
needs done there (a later fill, a cancel made elsewhere) or reads back from it.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from brokers.base import ExecutionReport
from brokers.binance.adapter import BinanceBroker
from brokers.binance.options import BinanceOptions
from brokers.binance.orders import wire_client_id
from brokers.ccxt.adapter import CcxtBroker
from brokers.coinbase.adapter import LOOKBACK, CoinbaseBroker
from brokers.coinbase.options import CoinbaseOptions
from host.trading.model import Order
from tests.brokers.binance import fakeserver as bn
from tests.brokers.binance.conftest import binance
from tests.brokers.binance.conftest import order as binance_order
from tests.brokers.coinbase import fakeserver as cb
from tests.brokers.coinbase.conftest import coinbase
from tests.brokers.coinbase.conftest import order as coinbase_order

from .fakehttp import Recorded, Script

D = Decimal
Answer = tuple[int, Any, "str | None"]
"""An HTTP status, a JSON body or None, a text body or None (as :meth:`ScriptedServer.script` takes them)."""


def _header(request: Recorded, name: str) -> str | None:
    return next((value for key, value in request.headers.items() if key.lower() == name.lower()), None)


class Venue:
    name: ClassVar[str]
    """The broker type in the registry."""
    broker_class: ClassVar[type[CcxtBroker]]
    options_class: ClassVar[type[Any]]
    symbol: ClassVar[str]
    """BTC against the account currency: the instrument orders use by default."""
    market_id: ClassVar[str]
    """The exchange's id of :attr:`symbol`."""
    touch: ClassVar[tuple[Decimal, Decimal, Decimal, Decimal]]
    """The fake's BTC quote: bid, ask, bid size, ask size (an order's default limit is the ask)."""
    new_order: ClassVar[tuple[str, str]]
    """Method and path of order creation."""
    cancel_path: ClassVar[tuple[str, str]]
    quote_path: ClassVar[tuple[str, str]]
    poll_path: ClassVar[tuple[str, str]]
    """Where the poller lists open orders."""
    rate_limited_body: ClassVar[Any]
    rate_limited_code: ClassVar[str]
    cancel_unknown_code: ClassVar[str]
    """The broker code of a cancel of an order that is no longer working."""
    expired_word: ClassVar[str]
    """The exchange's status word for an IOC or FOK order whose remainder it ended."""
    log_leaks: ClassVar[tuple[str, ...]]
    """Texts that must never reach the log besides the credentials and :meth:`signed_parts` (markers of a token or a key)."""
    unknown_outcome_answers: ClassVar[dict[str, Answer]]
    """Answers to a new order that leave its outcome unknown (5xx, timeouts said in a body, malformed bodies), by test id."""

    def connect(self, tmp_path: Path, **options: Any) -> AbstractAsyncContextManager[tuple[Any, CcxtBroker, list[ExecutionReport]]]:
        """The fake started, an adapter on it (started unless ``start=False``) and the reports it emitted."""
        raise NotImplementedError

    def order(self, cid: str, **terms: Any) -> Order:
        """An order as the router hands it over: BTC, 0.01 at the ask, GTC unless ``terms`` say otherwise."""
        raise NotImplementedError

    def unavailable(self, status: int) -> dict[str, Any]:
        """How this exchange's servers answer with a 5xx: ``script`` keywords."""
        raise NotImplementedError

    def wire_id(self, cid: str) -> str:
        """Our client order id as sent."""
        return cid

    def signed_parts(self, request: Recorded) -> tuple[str, ...]:
        """What a request the fake received carries of the credentials: the key, a signature or a token; () if unsigned."""
        raise NotImplementedError

    def exchange_id(self, server: Any, cid: str) -> str:
        """The exchange's id of the order sent with our id ``cid``, as the fake holds it."""
        raise NotImplementedError

    def trade_ids(self, server: Any, broker_order_id: str) -> list[str]:
        """Our trade ids (market:order:trade) of the fake's fills of one order, in order."""
        raise NotImplementedError

    def fill(self, server: Any, broker_order_id: str, qty: str, price: str) -> None:
        """A resting order trades later."""
        raise NotImplementedError

    def cancel_elsewhere(self, server: Any, broker_order_id: str) -> None:
        """The order is cancelled outside this adapter (the exchange's web site)."""
        raise NotImplementedError

    def backdate(self, server: Any, broker_order_id: str, when: datetime) -> None:
        """The exchange took the order at ``when``."""
        raise NotImplementedError

    def lookups(self, server: Any) -> list[Recorded]:
        """The requests made to find an order by our client order id."""
        raise NotImplementedError

    def assert_looks_up(self, request: Recorded, cid: str, created: datetime | None = None) -> None:
        """``request`` looks for order ``cid`` in BTC (created at ``created``, when the search depends on it)."""
        raise NotImplementedError

    def script_new_order(self, server: Any, **how: Any) -> Script:
        script: Script = server.script(*self.new_order, **how)
        return script

    def new_orders(self, server: Any) -> list[Recorded]:
        sent: list[Recorded] = server.sent(*self.new_order)
        return sent


class BinanceVenue(Venue):
    name = "binance"
    broker_class = BinanceBroker
    options_class = BinanceOptions
    symbol = "BTC/USDT"
    market_id = "BTCUSDT"
    touch = (D("30000.00"), D("30000.10"), D(2), D("0.5"))
    new_order = ("POST", "/api/v3/order")
    cancel_path = ("DELETE", "/api/v3/order")
    quote_path = ("GET", "/api/v3/ticker/bookTicker")
    poll_path = ("GET", "/api/v3/openOrders")
    rate_limited_body = bn.fixture("errors.json")["-1003"]
    rate_limited_code = "-1003"
    cancel_unknown_code = "-2011"
    expired_word = "EXPIRED"
    log_leaks = (bn.API_KEY, bn.SECRET)
    unknown_outcome_answers = {
        "500-html": (500, None, "<html>Internal Server Error</html>"),
        "503-1001": (503, {"code": -1001, "msg": "Internal error; unable to process your request."}, None),
        "408-1007": (408, {"code": -1007, "msg": "Timeout waiting for response from backend server. Send status unknown; execution status unknown."}, None),
        "200-html": (200, None, "<html>not json</html>"),
        "200-unexpected-shape": (200, {"unexpected": "shape"}, None),
    }  # fmt: skip

    def connect(self, tmp_path: Path, **options: Any) -> AbstractAsyncContextManager[tuple[Any, CcxtBroker, list[ExecutionReport]]]:
        return binance(tmp_path, **options)

    def order(self, cid: str, **terms: Any) -> Order:
        return binance_order(cid, **terms)

    def unavailable(self, status: int) -> dict[str, Any]:
        return {"status": status, "text": "<html>unavailable</html>"}

    def wire_id(self, cid: str) -> str:
        return wire_client_id(cid)

    def signed_parts(self, request: Recorded) -> tuple[str, ...]:
        # the key in a header, the HMAC of the query or form in its ``signature`` field
        return tuple(p for p in (_header(request, "X-MBX-APIKEY"), request.params.get("signature")) if p)

    def exchange_id(self, server: bn.FakeBinance, cid: str) -> str:
        (found,) = [o for o in server.orders.values() if o["clientOrderId"] == self.wire_id(cid)]
        return str(found["orderId"])

    def trade_ids(self, server: bn.FakeBinance, broker_order_id: str) -> list[str]:
        return [f"{t['symbol']}:{t['orderId']}:{t['id']}" for t in server.trades if str(t["orderId"]) == broker_order_id]

    def fill(self, server: bn.FakeBinance, broker_order_id: str, qty: str, price: str) -> None:
        server.fill(int(broker_order_id), qty, price)

    def cancel_elsewhere(self, server: bn.FakeBinance, broker_order_id: str) -> None:
        server.orders[int(broker_order_id)]["status"] = "CANCELED"

    def backdate(self, server: bn.FakeBinance, broker_order_id: str, when: datetime) -> None:
        held = server.orders[int(broker_order_id)]
        held["time"] = held["workingTime"] = int(when.timestamp() * 1000)

    def lookups(self, server: bn.FakeBinance) -> list[Recorded]:
        sent: list[Recorded] = server.sent("GET", "/api/v3/order")
        return sent

    def assert_looks_up(self, request: Recorded, cid: str, created: datetime | None = None) -> None:
        # by client order id in one symbol: when the order was created does not matter
        assert request.params["origClientOrderId"] == self.wire_id(cid) and request.params["symbol"] == self.market_id


class CoinbaseVenue(Venue):
    name = "coinbase"
    broker_class = CoinbaseBroker
    options_class = CoinbaseOptions
    symbol = "BTC/USD"
    market_id = "BTC-USD"
    touch = (D("30000.00"), D("30000.01"), D(2), D("0.5"))
    new_order = ("POST", f"{cb.PREFIX}/orders")
    cancel_path = ("POST", f"{cb.PREFIX}/orders/batch_cancel")
    quote_path = ("GET", f"{cb.PREFIX}/best_bid_ask")
    poll_path = ("GET", f"{cb.PREFIX}/orders/historical/batch")
    rate_limited_body = cb.fixture("errors.json")["rate_limited"]
    rate_limited_code = "RESOURCE_EXHAUSTED"
    cancel_unknown_code = "UNKNOWN_CANCEL_ORDER"
    expired_word = "CANCELLED"
    log_leaks = ("Bearer", "eyJ", "PRIVATE KEY")  # no bearer token (a JWT), no key
    unknown_outcome_answers = {
        "500-internal": (500, cb.fixture("errors.json")["internal"], None),
        "502-html": (502, None, "<html>Bad Gateway</html>"),
        "200-html": (200, None, "<html>maintenance</html>"),
        "200-success-without-id": (200, {"success": True, "success_response": {}}, None),
    }

    def connect(self, tmp_path: Path, **options: Any) -> AbstractAsyncContextManager[tuple[Any, CcxtBroker, list[ExecutionReport]]]:
        return coinbase(tmp_path, **options)

    def order(self, cid: str, **terms: Any) -> Order:
        return coinbase_order(cid, **terms)

    def unavailable(self, status: int) -> dict[str, Any]:
        return {"status": status, "body": cb.fixture("errors.json")["internal"]}

    def signed_parts(self, request: Recorded) -> tuple[str, ...]:
        # a JWT per request (its header names the key), as the bearer token; each of its three parts alone too
        bearer = _header(request, "Authorization")
        if not bearer:
            return ()
        token = bearer.removeprefix("Bearer ")
        return (bearer, token, *token.split("."))

    def exchange_id(self, server: cb.FakeCoinbase, cid: str) -> str:
        (found,) = [o for o in server.orders.values() if o["client_order_id"] == self.wire_id(cid)]
        return str(found["order_id"])

    def trade_ids(self, server: cb.FakeCoinbase, broker_order_id: str) -> list[str]:
        return [f"{f['product_id']}:{f['order_id']}:{f['trade_id']}" for f in server.fills if f["order_id"] == broker_order_id]

    def fill(self, server: cb.FakeCoinbase, broker_order_id: str, qty: str, price: str) -> None:
        server.fill(broker_order_id, qty, price)

    def cancel_elsewhere(self, server: cb.FakeCoinbase, broker_order_id: str) -> None:
        server.orders[broker_order_id]["status"] = "CANCELLED"

    def backdate(self, server: cb.FakeCoinbase, broker_order_id: str, when: datetime) -> None:
        server.orders[broker_order_id]["created_time"] = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def lookups(self, server: cb.FakeCoinbase) -> list[Recorded]:
        # the order list has no client-id filter: the product's orders since just before the order was created
        return [r for r in server.sent(*self.poll_path) if "start_date=" in r.query]

    def assert_looks_up(self, request: Recorded, cid: str, created: datetime | None = None) -> None:
        assert f"product_ids={self.market_id}" in request.query and "start_date=" in request.query
        if created is not None:  # searched from the order's creation time, not from now
            since = (created - timedelta(seconds=LOOKBACK)).strftime("%Y-%m-%dT%H:%M:%SZ")
            assert f"start_date={since}" in request.query


VENUES: dict[str, Venue] = {v.name: v for v in (BinanceVenue(), CoinbaseVenue())}
