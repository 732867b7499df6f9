"""The ccxt adapter base: what holds for every exchange, shown on the Binance fake server.

The contract each exchange keeps is run on both fakes in test_contract.py;
exchange-specific behaviour is tested in tests/brokers/binance and tests/brokers/coinbase.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy

from brokers.base import AdapterServices, ExecutionReport, OutcomeUnknown
from brokers.binance.adapter import BinanceBroker
from brokers.ccxt.refs import refs_table
from host.trading.errors import InvalidInstrument, OrderNotFound, RateLimited, ServiceUnavailable
from host.trading.states import OrderStatus
from tests.brokers.binance.conftest import binance, order, run

S = OrderStatus


def test_options_of_another_type_are_refused(tmp_path: Path) -> None:
    from brokers.paper.options import PaperOptions

    services = AdapterServices(engine=sqlalchemy.create_engine("sqlite://"), emit=lambda r: None, clock=lambda: 0.0)
    with pytest.raises(TypeError, match="BinanceOptions"):
        BinanceBroker("bn", PaperOptions(), services)


def test_references_reach_the_state_database_only_in_the_routers_transaction(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (server, broker, _):
            engine = broker.services.engine
            writes: list[str] = []
            sqlalchemy.event.listen(engine, "before_cursor_execute", lambda *args: writes.append(args[2]))
            await broker.submit(order("s-1", limit="29000"))
            assert len(server.sent("POST", "/api/v3/order")) == 1
            assert not [w for w in writes if not w.lstrip().upper().startswith("SELECT")]  # no write of its own, before or after sending
            with engine.connect() as conn:
                assert conn.execute(sqlalchemy.select(refs_table)).all() == []
            with engine.begin() as conn:
                broker.persist(conn)
            with engine.connect() as conn:
                (row,) = conn.execute(sqlalchemy.select(refs_table)).all()
            assert (row.client_order_id, row.symbol, row.wire_id, row.broker_order_id) == ("s-1", "BTC/USDT", "s-1", "1000")

    run(scenario())


def test_lookup_without_the_order_uses_the_kept_reference_and_without_either_raises(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (_, broker, _):
            await broker.submit(order("s-1", limit="29000"))
            found = await broker.lookup("s-1")  # an older caller: the reference in memory names the symbol
            assert found is not None and found.status is S.ACCEPTED
            with pytest.raises(OrderNotFound, match="symbol is unknown"):
                await broker.lookup("never-referenced")  # not None: that would mean "the exchange never got it"

    run(scenario())


def test_a_failure_after_the_exchange_took_the_order_is_an_unknown_outcome(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (_, broker, _):
            def broken(*args: object, **kwargs: object) -> object:
                raise KeyError("mapping bug")

            broker._report = broken  # type: ignore[assignment,method-assign]
            with pytest.raises(OutcomeUnknown, match="accepted order s-1"):
                await broker.submit(order("s-1"))

    run(scenario())


def test_a_report_the_router_cannot_take_does_not_stop_the_poller(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (server, broker, _):
            taken: list[ExecutionReport] = []

            def emit(report: ExecutionReport) -> None:
                taken.append(report)
                if len(taken) == 1:
                    raise RuntimeError("router busy")

            broker.services.emit = emit
            await broker.submit(order("s-1", qty="0.5", limit="29000"))
            server.fill(1000, "0.1", "29000")
            while not taken:
                await asyncio.sleep(0.01)
            server.fill(1000, "0.4", "29000")
            while len(taken) < 2:
                await asyncio.sleep(0.01)
            assert taken[-1].status is S.FILLED and broker.poller.failures == 0

    run(scenario())


def test_lookup_of_an_order_in_a_symbol_no_longer_listed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (_, broker, _):
            await broker.submit(order("s-1", limit="29000"))
            del broker.exchange.markets["BTC/USDT"]
            with pytest.raises(InvalidInstrument, match="no longer lists"):
                await broker.lookup("s-1", order("s-1", limit="29000"))

    run(scenario())


def test_describe_names_what_the_brokers_command_shows(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (_, broker, _):
            info = broker.describe()
            assert {"environment", "connected", "latency_ms", "instruments", "working_orders", "poll_failures"} <= set(info)
            assert info["type"] == "binance" and info["capabilities"]["instruments"] == 2
        assert broker.describe()["connected"] is False  # stopped

    run(scenario())


def test_a_start_that_fails_closes_the_http_session_it_opened(tmp_path: Path) -> None:
    # The router keeps (and later stops) only adapters whose start succeeded.
    async def scenario() -> None:
        async with binance(tmp_path, start=False) as (server, broker, _):
            server.script("GET", "/api/v3/exchangeInfo", status=503, text="unavailable", times=broker.read_attempts)
            with pytest.raises(ServiceUnavailable):
                await broker.start()
            assert broker.exchange.session is None and broker.exchange.tcp_connector is None
            assert broker.poller._task is None

    run(scenario())


def test_a_symbol_that_cannot_be_polled_does_not_keep_the_others_from_being_polled(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (server, broker, emitted):
            await broker.submit(order("btc", limit="29000"))
            eth = await broker.submit(order("eth", instrument="ETH/USDT", qty="0.5", limit="1900"))
            listing = broker._list_open

            async def delisted(symbol: str | None) -> list[dict[str, object]]:
                if symbol == "BTC/USDT":  # Binance answers -1121 for a symbol it no longer lists
                    raise InvalidInstrument("Binance poll open orders: unknown or untradable instrument")
                return await listing(symbol)

            broker._list_open = delisted  # type: ignore[method-assign]
            server.fill(int(eth.broker_order_id or 0), "0.5", "1900")
            for _ in range(200):
                if emitted:
                    break
                await asyncio.sleep(0.01)
            assert [(r.client_order_id, r.status) for r in emitted] == [("eth", S.FILLED)]
            assert broker.poller.failures > 0  # the failing symbol is still counted and logged

    run(scenario())


def test_a_final_report_the_router_could_not_take_is_offered_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (server, broker, _):
            refused: list[ExecutionReport] = []
            taken: list[ExecutionReport] = []

            def emit(report: ExecutionReport) -> None:
                if not refused:
                    refused.append(report)
                    raise RuntimeError("router busy")
                taken.append(report)

            broker.services.emit = emit
            await broker.submit(order("s-1", qty="0.5", limit="29000"))
            server.fill(1000, "0.5", "29000")
            for _ in range(200):
                if taken:
                    break
                await asyncio.sleep(0.01)
            assert refused[0].status is S.FILLED  # the order left the open list with this report
            assert taken and taken[0].status is S.FILLED and taken[0].fills == refused[0].fills

    run(scenario())


def test_a_new_order_is_refused_not_held_while_the_exchange_asked_for_a_long_pause(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (server, broker, _):
            server.script("POST", "/api/v3/order", status=418, body={"code": -1003, "msg": "Way too much request weight used; IP banned"},
                          headers={"Retry-After": "120"})  # fmt: skip
            with pytest.raises(RateLimited):
                await broker.submit(order("s-1"))
            with pytest.raises(RateLimited) as caught:  # at once: not sent two minutes after the strategy decided
                await asyncio.wait_for(broker.submit(order("s-2")), 2.0)
            assert caught.value.retry_after is not None and caught.value.retry_after > 100
            assert len(server.sent("POST", "/api/v3/order")) == 1

    run(scenario())
