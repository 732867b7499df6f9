"""Per-order cost of the Binance adapter, against the local server of its contract tests (in this process's event loop).

Figures (µs per order; the common ones are described in ``benchmarks/adapters/__init__.py``):

- ``mapping_signing_us``: our order → request, ccxt's HMAC-SHA256 signing of it, and
  a FULL answer (with its fill) parsed by ccxt and mapped back to a report; no I/O.
- ``round_trip_p50_us`` / ``round_trip_p99_us``: ``BinanceBroker.submit`` of a limit
  order that fills at once (one ``POST /api/v3/order``, the fill in its answer):
  filter checks, the rate limiters (lifted), ccxt signing and sending over one
  persistent aiohttp connection to 127.0.0.1, the fake's signature check and
  matching (it runs in the same event loop), parsing, the report.
- ``bare_p50_us``: the same ``POST /api/v3/order`` sent with ccxt's raw endpoint
  method (``privatePostOrder``) of a plain ccxt client (no rate limiter, none of our
  code): ccxt is the client library the adapter sends with, so this is its
  ``httpx``/``ib_async`` equivalent, and ``overhead_p50_us`` is our code plus ccxt's
  order parsing. The two clients alternate order by order, so both meet the fake with
  the same number of orders on its book.
- ``connections``: client ports the server saw the adapter's orders come from.
- ``reference_us`` (extra): the order's reference kept in memory and upserted inside
  the router's batch transaction (SQLite in WAL mode with synchronous=FULL, as the
  router keeps its state database; no transaction or fsync of its own: nothing is
  written before an order is sent).

Run: ``.venv/bin/python benchmarks/adapters/binance.py 500``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the local server is the one of the contract tests, which live beside the packages
    sys.path.insert(0, str(REPO))

import ccxt.async_support as ccxt_async  # noqa: E402

from benchmarks.adapters import figures, main, side_by_side, warm_up  # noqa: E402
from brokers.binance.orders import order_to_request, wire_client_id  # noqa: E402
from brokers.ccxt.exchange import point_at  # noqa: E402
from brokers.ccxt.mapping import order_to_report  # noqa: E402
from brokers.ccxt.refs import OrderRef  # noqa: E402
from host.trading.states import OrderStatus  # noqa: E402
from tests.brokers.binance.conftest import binance, order  # noqa: E402
from tests.brokers.binance.fakeserver import API_KEY, SECRET  # noqa: E402

FULL = {
    "symbol": "BTCUSDT", "orderId": 28, "orderListId": -1, "clientOrderId": "bench", "transactTime": 1507725176595,
    "price": "30000.10000000", "origQty": "0.00020000", "executedQty": "0.00020000", "origQuoteOrderQty": "0.00000000",
    "cummulativeQuoteQty": "6.00002000", "status": "FILLED", "timeInForce": "GTC", "type": "LIMIT", "side": "BUY",
    "workingTime": 1507725176595, "selfTradePreventionMode": "NONE",
    "fills": [{"price": "30000.10000000", "qty": "0.00020000", "commission": "0.00000020", "commissionAsset": "BTC", "tradeId": 56}],
}  # fmt: skip


def measure(n: int) -> dict[str, float]:
    """µs per order (see the module docstring)."""
    return asyncio.run(_measure(n))


async def _measure(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with binance(Path(tmp), poll_interval=300, rate_limit=10**9) as (server, broker, _):
            broker.order_bucket.rate = broker.order_bucket.burst = 10.0**9
            exchange = broker.exchange
            market = exchange.markets["BTC/USDT"]
            orders = [order(f"bench-{i}", qty="0.0002", limit="30000.10") for i in range(n)]
            now = datetime.now(UTC)
            started = time.perf_counter()
            for o in orders:
                request = order_to_request(o, "BTCUSDT", o.client_order_id)
                exchange.sign("order", ["private"], "POST", request)
                parsed = exchange.parse_order(FULL, market)
                order_to_report(parsed, client_order_id=o.client_order_id, status=OrderStatus.FILLED, raw_status="FILLED",
                                market=market, trades=parsed["trades"], raw={}, now=now)  # fmt: skip
            mapping = (time.perf_counter() - started) / n
            started = time.perf_counter()
            with broker.services.engine.begin() as conn:  # the router's batch transaction, which it commits anyway
                for i in range(n):
                    broker.refs.remember(OrderRef(f"ref-{i}", "BTC/USDT", f"ref-{i}", None, time.time()))
                    broker.persist(conn)
            references = (time.perf_counter() - started) / n

            plain = ccxt_async.binance({"apiKey": API_KEY, "secret": SECRET, "enableRateLimit": False})
            plain.urls["api"] = point_at(plain.urls["api"], str(broker.opts.base_url))
            rounds = range(warm_up(n) + n)
            submits = [order(f"ours-{i}", qty="0.0002", limit="30000.10") for i in rounds]
            requests = [
                order_to_request(order(f"bare-{i}", qty="0.0002", limit="30000.10"), "BTCUSDT", wire_client_id(f"bare-{i}")) for i in rounds
            ]

            async def ours(i: int) -> None:
                report = await broker.submit(submits[i])
                assert report.status is OrderStatus.FILLED, report

            async def bare(i: int) -> None:
                answer = await plain.privatePostOrder(requests[i])
                assert answer["status"] == "FILLED", answer

            try:
                round_trips, bare_trips, sent = await side_by_side(n, ours, bare, server.requests)
            finally:
                await plain.close()
    return figures(mapping * 1e6, round_trips, bare_trips, len({r.peer for r in sent})) | {"reference_us": references * 1e6}


if __name__ == "__main__":
    main(measure)
