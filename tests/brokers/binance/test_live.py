"""Against the real Binance spot testnet; skipped unless TRADEHOST_TEST_BINANCE_KEY and _SECRET are set.

A limit buy far below the market is placed, found by client order id, listed as
open and cancelled: nothing fills, and testnet funds are virtual anyway.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from pathlib import Path

import pytest
import sqlalchemy

from brokers.base import AdapterServices
from brokers.binance.adapter import BinanceBroker
from brokers.binance.options import BinanceOptions
from host.trading.states import OrderStatus

from .conftest import order, run

KEY = os.environ.get("TRADEHOST_TEST_BINANCE_KEY")
SECRET = os.environ.get("TRADEHOST_TEST_BINANCE_SECRET")
pytestmark = pytest.mark.skipif(not (KEY and SECRET), reason="TRADEHOST_TEST_BINANCE_KEY / _SECRET not set")


def test_a_far_limit_order_on_the_testnet(tmp_path: Path) -> None:
    async def scenario() -> None:
        engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
        services = AdapterServices(engine=engine, emit=lambda r: None, clock=time.time, logger=logging.getLogger("test.binance.live"),
                                   secrets={"api_key": KEY or "", "api_secret": SECRET or ""})  # fmt: skip
        broker = BinanceBroker("bn-live", BinanceOptions(environment="testnet"), services)
        await broker.start()
        try:
            spec = broker.instrument("BTC/USDT")
            assert spec is not None
            quote = await broker.quote("BTC/USDT")
            price = (quote.bid / 2).quantize(spec.price_increment, rounding=ROUND_DOWN)
            notional = (spec.min_notional or Decimal(5)) * Decimal("1.5")
            quantity = max(spec.min_quantity, (notional / price).quantize(spec.quantity_increment, rounding=ROUND_UP))
            cid = f"live-{uuid.uuid4().hex[:12]}"
            sent = order(cid, qty=str(quantity), limit=str(price))
            placed = await broker.submit(sent)
            assert placed.status is OrderStatus.ACCEPTED
            found = await broker.lookup(cid, sent)  # as the router does: its record of the order
            assert found is not None and found.broker_order_id == placed.broker_order_id
            assert cid in {r.client_order_id for r in await broker.open_orders()}
            cancelled = await broker.cancel(order(cid, qty=str(quantity), limit=str(price)))
            assert cancelled.status is OrderStatus.CANCELED
            assert (await broker.account()).currency == "USDT"
        finally:
            await broker.stop()
            engine.dispose()

    run(scenario())
