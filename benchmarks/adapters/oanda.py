#!/usr/bin/env python3
"""What the OANDA adapter itself costs per order: mapping, and the round trip over one reused connection.

Run from the repository root::

    .venv/bin/python benchmarks/adapters/oanda.py           # 2,000 orders
    .venv/bin/python benchmarks/adapters/oanda.py 500

``measure(n)`` returns, in microseconds per order:

- ``mapping_us``: our order → v20 JSON body → bytes, and OANDA's 201 answer
  (bytes) → ExecutionReport, with no I/O (OANDA signs nothing: the bearer
  token is a fixed header, so there is no signing step to time);
- ``round_trip_p50_us`` / ``round_trip_p99_us`` / ``round_trip_mean_us``:
  ``OandaBroker.submit`` against a local HTTP/1.1 server (asyncio, in its own
  process) that answers every order with a recorded-shape 201 fill: the token
  bucket, httpx on the keep-alive pool, the answer's parsing and the report;
- ``bare_httpx_p50_us``: the same POST sent with a bare ``httpx.AsyncClient`` on one
  keep-alive connection, and ``adapter_overhead_p50_us`` the difference (the adapter's own cost);
- ``connections``: TCP connections the server saw during the adapter's run (1 = the pool was reused).
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import statistics
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx  # noqa: E402
import sqlalchemy  # noqa: E402

from brokers.base import AdapterServices  # noqa: E402
from brokers.oanda.adapter import OandaBroker  # noqa: E402
from brokers.oanda.mapping import answer_to_report, order_to_body  # noqa: E402
from brokers.oanda.market import instrument_to_model  # noqa: E402
from brokers.oanda.options import OandaOptions  # noqa: E402
from host.trading.model import Order, OrderType, Side, TimeInForce  # noqa: E402
from host.trading.states import OrderStatus  # noqa: E402

ACCOUNT = "101-004-1234567-001"
TOKEN = "benchmark-token"
_TIME = "2026-11-22T14:03:12.482913774Z"
INSTRUMENT = {
    "name": "EUR_USD", "type": "CURRENCY", "displayName": "EUR/USD", "pipLocation": -4, "displayPrecision": 5,
    "tradeUnitsPrecision": 0, "minimumTradeSize": "1", "maximumOrderUnits": "100000000", "marginRate": "0.0333",
}  # fmt: skip
FILLED = {
    "orderCreateTransaction": {
        "id": "6357", "accountID": ACCOUNT, "batchID": "6357", "time": _TIME, "type": "MARKET_ORDER", "instrument": "EUR_USD",
        "units": "10000", "timeInForce": "FOK", "positionFill": "DEFAULT", "reason": "CLIENT_ORDER", "clientExtensions": {"id": "bench"},
    },
    "orderFillTransaction": {
        "id": "6358", "accountID": ACCOUNT, "batchID": "6357", "time": _TIME, "type": "ORDER_FILL", "orderID": "6357",
        "clientOrderID": "bench", "instrument": "EUR_USD", "units": "10000", "price": "1.08432", "fullVWAP": "1.08432",
        "pl": "0.0000", "financing": "0.0000", "commission": "0.0000", "accountBalance": "99812.4310", "reason": "MARKET_ORDER",
        "tradeOpened": {"tradeID": "6358", "units": "10000", "price": "1.08432", "halfSpreadCost": "0.4000"},
    },
    "relatedTransactionIDs": ["6357", "6358"],
    "lastTransactionID": "6358",
}  # fmt: skip
SUMMARY = {"account": {"id": ACCOUNT, "currency": "USD", "balance": "100000", "NAV": "100000", "marginUsed": "0",
                       "unrealizedPL": "0", "hedgingEnabled": False, "lastTransactionID": "6356"}, "lastTransactionID": "6356"}  # fmt: skip


def _order(n: int) -> Order:
    now = datetime.now(UTC)
    cid = f"bench-20261122-{n:06d}"
    return Order(
        client_order_id=cid, request_id=cid, strategy="bench", run_id=None, broker="fx", broker_order_id=None,
        instrument="EUR_USD", side=Side.BUY, type=OrderType.MARKET, quantity=Decimal(10000), limit_price=None,
        stop_price=None, time_in_force=TimeInForce.GTC, stop_loss=None, take_profit=None, tag=None,
        status=OrderStatus.SUBMITTED, raw_status=None, filled_quantity=Decimal(0), average_price=None,
        commission=Decimal(0), error=None, created_at=now, updated_at=now,
    )  # fmt: skip


class _Server:
    """A minimal keep-alive HTTP/1.1 server on 127.0.0.1, in its own process (no GIL shared with the client)."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        context = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve_forever, args=(child,), daemon=True)

    def __enter__(self) -> _Server:
        self._process.start()
        self.port = self._pipe.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self._pipe.send("stop")
        self.connections = self._pipe.recv()
        self._process.join(5)


