"""A Binance adapter driven against the local fake server, in a fresh SQLite state database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from brokers.base import AdapterServices, ExecutionReport
from brokers.binance.adapter import BinanceBroker
from brokers.binance.options import BinanceOptions
from tests.brokers.ccxt.harness import adapter_on, fast_options, make_order, run

from .fakeserver import API_KEY, SECRET, FakeBinance

__all__ = ["binance", "order", "run"]


@asynccontextmanager
async def binance(
    tmp_path: Path, *, start: bool = True, secret: str = SECRET, **options: Any
) -> AsyncIterator[tuple[FakeBinance, BinanceBroker, list[ExecutionReport]]]:
    """The fake exchange, an adapter pointed at it (timeout 0.5 s, fast retries) and the reports it emitted."""

    def build(url: str, services: AdapterServices) -> BinanceBroker:
        return BinanceBroker("bn", BinanceOptions(**fast_options(url, options, rate_limit=5000)), services)

    async with adapter_on(FakeBinance(), build, tmp_path, {"api_key": API_KEY, "api_secret": secret}, start=start) as parts:
        yield parts


order = partial(make_order, broker="bn", limit="30000.10", instrument="BTC/USDT")
"""An order as the router hands it to the adapter."""
