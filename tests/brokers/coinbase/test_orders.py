"""Our orders as Coinbase request bodies, edits, and Coinbase statuses as ours (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from brokers.coinbase.orders import STATUSES, changes_to_edit, day_end, order_to_body, status_of, supports
from host.trading.model import OrderChanges, OrderType, TimeInForce
from host.trading.states import OrderStatus

from .conftest import order

D = Decimal
S = OrderStatus
T = TimeInForce
NOW = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "tif", "limit", "stop", "side", "configuration"),
    [("MARKET", "GTC", None, None, "BUY", {"market_market_ioc": {"base_size": "0.01"}}),
     ("MARKET", "IOC", None, None, "SELL", {"market_market_ioc": {"base_size": "0.01"}}),
     ("LIMIT", "GTC", "30000.10", None, "BUY", {"limit_limit_gtc": {"base_size": "0.01", "limit_price": "30000.1", "post_only": False}}),
     ("LIMIT", "IOC", "30000", None, "BUY", {"sor_limit_ioc": {"base_size": "0.01", "limit_price": "30000"}}),
     ("LIMIT", "FOK", "30000", None, "BUY", {"limit_limit_fok": {"base_size": "0.01", "limit_price": "30000"}}),
     ("LIMIT", "DAY", "30000", None, "BUY",
      {"limit_limit_gtd": {"base_size": "0.01", "limit_price": "30000", "end_time": "2026-11-23T00:00:00Z", "post_only": False}}),
     ("STOP_LIMIT", "GTC", "31010", "31000", "BUY", {"stop_limit_stop_limit_gtc": {
         "base_size": "0.01", "limit_price": "31010", "stop_price": "31000", "stop_direction": "STOP_DIRECTION_STOP_UP"}}),
     ("STOP_LIMIT", "DAY", "28990", "29000", "SELL", {"stop_limit_stop_limit_gtd": {
         "base_size": "0.01", "limit_price": "28990", "stop_price": "29000", "stop_direction": "STOP_DIRECTION_STOP_DOWN",
         "end_time": "2026-11-23T00:00:00Z"}})],
)  # fmt: skip
def test_bodies(kind: str, tif: str, limit: str | None, stop: str | None, side: str, configuration: dict[str, Any]) -> None:
    o = order("sma-20261122-000001", side=side, kind=kind, limit=limit, stop=stop, tif=tif)
    assert order_to_body(o, "BTC-USD", "sma-20261122-000001", NOW) == {
        "client_order_id": "sma-20261122-000001", "product_id": "BTC-USD", "side": side, "order_configuration": configuration,
    }  # fmt: skip


def test_supported_combinations() -> None:
    assert supports(OrderType.MARKET, T.IOC) and not supports(OrderType.MARKET, T.FOK) and not supports(OrderType.MARKET, T.DAY)
    assert all(supports(OrderType.LIMIT, t) for t in T)
    assert supports(OrderType.STOP_LIMIT, T.DAY) and not supports(OrderType.STOP_LIMIT, T.IOC)
    assert not any(supports(OrderType.STOP, t) for t in T)  # Coinbase has no stop-market order


def test_day_ends_at_the_next_utc_midnight() -> None:
    assert day_end(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == "2027-01-01T00:00:00Z"


def test_an_edit_sends_the_new_total_size_and_price() -> None:
    o = order("c", qty="0.5", limit="29000")
    assert changes_to_edit("id-1", o, OrderChanges(limit_price=D("29500.50"))) == {"order_id": "id-1", "size": "0.5", "price": "29500.5"}
    assert changes_to_edit("id-1", o, OrderChanges(quantity=D("0.7"))) == {"order_id": "id-1", "size": "0.7", "price": "29000"}


@pytest.mark.parametrize(("word", "status"), sorted(STATUSES.items()))
def test_every_status(word: str, status: OrderStatus) -> None:
    assert status_of({"status": word, "time_in_force": "GOOD_UNTIL_CANCELLED"}) == (status, word)


def test_an_expired_ioc_or_fok_order_is_a_cancel() -> None:
    assert status_of({"status": "EXPIRED", "time_in_force": "IMMEDIATE_OR_CANCEL"})[0] is S.CANCELED
    assert status_of({"status": "EXPIRED", "time_in_force": "FILL_OR_KILL"})[0] is S.CANCELED
    assert status_of({"status": "EXPIRED", "time_in_force": "GOOD_UNTIL_DATE_TIME"})[0] is S.EXPIRED
    assert status_of({}) == (S.SUBMITTED, "UNKNOWN_ORDER_STATUS")
