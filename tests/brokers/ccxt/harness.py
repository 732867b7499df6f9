"""What the Binance and Coinbase contract tests share: an adapter on a fake exchange, and orders as the router hands them over."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from brokers.base import AdapterServices, ExecutionReport
from brokers.ccxt.adapter import CcxtBroker
from host.trading.model import Order, OrderType, Side, TimeInForce
from host.trading.states import OrderStatus

from .fakehttp import ScriptedServer
from .statedb import state_engine

S = TypeVar("S", bound=ScriptedServer)
B = TypeVar("B", bound=CcxtBroker)


@asynccontextmanager
async def adapter_on(
    server: S, build: Callable[[str, AdapterServices], B], tmp_path: Path, secrets: Mapping[str, str], *, start: bool = True,
) -> AsyncIterator[tuple[S, B, list[ExecutionReport]]]:
    """``server`` started, the adapter ``build`` makes for its URL (fast retries), and the reports it emitted."""
    url = await server.start()
    emitted: list[ExecutionReport] = []
    engine = state_engine(tmp_path / "state.db")
    services = AdapterServices(
        engine=engine, emit=emitted.append, clock=time.time, logger=logging.getLogger(f"test.{type(server).__name__}"), secrets=secrets,
    )  # fmt: skip
    broker = build(url, services)
    broker.read_backoff = 0.01
    try:
        if start:
            await broker.start()
            broker.exchange.timeout_on_exit = 0  # ccxt waits 250 ms on close for TLS; there is none here
        yield server, broker, emitted
    finally:
        if broker.exchange is not None:  # also when the test started it (or its start failed): no TLS to wait for
            broker.exchange.timeout_on_exit = 0
        await broker.stop()
        await server.stop()
        engine.dispose()


def fast_options(url: str, options: dict[str, Any], *, rate_limit: float) -> dict[str, Any]:
    """An adapter's options on a local fake at ``url``: timeout 0.5 s and fast polling unless ``options`` say otherwise."""
    return {"timeout": 0.5, "poll_interval": 0.05, "rate_limit": rate_limit} | options | {"base_url": url}


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def make_order(
    cid: str, side: str = "BUY", qty: str = "0.01", kind: str = "LIMIT", limit: str | None = "30000.10", stop: str | None = None,
    tif: str = "GTC", instrument: str = "BTC/USDT", broker_order_id: str | None = None, *, broker: str = "bn",
) -> Order:
    """An order as the router hands it to the adapter."""
    now = datetime.now(UTC)
    return Order(
        client_order_id=cid, request_id="r", strategy="sma", run_id=None, broker=broker, broker_order_id=broker_order_id,
        instrument=instrument, side=Side(side), type=OrderType(kind), quantity=Decimal(qty), limit_price=Decimal(limit) if limit else None,
        stop_price=Decimal(stop) if stop else None, time_in_force=TimeInForce(tif), stop_loss=None, take_profit=None, tag=None,
        status=OrderStatus.SUBMITTED, raw_status=None, filled_quantity=Decimal(0), average_price=None, commission=Decimal(0),
        error=None, created_at=now, updated_at=now,
    )  # fmt: skip
