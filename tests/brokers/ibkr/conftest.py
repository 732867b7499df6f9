"""Fixtures for the Interactive Brokers adapter: the loopback fake TWS and adapters connected to it."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import create_engine

from brokers.base import AdapterServices, ExecutionReport
from brokers.ibkr.adapter import IbkrBroker
from brokers.ibkr.options import IbkrOptions
from host.trading.model import Order
from host.trading.states import OrderStatus

from .fake_tws import FakeOrder, FakeTws

INSTRUMENTS: dict[str, Any] = {
    "EUR_USD": {"kind": "forex"},
    "USD_JPY": {"kind": "forex"},
    "AAPL": {"kind": "stock", "exchange": "SMART", "currency": "USD", "primary_exchange": "NASDAQ"},
    "BTC_USD": {"kind": "crypto", "exchange": "PAXOS"},
}


def make_options(port: int, **overrides: Any) -> IbkrOptions:
    """Options with short timeouts, for a fake TWS on ``port``."""
    values: dict[str, Any] = {
        "port": port, "client_id": 7, "timeout": 1.0, "connect_timeout": 1.0, "reconnect_max_delay": 0.05,
        "commission_wait": 0.05, "instruments": INSTRUMENTS,
    }  # fmt: skip
    values.update(overrides)
    return IbkrOptions(**values)


def make_order(cid: str = "sma-20261122-000001", **fields: Any) -> Order:
    """An order as the router hands it to an adapter."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "client_order_id": cid, "request_id": "req-1", "strategy": "sma", "run_id": 1, "broker": "ib", "broker_order_id": None,
        "instrument": "EUR_USD", "side": "BUY", "type": "MARKET", "quantity": Decimal("20000"), "limit_price": None,
        "stop_price": None, "time_in_force": "GTC", "stop_loss": None, "take_profit": None, "tag": None,
        "status": OrderStatus.SUBMITTED, "raw_status": None, "filled_quantity": Decimal(0), "average_price": None,
        "commission": Decimal(0), "error": None, "created_at": now, "updated_at": now,
    }  # fmt: skip
    values.update(fields)
    return Order(**values)


UNCLASSIFIED = 10999
"""An error code the table does not classify: nothing says whether TWS took the order."""


def unclassified_error(fake: FakeTws, *, keep: bool) -> None:
    """TWS answers each new order with only an unclassified error; ``keep``: it took the order all the same."""

    def on_place(order: FakeOrder) -> None:
        fake.send_error(order, UNCLASSIFIED, "A message the adapter has never seen")
        if keep:
            order.status = "Submitted"  # working; TWS says so only when asked
        else:
            del fake.orders[(order.client_id, order.order_id)]

    fake.on_place = on_place


class Harness:
    """One adapter connected to the fake, with the reports it emitted."""

    def __init__(self, fake: FakeTws, broker: IbkrBroker, reports: list[ExecutionReport]) -> None:
        self.fake, self.broker, self.reports = fake, broker, reports

    async def report(self, cid: str, status: OrderStatus | None = None, timeout: float = 2.0) -> ExecutionReport:
        """The first emitted report of ``cid`` (in ``status``), waiting for it."""

        def found() -> ExecutionReport | None:
            return next((r for r in self.reports if r.client_order_id == cid and (status is None or r.status is status)), None)

        await self.fake.wait_for(lambda: found() is not None, timeout)
        report = found()
        assert report is not None
        return report

    def of(self, cid: str) -> list[ExecutionReport]:
        return [r for r in self.reports if r.client_order_id == cid]


BrokerFactory = Callable[..., Awaitable[Harness]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTws]:
    tws = FakeTws()
    await tws.start()
    yield tws
    await tws.stop()
    assert tws.malformed == [], "a request broke the TWS API protocol"
    assert tws.unhandled == [], "a request the fake does not know"


@pytest.fixture
async def connect(fake: FakeTws) -> AsyncIterator[BrokerFactory]:
    """Start adapters against the fake (stopped at the end): ``await connect(client_id=8, ...)``."""
    started: list[IbkrBroker] = []

    async def factory(*, start: bool = True, **overrides: Any) -> Harness:
        reports: list[ExecutionReport] = []
        services = AdapterServices(
            engine=create_engine("sqlite://"), emit=reports.append, clock=time.time, logger=logging.getLogger("tradehost.broker.ib"),
        )  # fmt: skip
        broker = IbkrBroker("ib", make_options(fake.port, **overrides), services)
        started.append(broker)
        if start:
            await broker.start()
        return Harness(fake, broker, reports)

    yield factory
    for broker in started:
        await broker.stop()


@pytest.fixture
async def ib(connect: BrokerFactory) -> Harness:
    """An adapter connected to the fake as client 7."""
    return await connect()
