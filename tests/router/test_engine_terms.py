"""Tests for the pure parts of host.router.engine: check_terms (an order against an instrument and a broker) and run_now."""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.base import BrokerAdapter, Capabilities
from host.router.engine import check_terms, run_now
from host.trading.errors import InvalidPrice, InvalidQuantity, NotSupported, TradingError
from host.trading.model import Instrument, OrderRequest, OrderType, Side, TimeInForce

D = Decimal

EVERYTHING = Capabilities(
    order_types=frozenset(OrderType), time_in_force=frozenset(TimeInForce), fractional_units=True, hedging=False,
    brackets=True, modify=True, instruments=("EUR_USD",), trailing_stops=True,
)
PLAIN = Capabilities(
    order_types=frozenset({OrderType.MARKET, OrderType.LIMIT}), time_in_force=frozenset({TimeInForce.GTC, TimeInForce.IOC}),
    fractional_units=False, hedging=False, brackets=False, modify=False, instruments=("EUR_USD",),
)

EUR_USD = Instrument(symbol="EUR_USD", price_increment=D("0.00001"), quantity_increment=D("1"), min_quantity=D("1"), max_quantity=D("10000000"))
BTC = Instrument(symbol="BTC_USD", price_increment=D("0.5"), quantity_increment=D("0.001"), min_quantity=D("0.01"), kind="crypto")


@dataclass
class Adapter:
    """The two attributes check_terms reads from a broker adapter."""

    name: str
    capabilities: Capabilities


def check(request: OrderRequest, spec: Instrument = EUR_USD, caps: Capabilities = EVERYTHING) -> TradingError | None:
    return check_terms(request, spec, cast(BrokerAdapter, Adapter("paper", caps)))


def order(quantity: str = "1000", **fields: Any) -> OrderRequest:
    fields.setdefault("instrument", "EUR_USD")
    return OrderRequest(side=Side.BUY, quantity=D(quantity), **fields)


def assert_error(result: TradingError | None, kind: type[TradingError], *words: str) -> None:
    assert isinstance(result, kind), result
    for word in words:
        assert word in result.message, (word, result.message)


# -- quantities ---------------------------------------------------------------------------------


def test_a_good_order_passes() -> None:
    assert check(order()) is None
    assert check(order("1")) is None
    assert check(order("10000000")) is None
    assert check(order("0.01", instrument="BTC_USD"), BTC) is None
    assert check(order("123.456", instrument="BTC_USD"), BTC) is None


@pytest.mark.parametrize("quantity", ["0", "-1", "-1000", "-0.001"])
def test_zero_or_negative_quantity(quantity: str) -> None:
    assert_error(check(order(quantity)), InvalidQuantity, "positive", quantity)


@pytest.mark.parametrize(("quantity", "spec"), [("1000.5", EUR_USD), ("0.0105", BTC), ("1.0001", BTC)])
def test_quantity_off_the_lot_size(quantity: str, spec: Instrument) -> None:
    assert_error(check(order(quantity, instrument=spec.symbol), spec), InvalidQuantity, "lot size", str(spec.quantity_increment))


def test_quantity_with_trailing_zeros_is_on_the_lot() -> None:
    assert check(order("1000.000")) is None
    assert check(order("0.010000", instrument="BTC_USD"), BTC) is None


def test_quantity_below_minimum() -> None:
    assert_error(check(order("0.009", instrument="BTC_USD"), BTC), InvalidQuantity, "below", "minimum", "0.01")


def test_quantity_above_maximum() -> None:
    assert_error(check(order("10000001")), InvalidQuantity, "above", "maximum", "10000000")


def test_no_maximum_means_no_limit() -> None:
    assert check(order("99999999.999", instrument="BTC_USD"), BTC) is None


def test_a_lot_size_of_zero_means_any_quantity() -> None:
    spec = EUR_USD.model_copy(update={"quantity_increment": D(0), "min_quantity": D("0.1")})
    assert check(order("0.12345"), spec) is None


