"""Per-order overhead of the Binance adapter, against the local server of its contract tests.

``mapping_signing_us``: our order → request, ccxt's HMAC signing, the FULL answer
parsed and mapped back to a report (no I/O). ``reference_us``: the order's reference
kept in memory and upserted inside the router's batch transaction (SQLite in WAL mode
with synchronous=FULL, as the router keeps its state database; no transaction or fsync
of its own: nothing is written before an order is sent). ``round_trip_us``: ``submit`` of a limit order that
fills at once, through one persistent HTTP connection to 127.0.0.1 (the fake's own
matching and signature check included). Run: ``.venv/bin/python benchmarks/adapters/binance.py 500``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from brokers.binance.orders import order_to_request
from brokers.ccxt.mapping import order_to_report
from brokers.ccxt.refs import OrderRef
from host.trading.states import OrderStatus

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the local server is the one of the contract tests, which live beside the packages
    sys.path.insert(0, str(REPO))

from tests.brokers.binance.conftest import binance, order

FULL = {
    "symbol": "BTCUSDT", "orderId": 28, "orderListId": -1, "clientOrderId": "bench", "transactTime": 1507725176595,
    "price": "30000.10000000", "origQty": "0.00020000", "executedQty": "0.00020000", "origQuoteOrderQty": "0.00000000",
    "cummulativeQuoteQty": "6.00002000", "status": "FILLED", "timeInForce": "GTC", "type": "LIMIT", "side": "BUY",
    "workingTime": 1507725176595, "selfTradePreventionMode": "NONE",
    "fills": [{"price": "30000.10000000", "qty": "0.00020000", "commission": "0.00000020", "commissionAsset": "BTC", "tradeId": 56}],
}  # fmt: skip


def measure(n: int) -> dict[str, float]:
    """µs per order for mapping + signing, keeping and persisting the reference, and the round trip to a local server."""
    return asyncio.run(_measure(n))


async def _measure(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with binance(Path(tmp), poll_interval=300, rate_limit=10**9) as (_, broker, _):
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
            started = time.perf_counter()
            for o in orders:
                await broker.submit(o)
            round_trip = (time.perf_counter() - started) / n
    return {"mapping_signing_us": mapping * 1e6, "reference_us": references * 1e6, "round_trip_us": round_trip * 1e6}


if __name__ == "__main__":
    for name, value in measure(int(sys.argv[1]) if len(sys.argv) > 1 else 200).items():
        print(f"{name:22} {value:10.1f}")
