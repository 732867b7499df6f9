"""Against the real Coinbase Advanced Trade API; skipped unless TRADEHOST_TEST_COINBASE_KEY and _SECRET are set.

Coinbase has no trading sandbox, so this is the live account: by default only reads
(products, quote, balances, open orders). With TRADEHOST_TEST_COINBASE_ORDERS=1 as
well, a limit buy at half the market price is placed, found by client order id and
cancelled; it cannot fill at that price.
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
from brokers.coinbase.adapter import CoinbaseBroker
from brokers.coinbase.options import CoinbaseOptions
from host.trading.states import OrderStatus

from .conftest import order, run

KEY = os.environ.get("TRADEHOST_TEST_COINBASE_KEY")
SECRET = os.environ.get("TRADEHOST_TEST_COINBASE_SECRET")
ORDERS = os.environ.get("TRADEHOST_TEST_COINBASE_ORDERS") == "1"
pytestmark = pytest.mark.skipif(not (KEY and SECRET), reason="TRADEHOST_TEST_COINBASE_KEY / _SECRET not set")


def test_reads_and_optionally_a_far_limit_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
        services = AdapterServices(engine=engine, emit=lambda r: None, clock=time.time, logger=logging.getLogger("test.coinbase.live"),
                                   secrets={"api_key": KEY or "", "api_secret": SECRET or ""})  # fmt: skip
        broker = CoinbaseBroker("cb-live", CoinbaseOptions(environment="live", allow_live=True), services)
        await broker.start()
        try:
            spec = broker.instrument("BTC/USD")
            assert spec is not None
            quote = await broker.quote("BTC/USD")
            assert quote.bid < quote.ask
            assert (await broker.account()).currency == "USD"
            await broker.open_orders()
            if not ORDERS:
                return
            price = (quote.bid / 2).quantize(spec.price_increment, rounding=ROUND_DOWN)
            quantity = max(spec.min_quantity, ((spec.min_notional or Decimal(1)) * 2 / price).quantize(spec.quantity_increment, rounding=ROUND_UP))
            cid = f"live-{uuid.uuid4().hex[:12]}"
            sent = order(cid, qty=str(quantity), limit=str(price))
            placed = await broker.submit(sent)
            assert placed.status in (OrderStatus.ACCEPTED, OrderStatus.SUBMITTED)
            found = await broker.lookup(cid, sent)  # as the router does: its record of the order
            assert found is not None and found.broker_order_id == placed.broker_order_id
            cancelled = await broker.cancel(order(cid, qty=str(quantity), limit=str(price), broker_order_id=placed.broker_order_id))
            assert cancelled.status in (OrderStatus.CANCELED, OrderStatus.PENDING_CANCEL)
        finally:
            await broker.stop()
            engine.dispose()

    run(scenario())