@given(st.integers(min_value=1, max_value=10_000_000), st.integers(min_value=0, max_value=999))
def test_lot_rule_for_any_quantity(units: int, thousandths: int) -> None:
    quantity = D(units) + D(thousandths) / 1000
    result = check(order(str(quantity), instrument="BTC_USD"), BTC)
    assert result is None
    result = check(order(str(quantity)), EUR_USD)
    if thousandths:
        assert isinstance(result, InvalidQuantity)
    else:
        assert result is None or (isinstance(result, InvalidQuantity) and units > 10_000_000)


# -- prices ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"type": OrderType.LIMIT, "limit_price": D("1.085001")},
        {"type": OrderType.STOP, "stop_price": D("1.0850001")},
        {"type": OrderType.MARKET, "stop_loss": D("1.000001")},
        {"type": OrderType.MARKET, "take_profit": D("2.123456")},
        {"type": OrderType.MARKET_IF_TOUCHED, "stop_price": D("1.0850001")},
        {"type": OrderType.MARKET, "trailing_stop": D("0.000015")},
    ],
)
def test_price_off_the_tick(fields: dict[str, Any]) -> None:
    name = next(k for k in fields if k != "type")
    assert_error(check(order(**fields)), InvalidPrice, name, "tick size", "0.00001")


@pytest.mark.parametrize(
    "fields",
    [
        {"type": OrderType.LIMIT, "limit_price": D("-1.1")},
        {"type": OrderType.LIMIT, "limit_price": D("0")},
        {"type": OrderType.STOP_LIMIT, "limit_price": D("1.1"), "stop_price": D("-1")},
        {"type": OrderType.MARKET, "stop_loss": D("-0.5")},
        {"type": OrderType.MARKET, "take_profit": D("0")},
        {"type": OrderType.MARKET_IF_TOUCHED, "stop_price": D("-1.1")},
    ],
)
def test_negative_or_zero_price(fields: dict[str, Any]) -> None:
    assert_error(check(order(**fields)), InvalidPrice, "must be positive")


def test_prices_on_the_tick_pass() -> None:
    assert check(order(type=OrderType.STOP_LIMIT, limit_price=D("1.08500"), stop_price=D("1.0851"), stop_loss=D("1.07"), take_profit=D("1.1"))) is None
    assert check(order("1", instrument="BTC_USD", type=OrderType.LIMIT, limit_price=D("65000.5")), BTC) is None
    assert_error(check(order("1", instrument="BTC_USD", type=OrderType.LIMIT, limit_price=D("65000.25")), BTC), InvalidPrice)


def test_the_quantity_is_checked_before_the_prices() -> None:
    assert isinstance(check(order("-1", type=OrderType.LIMIT, limit_price=D("-1"))), InvalidQuantity)


# -- capabilities -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [OrderType.STOP, OrderType.STOP_LIMIT])
def test_unsupported_order_type(kind: OrderType) -> None:
    fields: dict[str, Any] = {"type": kind, "stop_price": D("1.1")}
    if kind == OrderType.STOP_LIMIT:
        fields["limit_price"] = D("1.1")
    assert_error(check(order(**fields), caps=PLAIN), NotSupported, "paper", str(kind))


@pytest.mark.parametrize("tif", [TimeInForce.DAY, TimeInForce.FOK])
def test_unsupported_time_in_force(tif: TimeInForce) -> None:
    assert_error(check(order(time_in_force=tif), caps=PLAIN), NotSupported, "time in force", str(tif))


@pytest.mark.parametrize("bracket", [{"stop_loss": D("1.05")}, {"take_profit": D("1.2")}])
def test_brackets_unsupported(bracket: dict[str, Any]) -> None:
    assert_error(check(order(**bracket), caps=PLAIN), NotSupported, "stop_loss/take_profit")
    assert check(order(**bracket), caps=EVERYTHING) is None


def test_trailing_stops_need_the_capability() -> None:
    trailing = order(trailing_stop=D("0.005"))
    assert_error(check(trailing, caps=PLAIN), NotSupported, "broker paper does not support trailing stops")
    assert check(trailing, caps=EVERYTHING) is None
    assert Capabilities(**{**PLAIN.__dict__, "trailing_stops": False}).to_dict()["trailing_stops"] is False
    assert EVERYTHING.to_dict()["trailing_stops"] is True


