"""Against a real paper-trading TWS / IB Gateway; skipped unless TRADEHOST_TEST_IBKR_PORT is set.

    TRADEHOST_TEST_IBKR_PORT=7497 [TRADEHOST_TEST_IBKR_HOST=127.0.0.1] [TRADEHOST_TEST_IBKR_CLIENT_ID=917] \\
    [TRADEHOST_TEST_IBKR_ACCOUNT=DU1234567] .venv/bin/python -m pytest tests/brokers/ibkr/test_live.py

It reads the account, positions and a EUR.USD quote, then rests a small limit
order well below the market and cancels it. It refuses to run against an
account that is not a paper account (ids starting with DU).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal

import pytest
from sqlalchemy import create_engine

from brokers.base import AdapterServices, ExecutionReport
from brokers.ibkr.adapter import IbkrBroker
from brokers.ibkr.options import IbkrInstrument, IbkrOptions
from host.trading.errors import ServiceUnavailable
from host.trading.states import OrderStatus

from .conftest import make_order

PORT = os.environ.get("TRADEHOST_TEST_IBKR_PORT")
pytestmark = [pytest.mark.anyio, pytest.mark.skipif(not PORT, reason="set TRADEHOST_TEST_IBKR_PORT to test against a paper TWS")]


@pytest.fixture
async def paper() -> AsyncIterator[IbkrBroker]:
    options = IbkrOptions(
        environment="paper",
        host=os.environ.get("TRADEHOST_TEST_IBKR_HOST", "127.0.0.1"),
        port=int(PORT or 0),
        client_id=int(os.environ.get("TRADEHOST_TEST_IBKR_CLIENT_ID", "917")),
        account=os.environ.get("TRADEHOST_TEST_IBKR_ACCOUNT") or None,
        market_data="delayed",
        instruments={"EUR_USD": IbkrInstrument(kind="forex")},
    )
    reports: list[ExecutionReport] = []
    services = AdapterServices(engine=create_engine("sqlite://"), emit=reports.append, clock=time.time, logger=logging.getLogger("test.ibkr.live"))
    broker = IbkrBroker("ib-paper", options, services)
    await broker.start()
    try:
        if not broker.describe()["connected"]:
            pytest.fail(f"could not connect to TWS at {options.host}:{options.port}")
        if not str(broker.describe()["account"]).startswith("DU"):
            pytest.skip("not a paper account: the live test only runs against paper accounts (DU…)")
        yield broker
    finally:
        await broker.stop()


async def test_reads(paper: IbkrBroker) -> None:
    account = await paper.account()
    assert account.currency and account.equity > 0
    for position in await paper.positions():
        assert position.broker == "ib-paper"
    instrument = paper.instrument("EUR_USD")
    assert instrument is not None and instrument.extra["con_id"] == 12087792


async def test_a_resting_limit_order_is_placed_found_and_cancelled(paper: IbkrBroker) -> None:
    try:
        quote = await paper.quote("EUR_USD")
    except ServiceUnavailable as exc:
        pytest.skip(f"no EUR.USD quote from this paper account: {exc}")
    instrument = paper.instrument("EUR_USD")
    assert instrument is not None
    tick = instrument.price_increment
    limit = (quote.bid * Decimal("0.97") / tick).to_integral_value(rounding=ROUND_DOWN) * tick
    cid = f"live-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    report = await paper.submit(make_order(cid, type="LIMIT", limit_price=limit, quantity=Decimal("20000"), time_in_force="DAY"))
    assert report.status in (OrderStatus.ACCEPTED, OrderStatus.SUBMITTED)
    found = await paper.lookup(cid)
    assert found is not None and found.broker_order_id == report.broker_order_id
    placed = make_order(cid, type="LIMIT", limit_price=limit, broker_order_id=report.broker_order_id, status=report.status)
    cancelled = await paper.cancel(placed)
    assert cancelled.status in (OrderStatus.CANCELED, OrderStatus.PENDING_CANCEL)
