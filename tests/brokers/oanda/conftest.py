"""Shared pieces of the OANDA contract tests: the local server with an account on it, options, orders."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy

from brokers.base import AdapterServices, ExecutionReport
from brokers.oanda.adapter import OandaBroker
from brokers.oanda.options import OandaOptions
from host.trading.model import Order, OrderType, Side, TimeInForce
from host.trading.states import OrderStatus

from .server import ACCOUNT, TOKEN, FakeOanda, Reply, Script, fixture

D = Decimal


@pytest.fixture
def oanda() -> Iterator[FakeOanda]:
    """The local server with the practice account's summary and instruments, and quiet streams."""
    with FakeOanda() as server:
        server.on("GET", "/summary", Reply(200, fixture("account_summary.json")))
        server.on("GET", "/instruments", Reply(200, fixture("account_instruments.json")))
        server.stream("/transactions/stream", Script())
        server.stream("/pricing/stream", Script())
        yield server


def options(server: FakeOanda, **overrides: Any) -> OandaOptions:
    values: dict[str, Any] = {
        "account_id": ACCOUNT, "base_url": server.url, "stream_url": server.url, "timeout": 2.0,
        "stream_timeout": 0.3, "reconnect_delay": 0.02, "stream_transactions": False, "stream_prices": False,
    }  # fmt: skip
    values.update(overrides)
    return OandaOptions(**values)


def broker(server: FakeOanda, *, token: str = TOKEN, **overrides: Any) -> tuple[OandaBroker, list[ExecutionReport]]:
    """An adapter pointed at ``server`` (not started); the list collects what it emits."""
    reports: list[ExecutionReport] = []
    services = AdapterServices(
        engine=sqlalchemy.create_engine("sqlite://"), emit=reports.append, clock=time.time,
        logger=logging.getLogger("tests.oanda"), secrets={"token": token},
    )  # fmt: skip
    return OandaBroker("fx", options(server, **overrides), services), reports


def order(
    cid: str = "sma_signal-20261122-000042",
    side: str = "BUY",
    quantity: str = "10000",
    type: str = "MARKET",
    limit: str | None = None,
    stop: str | None = None,
    tif: str = "GTC",
    instrument: str = "EUR_USD",
    stop_loss: str | None = None,
    take_profit: str | None = None,
    tag: str | None = None,
    filled: str = "0",
    trailing_stop: str | None = None,
) -> Order:
    now = datetime.now(UTC)
    return Order(
        client_order_id=cid, request_id=cid, strategy="sma_signal", run_id=None, broker="fx", broker_order_id=None,
        instrument=instrument, side=Side(side), type=OrderType(type), quantity=D(quantity),
        limit_price=None if limit is None else D(limit), stop_price=None if stop is None else D(stop),
        time_in_force=TimeInForce(tif), stop_loss=None if stop_loss is None else D(stop_loss),
        take_profit=None if take_profit is None else D(take_profit), tag=tag, status=OrderStatus.SUBMITTED, raw_status=None,
        filled_quantity=D(filled), average_price=None, commission=D(0), error=None, created_at=now, updated_at=now,
        trailing_stop=None if trailing_stop is None else D(trailing_stop),
    )  # fmt: skip
