"""Per-order overhead of the Coinbase adapter, against the local server of its contract tests.

``mapping_signing_us``: our order → JSON body, ccxt's ES256 JWT signing, an order
answer parsed and mapped back to a report (no I/O). ``reference_us``: the order's
reference kept in memory and upserted inside the router's batch transaction (SQLite,
WAL, synchronous=FULL; no transaction or fsync of its own: nothing is written before
an order is sent). ``round_trip_us``:
``submit`` of a limit order that fills at once — Coinbase answers a create with ids
only, so this is three requests (create, read back, fills) through one persistent
HTTP connection to 127.0.0.1, JWT verification in the fake included. Run:
``.venv/bin/python benchmarks/adapters/coinbase.py 300``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from brokers.ccxt.mapping import order_to_report
from brokers.ccxt.refs import OrderRef
from brokers.coinbase.orders import order_to_body
from host.trading.states import OrderStatus

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the local server is the one of the contract tests, which live beside the packages
    sys.path.insert(0, str(REPO))

from tests.brokers.coinbase.conftest import coinbase, order

ORDER = {
    "order_id": "0000-000000-000000", "product_id": "BTC-USD", "user_id": "2222-000000-000000",
    "order_configuration": {"limit_limit_gtc": {"base_size": "0.0002", "limit_price": "30000.01", "post_only": False}},
    "side": "BUY", "client_order_id": "bench", "status": "FILLED", "time_in_force": "GOOD_UNTIL_CANCELLED",
    "created_time": "2026-11-22T10:00:00Z", "completion_percentage": "100", "filled_size": "0.0002", "average_filled_price": "30000.01",
    "number_of_fills": "1", "filled_value": "6.000002", "total_fees": "0.036", "order_type": "LIMIT", "product_type": "SPOT",
}  # fmt: skip
FILL = {"entry_id": "e-1", "trade_id": "t-1", "order_id": "0000-000000-000000", "trade_time": "2026-11-22T10:00:00Z", "price": "30000.01",
        "size": "0.0002", "commission": "0.036", "product_id": "BTC-USD", "liquidity_indicator": "TAKER", "size_in_quote": False, "side": "BUY"}  # fmt: skip


def measure(n: int) -> dict[str, float]:
    """µs per order for mapping + signing, keeping and persisting the reference, and the round trip to a local server."""
    return asyncio.run(_measure(n))


async def _measure(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with coinbase(Path(tmp), poll_interval=300, rate_limit=10**9) as (_, broker, _):
            exchange = broker.exchange
            market = exchange.markets["BTC/USD"]
            orders = [order(f"bench-{i}", qty="0.0002", limit="30000.01") for i in range(n)]
            now = datetime.now(UTC)
            started = time.perf_counter()
            for o in orders:
                body = order_to_body(o, "BTC-USD", o.client_order_id, now)
                exchange.sign("brokerage/orders", ["v3", "private"], "POST", body)
                parsed = exchange.parse_order(ORDER, market)
                trades = exchange.parse_trades([FILL], market)
                order_to_report(parsed, client_order_id=o.client_order_id, status=OrderStatus.FILLED, raw_status="FILLED",
                                market=market, trades=trades, raw={}, now=now)  # fmt: skip
            mapping = (time.perf_counter() - started) / n
            started = time.perf_counter()
            with broker.services.engine.begin() as conn:  # the router's batch transaction, which it commits anyway
                for i in range(n):
                    broker.refs.remember(OrderRef(f"ref-{i}", "BTC/USD", f"ref-{i}", None, time.time()))
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
