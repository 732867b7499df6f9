"""A Coinbase adapter driven against the local fake server, in a fresh SQLite state database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from brokers.base import AdapterServices, ExecutionReport
from brokers.coinbase.adapter import CoinbaseBroker
from brokers.coinbase.options import CoinbaseOptions
from tests.brokers.ccxt.harness import adapter_on, fast_options, make_order, run

from .fakeserver import KEY_NAME, FakeCoinbase, ec_key

__all__ = ["coinbase", "order", "run"]


@asynccontextmanager
async def coinbase(
    tmp_path: Path, *, start: bool = True, key: tuple[str, Any] | None = None, key_name: str = KEY_NAME, **options: Any
) -> AsyncIterator[tuple[FakeCoinbase, CoinbaseBroker, list[ExecutionReport]]]:
    """The fake exchange, an adapter pointed at it (timeout 0.5 s, fast retries) and the reports it emitted."""
    secret, public = key or ec_key()

    def build(url: str, services: AdapterServices) -> CoinbaseBroker:
        return CoinbaseBroker("cb", CoinbaseOptions(**fast_options(url, options, rate_limit=1000)), services)

    async with adapter_on(FakeCoinbase(public, key_name), build, tmp_path, {"api_key": key_name, "api_secret": secret}, start=start) as parts:
        yield parts


order = partial(make_order, broker="cb", limit="30000.01", instrument="BTC/USD")
"""An order as the router hands it to the adapter."""
