"""Per-order cost of the Coinbase adapter, against the local server of its contract tests (in this process's event loop).

Figures (µs per order; the common ones are described in ``benchmarks/adapters/__init__.py``):

- ``mapping_signing_us``: our order → JSON body, ccxt's ES256 JWT for it, and an
  order answer and its fill parsed by ccxt and mapped back to a report; no I/O. (The
  two reads that follow a create are signed too: that is in the round trips only.)
- ``round_trip_p50_us`` / ``round_trip_p99_us``: ``CoinbaseBroker.submit`` of a limit
  order that fills at once. Coinbase answers a create with ids only, so this is three
  requests (``POST /orders``, ``GET /orders/historical/{id}``,
  ``GET /orders/historical/fills``), each with its own JWT, over one persistent
  aiohttp connection to 127.0.0.1; the fake's JWT verification and matching (it runs
  in the same event loop), parsing and the report included. The rate limiter is lifted.
- ``bare_p50_us``: the same three requests sent with ccxt's raw endpoint methods of a
  plain ccxt client (no rate limiter, none of our code): ccxt is the client library the
  adapter sends with, so this is its ``httpx``/``ib_async`` equivalent, and
  ``overhead_p50_us`` is our code plus ccxt's order and fill parsing. The two clients
  alternate order by order, so both meet the fake with the same number of orders.
- ``connections``: client ports the server saw the adapter's requests come from. It
  can be 2 with no connection opened during the run: ccxt loads the markets with
  concurrent requests at start, and aiohttp's pool then takes its kept-alive
  connections in turn.
- ``reference_us`` (extra): the order's reference kept in memory and upserted inside
  the router's batch transaction (SQLite, WAL, synchronous=FULL; no transaction or
  fsync of its own: nothing is written before an order is sent).

Run: ``.venv/bin/python benchmarks/adapters/coinbase.py 300``.
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
from brokers.ccxt.exchange import point_at  # noqa: E402
from brokers.ccxt.mapping import order_to_report  # noqa: E402
from brokers.ccxt.refs import OrderRef  # noqa: E402
from brokers.coinbase.orders import order_to_body  # noqa: E402
from host.trading.states import OrderStatus  # noqa: E402
from tests.brokers.coinbase.conftest import coinbase, order  # noqa: E402

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
    """µs per order (see the module docstring)."""
    return asyncio.run(_measure(n))


async def _measure(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with coinbase(Path(tmp), poll_interval=300, rate_limit=10**9) as (server, broker, _):
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

            secrets = broker.services.secrets
            plain = ccxt_async.coinbase({"apiKey": secrets["api_key"], "secret": secrets["api_secret"], "enableRateLimit": False})
            plain.urls["api"] = point_at(plain.urls["api"], str(broker.opts.base_url))
            rounds = range(warm_up(n) + n)
            submits = [order(f"ours-{i}", qty="0.0002", limit="30000.01") for i in rounds]
            bodies = [order_to_body(order(f"bare-{i}", qty="0.0002", limit="30000.01"), "BTC-USD", f"bare-{i}", now) for i in rounds]

            async def ours(i: int) -> None:
                report = await broker.submit(submits[i])
                assert report.status is OrderStatus.FILLED and report.fills, report

            async def bare(i: int) -> None:  # what submit sends: the create, then the order and its fills read back
                order_id = (await plain.v3PrivatePostBrokerageOrders(bodies[i]))["success_response"]["order_id"]
                found = await plain.v3PrivateGetBrokerageOrdersHistoricalOrderId({"order_id": order_id})
                fills = await plain.v3PrivateGetBrokerageOrdersHistoricalFills({"order_ids": [order_id], "limit": 100})
                assert found["order"]["status"] == "FILLED" and fills["fills"], (found, fills)

            try:
                round_trips, bare_trips, sent = await side_by_side(n, ours, bare, server.requests)
            finally:
                await plain.close()
    return figures(mapping * 1e6, round_trips, bare_trips, len({r.peer for r in sent})) | {"reference_us": references * 1e6}


if __name__ == "__main__":
    main(measure)