def _serve_forever(pipe: Any) -> None:
    prefix = f"/v3/accounts/{ACCOUNT}"
    bodies = {
        f"GET {prefix}/summary": (200, json.dumps(SUMMARY).encode()),
        f"GET {prefix}/instruments": (200, json.dumps({"instruments": [INSTRUMENT]}).encode()),
        f"POST {prefix}/orders": (201, json.dumps(FILLED).encode()),
    }
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                length = next((int(v) for k, _, v in (h.partition(":") for h in lines[1:]) if k.lower() == "content-length"), 0)
                if length:
                    await reader.readexactly(length)
                status, body = bodies.get(f"{method} {target.split('?')[0]}", (404, b'{"errorMessage":"no route"}'))
                writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        pipe.send(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, pipe.recv)
        pipe.send(connections)
        server.close()

    asyncio.run(main())


def _mapping_us(n: int) -> float:
    instrument = instrument_to_model(INSTRUMENT)
    orders = [_order(i) for i in range(n)]
    answer = json.dumps(FILLED).encode()
    begun = time.perf_counter()
    for o in orders:
        json.dumps(order_to_body(o, instrument)).encode()
        answer_to_report(o.client_order_id, json.loads(answer), total=o.quantity)
    return (time.perf_counter() - begun) / n * 1e6


async def _round_trips(port: int, n: int) -> list[float]:
    url = f"http://127.0.0.1:{port}"
    options = OandaOptions(account_id=ACCOUNT, base_url=url, stream_url=url, stream_prices=False, stream_transactions=False, rate_limit=1e9)
    services = AdapterServices(
        engine=sqlalchemy.create_engine("sqlite://"), emit=lambda report: None, clock=time.time,
        logger=logging.getLogger("bench.oanda"), secrets={"token": TOKEN},
    )  # fmt: skip
    adapter = OandaBroker("fx", options, services)
    await adapter.start()
    orders = [_order(i) for i in range(n + 50)]
    timings = []
    try:
        for i, o in enumerate(orders):
            begun = time.perf_counter()
            report = await adapter.submit(o)
            if i >= 50:  # warm-up
                timings.append(time.perf_counter() - begun)
            assert report.status is OrderStatus.FILLED
    finally:
        await adapter.stop()
    return timings


async def _bare_round_trips(port: int, n: int) -> list[float]:
    """The same POST with a bare httpx client on one keep-alive connection: what the adapter adds is the rest."""
    body = order_to_body(_order(0), instrument_to_model(INSTRUMENT))
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    timings = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
        for i in range(n + 50):
            begun = time.perf_counter()
            response = await http.post(f"/v3/accounts/{ACCOUNT}/orders", json=body)
            response.json()
            if i >= 50:
                timings.append(time.perf_counter() - begun)
    return timings


def _p(timings: list[float], q: float) -> float:
    ordered = sorted(timings)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e6, 1)


def measure(n: int) -> dict[str, float]:
    """Microseconds per order of our mapping and of a submit over the reused connection (see the module docstring)."""
    mapping = _mapping_us(n)
    with _Server() as server:
        bare = asyncio.run(_bare_round_trips(server.port, n))
    with _Server() as server:
        timings = asyncio.run(_round_trips(server.port, n))
    connections = server.connections  # known once the server stopped
    return {
        "mapping_us": round(mapping, 1),
        "round_trip_p50_us": _p(timings, 0.5),
        "round_trip_p99_us": _p(timings, 0.99),
        "round_trip_mean_us": round(statistics.fmean(timings) * 1e6, 1),
        "bare_httpx_p50_us": _p(bare, 0.5),
        "adapter_overhead_p50_us": round(_p(timings, 0.5) - _p(bare, 0.5), 1),
        "connections": float(connections),
    }


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    for key, value in measure(count).items():
        print(f"{key:>20}: {value:g}")
