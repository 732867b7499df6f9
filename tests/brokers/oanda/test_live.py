"""Against a real OANDA practice account; skipped unless TRADEHOST_TEST_OANDA_TOKEN and TRADEHOST_TEST_OANDA_ACCOUNT are set.

It places one far-away limit order of 1 unit (changed, then cancelled) and,
when the market is open, buys 1 unit of EUR_USD and sells it again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from decimal import ROUND_DOWN, Decimal

import pytest
import sqlalchemy

from brokers.base import AdapterServices, ExecutionReport
from brokers.oanda import OandaBroker, OandaOptions
from host.trading.model import OrderChanges
from host.trading.states import OrderStatus

from .conftest import order

TOKEN = os.environ.get("TRADEHOST_TEST_OANDA_TOKEN", "")
ACCOUNT = os.environ.get("TRADEHOST_TEST_OANDA_ACCOUNT", "")
pytestmark = pytest.mark.skipif(not (TOKEN and ACCOUNT), reason="needs TRADEHOST_TEST_OANDA_TOKEN and TRADEHOST_TEST_OANDA_ACCOUNT (practice)")
S = OrderStatus


async def _wait_for(reports: list[ExecutionReport], cid: str, timeout: float = 10.0) -> ExecutionReport | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in reports if r.client_order_id == cid and r.fills]
        if found:
            return found[-1]
        await asyncio.sleep(0.1)
    return None


async def _practice_session() -> None:
    reports: list[ExecutionReport] = []
    services = AdapterServices(
        engine=sqlalchemy.create_engine("sqlite://"), emit=reports.append, clock=time.time,
        logger=logging.getLogger("tests.oanda.live"), secrets={"token": TOKEN},
    )  # fmt: skip
    adapter = OandaBroker("oanda-practice", OandaOptions(account_id=ACCOUNT, stream_instruments=("EUR_USD",)), services)
    await adapter.start()
    try:
        account = await adapter.account()
        assert account.currency and account.balance >= 0
        eur = adapter.instrument("EUR_USD")
        assert eur is not None and eur.price_increment == Decimal("0.00001")
        quote = await adapter.quote("EUR_USD")
        assert 0 < quote.bid <= quote.ask
        stamp = int(time.time())

        far = (quote.bid * Decimal("0.8")).quantize(eur.price_increment, rounding=ROUND_DOWN)
        resting = order(f"live-{stamp}-1", "BUY", "1", "LIMIT", limit=str(far))
        placed = await adapter.submit(resting)
        assert placed.status is S.ACCEPTED and placed.broker_order_id
        found = await adapter.lookup(resting.client_order_id)
        assert found is not None and found.broker_order_id == placed.broker_order_id
        lower = (far * Decimal("0.99")).quantize(eur.price_increment, rounding=ROUND_DOWN)
        changed = await adapter.modify(resting, OrderChanges(limit_price=lower))
        assert changed.status is S.ACCEPTED and changed.broker_order_id != placed.broker_order_id
        assert resting.client_order_id in {r.client_order_id for r in await adapter.open_orders()}
        cancelled = await adapter.cancel(resting)
        assert cancelled.status is S.CANCELED
        after = await adapter.lookup(resting.client_order_id)
        assert after is not None and after.status is S.CANCELED and after.limit_price == lower

        assert await adapter.lookup(f"live-{stamp}-never-sent") is None

        buy = await adapter.submit(order(f"live-{stamp}-2", "BUY", "1"))
        if buy.status is S.REJECTED:  # the market is closed (weekend): nothing more to try
            assert buy.error is not None and buy.error.code == "MARKET_CLOSED"
            return
        assert buy.status is S.FILLED and buy.fills[0].quantity == 1
        assert await _wait_for(reports, f"live-{stamp}-2") is not None  # the transaction stream saw it too
        sell = await adapter.submit(order(f"live-{stamp}-3", "SELL", "1"))
        assert sell.status is S.FILLED
        assert all(p.instrument for p in await adapter.positions())
    finally:
        await adapter.stop()


def test_a_practice_account_round_trip() -> None:
    asyncio.run(_practice_session())
