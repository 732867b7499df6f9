"""Streams over real chunked HTTP: price lines and heartbeats, dead connections, reconnects, subscriptions."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

import httpx

from brokers.oanda import OandaBroker
from brokers.oanda.stream import LineStream

from .conftest import broker
from .server import ACCOUNT, TOKEN, FakeOanda, Reply, Script, fixture

D = Decimal
R = TypeVar("R")
PRICES = f"/v3/accounts/{ACCOUNT}/pricing/stream"


def run(scenario: Callable[[], Coroutine[Any, Any, R]]) -> R:
    return asyncio.run(scenario())


def price(bid: str, ask: str, instrument: str = "EUR_USD") -> dict[str, Any]:
    return {
        "type": "PRICE", "instrument": instrument, "time": "2026-11-22T14:50:01.003200000Z", "tradeable": True,
        "bids": [{"price": bid, "liquidity": 10000000}], "asks": [{"price": ask, "liquidity": 10000000}],
        "closeoutBid": bid, "closeoutAsk": ask,
    }  # fmt: skip


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def streaming(server: FakeOanda, body: Callable[[OandaBroker], Coroutine[Any, Any, R]], **overrides: Any) -> R:
    adapter, _ = broker(server, stream_prices=True, **overrides)
    await adapter.start()
    try:
        return await body(adapter)
    finally:
        await adapter.stop()


def test_quotes_come_from_the_stream_lines_and_heartbeats_keep_it_alive(oanda: FakeOanda) -> None:
    oanda.stream("/pricing/stream", Script(fixture("pricing_stream.ndjson"), then="hold"))

    async def body(adapter: OandaBroker) -> Any:
        await until(lambda: adapter._price_stream is not None and "EUR_USD" in adapter._prices and adapter._prices["EUR_USD"].bid == D("1.08426"))
        await asyncio.sleep(0.5)  # longer than stream_timeout: only the heartbeats keep it alive
        return await adapter.quote("EUR_USD"), adapter.describe()

    quote, described = run(lambda: streaming(oanda, body, stream_instruments=("EUR_USD",)))
    assert (quote.bid, quote.ask, quote.bid_size) == (D("1.08426"), D("1.08433"), D(10000000))
    assert not oanda.sent("GET", "/pricing")
    stream = oanda.sent("GET", "/pricing/stream")[0]
    assert stream.query == {"instruments": "EUR_USD"} and stream.headers["authorization"] == f"Bearer {TOKEN}"
    assert described["price_stream"] == {"alive": True, "connections": 1}


def test_a_dropped_stream_reconnects_and_prices_resume(oanda: FakeOanda) -> None:
    oanda.stream("/pricing/stream", Script([price("1.08000", "1.08010")], then="drop"), Script([price("1.08100", "1.08110")], then="hold"))

    async def body(adapter: OandaBroker) -> Any:
        await until(lambda: "EUR_USD" in adapter._prices and adapter._prices["EUR_USD"].bid == D("1.081"))
        return await adapter.quote("EUR_USD")

    quote = run(lambda: streaming(oanda, body, stream_instruments=("EUR_USD",)))
    assert quote.bid == D("1.081") and oanda.stream_connections["/pricing/stream"] == 2
    assert not oanda.sent("GET", "/pricing")


def test_missed_heartbeats_mean_a_dead_connection_and_a_new_one(oanda: FakeOanda) -> None:
    # The new connection says nothing for a while, so the test sees the gap between the two.
    oanda.stream("/pricing/stream", Script([price("1.08000", "1.08010")], then="stall"), Script([0.2, price("1.08200", "1.08210")], then="hold"))
    oanda.on("GET", "/pricing", Reply(200, {"prices": [price("1.08050", "1.08060")]}))

    async def body(adapter: OandaBroker) -> Any:
        await until(lambda: "EUR_USD" in adapter._prices)
        stream = adapter._price_stream
        assert stream is not None
        await until(lambda: not stream.alive())  # silent past stream_timeout: the cached price is no longer trusted
        stale = await adapter.quote("EUR_USD")
        await until(lambda: adapter._prices["EUR_USD"].bid == D("1.082"))
        return stale, await adapter.quote("EUR_USD")

    stale, fresh = run(lambda: streaming(oanda, body, stream_instruments=("EUR_USD",)))
    assert stale.bid == D("1.0805") and fresh.bid == D("1.082")
    assert oanda.stream_connections["/pricing/stream"] == 2


def test_an_instrument_quoted_once_joins_the_stream(oanda: FakeOanda) -> None:
    oanda.on("GET", "/pricing", Reply(200, fixture("pricing.json")))
    oanda.stream("/pricing/stream", Script([price("1.08000", "1.08010")]), Script([price("1.08000", "1.08010"), price("149.400", "149.410", "USD_JPY")]))

    async def body(adapter: OandaBroker) -> Any:
        first = await adapter.quote("USD_JPY")
        await until(lambda: "USD_JPY" in adapter._prices)
        return first, await adapter.quote("USD_JPY")

    first, second = run(lambda: streaming(oanda, body, stream_instruments=("EUR_USD",)))
    assert first.bid == D("149.321") and second.bid == D("149.4")
    assert [r.query["instruments"] for r in oanda.sent("GET", "/pricing/stream")] == ["EUR_USD", "EUR_USD,USD_JPY"]
    assert len(oanda.sent("GET", "/pricing")) == 1


def test_the_pricing_stream_opens_with_the_first_quote_when_none_is_configured(oanda: FakeOanda) -> None:
    oanda.on("GET", "/pricing", Reply(200, fixture("pricing.json")))
    oanda.stream("/pricing/stream", Script([price("149.400", "149.410", "USD_JPY")]))

    async def body(adapter: OandaBroker) -> Any:
        await adapter.quote("USD_JPY")
        await until(lambda: "USD_JPY" in adapter._prices)
        return await adapter.quote("USD_JPY")

    assert run(lambda: streaming(oanda, body)).bid == D("149.4")
    assert oanda.sent("GET", "/pricing/stream")[0].query == {"instruments": "USD_JPY"}


def test_a_stream_skips_bad_lines_survives_handler_errors_and_retries_refusals(oanda: FakeOanda) -> None:
    oanda.stream(
        "/pricing/stream",
        Script(status=401, body={"errorMessage": "Insufficient authorization to perform request."}),
        Script(["not json", "[1, 2]", {"type": "PRICE", "boom": True}, {"type": "PRICE", "n": 1}], then="end"),
        Script([{"type": "PRICE", "n": 2}], then="hold"),
    )
    seen: list[dict[str, Any]] = []

    async def on_message(message: dict[str, Any]) -> None:
        if message.get("boom"):
            raise ValueError("a handler bug")
        seen.append(message)

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=oanda.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            stream = LineStream(
                http, PRICES, name="test stream", params=lambda: {"instruments": "EUR_USD"}, on_message=on_message,
                idle_timeout=0.3, connect_timeout=1.0, reconnect_delay=0.02, logger=logging.getLogger("tests.oanda"),
            )  # fmt: skip
            task = asyncio.create_task(stream.run())
            try:
                await until(lambda: any(m.get("n") == 2 for m in seen))
                assert stream.alive() and stream.connections == 2  # the refused attempt opened nothing
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            assert not stream.connected

    run(scenario)
    assert [m.get("n") for m in seen if m.get("type") == "PRICE"] == [1, 2]
    assert oanda.stream_connections["/pricing/stream"] == 3
