"""Tests for host.trading.api: what ctx.place_order / buy / sell put on the wire."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from host.trading.api import TradingAPI, order_body
from host.trading.client import RouterClient
from host.trading.model import OrderType
from tests.router.test_records import make_record


class FakeRouter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, op: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.calls.append((op, body))
        return make_record(type=OrderType.MARKET_IF_TOUCHED, limit_price=None, stop_price=Decimal("1.07"), trailing_stop=Decimal("0.005")).to_wire()


class Ctx(TradingAPI):
    def __init__(self, router: FakeRouter) -> None:
        self._router = cast(RouterClient, router)


def test_trailing_stop_and_market_if_touched_travel_as_decimal_strings() -> None:
    router = FakeRouter()
    order = Ctx(router).buy("EUR_USD", 1000, "MARKET_IF_TOUCHED", stop_price=1.07, trailing_stop=Decimal("0.0050"))
    ((op, body),) = router.calls
    assert op == "order.place"
    assert body == {"instrument": "EUR_USD", "side": "BUY", "quantity": "1000", "type": "MARKET_IF_TOUCHED", "stop_price": "1.07", "trailing_stop": "0.0050"}
    assert (order.type, order.stop_price, order.trailing_stop) == (OrderType.MARKET_IF_TOUCHED, Decimal("1.07"), Decimal("0.005"))
    assert "trailing_stop" not in order_body("EUR_USD", "SELL", 1)
    assert order_body("EUR_USD", "SELL", 1, trailing_stop=0.001)["trailing_stop"] == "0.001"
