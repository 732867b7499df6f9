#!/usr/bin/env python3
"""What the OANDA adapter itself costs per order, against the local server of its contract tests.

Run from the repository root::

    .venv/bin/python benchmarks/adapters/oanda.py           # 2,000 orders
    .venv/bin/python benchmarks/adapters/oanda.py 500

``measure(n)`` returns, in microseconds per order (the figures every adapter
module reports, see ``benchmarks/adapters/__init__.py``):

- ``mapping_signing_us``: our order → v20 JSON body → bytes, and OANDA's 201
  answer (bytes) → ExecutionReport, with no I/O; OANDA signs nothing (the bearer
  token is a fixed header), so there is no signing step to time;
- ``round_trip_p50_us`` / ``round_trip_p99_us``: ``OandaBroker.submit`` of a
  market order against ``tests/brokers/oanda/server.py`` (a threaded
  ``http.server`` on 127.0.0.1 in this process) answering every order with the
  recorded 201 fill: the token bucket (lifted), httpx on its keep-alive pool, the
  answer's parsing and the report;
- ``bare_p50_us``: the same POST (same body and headers) sent with a bare
  ``httpx.AsyncClient`` on one keep-alive connection, its JSON parsed, and
  ``overhead_p50_us`` the difference (the adapter's own cost). The two clients
  alternate order by order;
- ``connections``: client ports the server saw the adapter's orders come from (1 = the pool was reused).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx  # noqa: E402

from benchmarks.adapters import figures, main, side_by_side, warm_up  # noqa: E402
from brokers.oanda.mapping import answer_to_report, order_to_body  # noqa: E402
from brokers.oanda.market import instrument_to_model  # noqa: E402
from host.trading.states import OrderStatus  # noqa: E402
from tests.brokers.oanda.conftest import broker, order  # noqa: E402
from tests.brokers.oanda.server import ACCOUNT, TOKEN, FakeOanda, Reply, fixture  # noqa: E402

FILLED = fixture("order_create_market_filled.json")
EUR_USD = instrument_to_model(fixture("account_instruments.json")["instruments"][0])


def _mapping_us(n: int) -> float:
    orders = [order(f"bench-{i}") for i in range(n)]
    answer = json.dumps(FILLED).encode()
    begun = time.perf_counter()
    for o in orders:
        json.dumps(order_to_body(o, EUR_USD)).encode()
        answer_to_report(o.client_order_id, json.loads(answer), total=o.quantity)
    return (time.perf_counter() - begun) / n * 1e6


async def _round_trips(server: FakeOanda, n: int) -> tuple[list[float], list[float], int]:
    adapter, _ = broker(server, rate_limit=1e9)
    await adapter.start()
    rounds = range(warm_up(n) + n)
    submits = [order(f"ours-{i}") for i in rounds]
    bodies = [order_to_body(order(f"bare-{i}"), EUR_USD) for i in rounds]
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    async def ours(i: int) -> None:
        report = await adapter.submit(submits[i])
        assert report.status is OrderStatus.FILLED, report

    try:
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:

            async def bare(i: int) -> None:
                response = await http.post(f"/v3/accounts/{ACCOUNT}/orders", json=bodies[i])
                assert response.status_code == 201 and response.json()["orderFillTransaction"], response

            timings, bare_timings, sent = await side_by_side(n, ours, bare, server.requests)
    finally:
        await adapter.stop()
    return timings, bare_timings, len({r.port for r in sent})


def measure(n: int) -> dict[str, float]:
    """Microseconds per order of our mapping and of a submit over the reused connection (see the module docstring)."""
    mapping = _mapping_us(n)
    with FakeOanda() as server:
        server.on("GET", "/summary", Reply(200, fixture("account_summary.json")))
        server.on("GET", "/instruments", Reply(200, fixture("account_instruments.json")))
        server.on("POST", "/orders", Reply(201, FILLED))
        timings, bare, connections = asyncio.run(_round_trips(server, n))
    return figures(mapping, timings, bare, connections)


if __name__ == "__main__":
    main(measure)
