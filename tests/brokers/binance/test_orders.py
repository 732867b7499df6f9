"""Our orders as Binance requests; Binance statuses as ours; client ids within Binance's rule (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from brokers.binance.orders import STATUSES, order_to_request, status_of, supports, wire_client_id
from host.trading.model import Order, OrderType, TimeInForce
from host.trading.states import OrderStatus

D = Decimal
S = OrderStatus
T = TimeInForce


def order(kind: str, *, limit: str | None = None, stop: str | None = None, tif: str = "GTC", side: str = "BUY") -> Order:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Order(
        client_order_id="sma-20260101-000001", request_id="r", strategy="sma", run_id=None, broker="bn", broker_order_id=None,
        instrument="BTC/USDT", side=side, type=kind, quantity=D("0.01000"), limit_price=D(limit) if limit else None,
        stop_price=D(stop) if stop else None, time_in_force=tif, stop_loss=None, take_profit=None, tag=None,
        status=S.INITIALIZED, raw_status=None, filled_quantity=D(0), average_price=None, commission=D(0), error=None,
        created_at=now, updated_at=now,
    )  # fmt: skip


BASE = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.01", "newClientOrderId": "w", "newOrderRespType": "FULL"}


@pytest.mark.parametrize(
    ("o", "extra"),
    [(order("MARKET"), {"type": "MARKET"}),
     (order("LIMIT", limit="30000.10", tif="IOC"), {"type": "LIMIT", "price": "30000.1", "timeInForce": "IOC"}),
     (order("STOP", stop="29000"), {"type": "STOP_LOSS", "stopPrice": "29000"}),
     (order("STOP_LIMIT", limit="28990", stop="29000", tif="FOK"),
      {"type": "STOP_LOSS_LIMIT", "price": "28990", "stopPrice": "29000", "timeInForce": "FOK"})],
)  # fmt: skip
def test_requests(o: Order, extra: dict[str, str]) -> None:
    assert order_to_request(o, "BTCUSDT", "w") == BASE | extra


def test_supported_time_in_force_per_type() -> None:
    assert all(supports(k, t) for k in (OrderType.LIMIT, OrderType.STOP_LIMIT) for t in (T.GTC, T.IOC, T.FOK))
    assert supports(OrderType.MARKET, T.GTC) and supports(OrderType.MARKET, T.IOC) and not supports(OrderType.MARKET, T.FOK)
    assert supports(OrderType.STOP, T.GTC) and not supports(OrderType.STOP, T.IOC)
    assert not any(supports(k, T.DAY) for k in OrderType)


def test_client_ids_that_fit_travel_as_they_are_others_as_a_stable_digest() -> None:
    assert wire_client_id("sma_signal-20261122-000042") == "sma_signal-20261122-000042"
    long = "a.strategy.with.dots-20261122-000042"
    assert wire_client_id(long) == wire_client_id(long) and wire_client_id(long).startswith("th-")
    assert len(wire_client_id(long)) == 36 and wire_client_id(long) != wire_client_id(long + "3")


@pytest.mark.parametrize(("word", "status"), sorted(STATUSES.items()))
def test_every_status(word: str, status: OrderStatus) -> None:
    assert status_of({"status": word, "timeInForce": "GTC", "type": "LIMIT"}) == (status, word)


def test_an_expired_ioc_fok_or_market_order_is_a_cancel() -> None:
    assert status_of({"status": "EXPIRED", "timeInForce": "IOC", "type": "LIMIT"})[0] is S.CANCELED
    assert status_of({"status": "EXPIRED", "timeInForce": "FOK", "type": "LIMIT"})[0] is S.CANCELED
    assert status_of({"status": "EXPIRED", "timeInForce": "GTC", "type": "MARKET"})[0] is S.CANCELED
    assert status_of({"status": "EXPIRED", "timeInForce": "GTC", "type": "LIMIT"})[0] is S.EXPIRED
    assert status_of({}) == (S.SUBMITTED, "UNKNOWN")
