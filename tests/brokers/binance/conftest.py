"""A Binance adapter driven against the local fake server, in a fresh SQLite state database."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from brokers.base import AdapterServices, ExecutionReport
from brokers.binance.adapter import BinanceBroker
from brokers.binance.options import BinanceOptions
from host.trading.model import Order
from host.trading.states import OrderStatus
from tests.brokers.ccxt.statedb import state_engine

from .fakeserver import API_KEY, SECRET, FakeBinance


@asynccontextmanager
async def binance(tmp_path: Path, *, start: bool = True, secret: str = SECRET, **options: Any) -> AsyncIterator[tuple[FakeBinance, BinanceBroker, list[ExecutionReport]]]:
    """The fake exchange, an adapter pointed at it (timeout 0.5 s, fast retries) and the reports it emitted."""
    server = FakeBinance()
    url = await server.start()
    emitted: list[ExecutionReport] = []
    engine = state_engine(tmp_path / "state.db")
    services = AdapterServices(
        engine=engine, emit=emitted.append, clock=time.time, logger=logging.getLogger("test.binance"),
        secrets={"api_key": API_KEY, "api_secret": secret},
    )  # fmt: skip
    opts = BinanceOptions(
        base_url=url, timeout=options.pop("timeout", 0.5), poll_interval=options.pop("poll_interval", 0.05),
        rate_limit=options.pop("rate_limit", 5000), **options,
    )  # fmt: skip
    broker = BinanceBroker("bn", opts, services)
    broker.read_backoff = 0.01
    try:
        if start:
            await broker.start()
            broker.exchange.timeout_on_exit = 0  # ccxt waits 250 ms on close for TLS; there is none here
        yield server, broker, emitted
    finally:
        await broker.stop()
        await server.stop()
        engine.dispose()


def order(
    cid: str, side: str = "BUY", qty: str = "0.01", kind: str = "LIMIT", limit: str | None = "30000.10", stop: str | None = None,
    tif: str = "GTC", instrument: str = "BTC/USDT", broker_order_id: str | None = None,
) -> Order:
    """An order as the router hands it to the adapter."""
    now = datetime.now(UTC)
    return Order(
        client_order_id=cid, request_id="r", strategy="sma", run_id=None, broker="bn", broker_order_id=broker_order_id,
        instrument=instrument, side=side, type=kind, quantity=Decimal(qty), limit_price=Decimal(limit) if limit else None,
        stop_price=Decimal(stop) if stop else None, time_in_force=tif, stop_loss=None, take_profit=None, tag=None,
        status=OrderStatus.SUBMITTED, raw_status=None, filled_quantity=Decimal(0), average_price=None, commission=Decimal(0),
        error=None, created_at=now, updated_at=now,
    )  # fmt: skip


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)