def test_a_non_positive_trailing_stop_built_without_validation_is_refused() -> None:
    request = order().model_copy(update={"trailing_stop": D("-0.005")})
    assert_error(check(request), InvalidPrice, "trailing_stop", "must be positive")


def test_market_if_touched_needs_the_order_type() -> None:
    mit = order(type=OrderType.MARKET_IF_TOUCHED, stop_price=D("1.08"))
    assert check(mit, caps=EVERYTHING) is None
    no_mit = Capabilities(**{**EVERYTHING.__dict__, "order_types": frozenset(OrderType) - {OrderType.MARKET_IF_TOUCHED}})  # as the paper broker
    assert_error(check(mit, caps=no_mit), NotSupported, "paper does not support MARKET_IF_TOUCHED orders")


def test_supported_terms_on_a_plain_broker() -> None:
    assert check(order(type=OrderType.LIMIT, limit_price=D("1.1"), time_in_force=TimeInForce.IOC), caps=PLAIN) is None


def test_invalid_terms_are_reported_before_unsupported_ones() -> None:
    assert isinstance(check(order("0.5", time_in_force=TimeInForce.DAY), caps=PLAIN), InvalidQuantity)


def test_an_order_request_refuses_amounts_too_large_for_the_lot_arithmetic() -> None:
    with pytest.raises(ValueError):
        order("1" + "0" * 27)
    with pytest.raises(ValueError):
        order(type=OrderType.LIMIT, limit_price=D("123456789012345678901234.5"))


def test_a_huge_quantity_is_refused_not_raised() -> None:
    """Past OrderRequest's bounds (built without validation): Decimal % would overflow 28 digits."""
    request = OrderRequest.model_construct(instrument="BTC_USD", side=Side.BUY, quantity=D("1" + "0" * 27), type=OrderType.MARKET,
                                           limit_price=None, stop_price=None, time_in_force=TimeInForce.GTC, stop_loss=None,
                                           take_profit=None, broker=None, tag=None)
    assert_error(check(request, BTC.model_copy(update={"max_quantity": D("1000")})), InvalidQuantity)


def test_a_price_overflowing_a_tiny_tick_is_refused_not_raised() -> None:
    spec = EUR_USD.model_copy(update={"price_increment": D("1e-20")})
    result = check(order(type=OrderType.LIMIT, limit_price=D("123456789.5")), spec)
    assert result is None or isinstance(result, InvalidPrice)


def test_the_largest_allowed_amounts_are_checked_exactly() -> None:
    spec = BTC.model_copy(update={"quantity_increment": D("1e-12"), "price_increment": D("1e-12")})
    big = "999999999999999.999999999999"
    assert check(order(big, instrument="BTC_USD", type=OrderType.LIMIT, limit_price=D(big)), spec) is None


# -- run_now ------------------------------------------------------------------------------------------


def test_run_now_returns_the_value_of_a_coroutine_that_does_not_suspend() -> None:
    async def answer() -> dict[str, int]:
        return {"x": 1}

    assert run_now(answer()) == {"x": 1}


def test_run_now_propagates_an_exception() -> None:
    async def boom() -> None:
        raise ValueError("inner")

    with pytest.raises(ValueError, match="inner"):
        run_now(boom())


def test_run_now_refuses_a_coroutine_that_suspends_and_closes_it() -> None:
    state: list[str] = []

    async def suspends() -> int:
        state.append("started")
        try:
            await asyncio.sleep(0)
            state.append("resumed")
            return 1
        finally:
            state.append("closed")

    coroutine = suspends()
    with pytest.raises(RuntimeError, match="suspended"):
        run_now(coroutine)
    assert state == ["started", "closed"]
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED  # closed, not left pending
    with pytest.raises(RuntimeError):
        coroutine.send(None)


def test_run_now_awaiting_a_finished_inner_coroutine_is_fine() -> None:
    async def inner() -> int:
        return 2

    async def outer() -> int:
        return await inner() + 1

    assert run_now(outer()) == 3
