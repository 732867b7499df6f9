"""Binance's filters with Decimal: read from exchangeInfo, and properties that hold for any quantity and price."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from brokers.binance.filters import Band, Notional, SymbolFilters, check_order, filters_from_info
from host.trading.errors import InvalidPrice, InvalidQuantity
from host.trading.model import OrderType

from .fakeserver import fixture

D = Decimal
INFO = {s["symbol"]: s for s in fixture("exchange_info.json")["symbols"]}
BTC = filters_from_info(INFO["BTCUSDT"])
ETH = filters_from_info(INFO["ETHUSDT"])
STEP = D("0.00001")
TICK = D("0.01")

steps = st.integers(min_value=1, max_value=10**9)
off_step = st.integers(min_value=1, max_value=9)


def test_filters_are_read_from_exchange_info() -> None:
    assert BTC.price == Band(D("0.01"), D("1000000"), TICK)
    assert BTC.lot == Band(STEP, D(9000), STEP)
    assert BTC.market_lot == Band(D(0), D(100), D(0))
    assert BTC.notional == Notional(D(5), D(9000000), True, False, 5)
    assert ETH.notional == Notional(D(10), D(0), True, False, 5)  # the legacy MIN_NOTIONAL
    assert filters_from_info({"symbol": "X", "filters": []}) == SymbolFilters("X")


@given(n=steps)
def test_a_quantity_on_the_step_within_bounds_passes(n: int) -> None:
    quantity = STEP * n
    problem = check_order(BTC, OrderType.LIMIT, quantity, D("30000"), None)
    valid = quantity <= D(9000) and D(5) <= quantity * D(30000) <= D(9000000)
    assert (problem is None) == valid


@given(n=steps, extra=off_step)
def test_a_quantity_off_the_step_is_refused_as_lot_size(n: int, extra: int) -> None:
    quantity = STEP * n + STEP * extra / 10
    problem = check_order(BTC, OrderType.LIMIT, quantity, D("30000"), None)
    assert isinstance(problem, InvalidQuantity) and problem.broker_code == "LOT_SIZE"


@given(cents=st.integers(min_value=1, max_value=10**8), extra=off_step)
def test_prices_must_sit_on_the_tick(cents: int, extra: int) -> None:
    on_tick = TICK * cents
    assert not isinstance(check_order(BTC, OrderType.LIMIT, D("1"), on_tick, None), InvalidPrice)
    problem = check_order(BTC, OrderType.LIMIT, D("1"), on_tick + TICK * extra / 10, None)
    assert isinstance(problem, InvalidPrice) and problem.broker_code == "PRICE_FILTER"


@given(cents=st.integers(min_value=1, max_value=10**8), extra=off_step)
def test_stop_prices_too(cents: int, extra: int) -> None:
    problem = check_order(BTC, OrderType.STOP_LIMIT, D("1"), TICK * cents, TICK * cents + TICK * extra / 10)
    assert isinstance(problem, InvalidPrice) and "stop price" in problem.message


@given(n=st.integers(min_value=1, max_value=10**7))
def test_notional_of_a_limit_order_is_price_times_quantity(n: int) -> None:
    quantity = STEP * n
    problem = check_order(BTC, OrderType.LIMIT, quantity, D("100"), None)
    if quantity * 100 < 5:
        assert isinstance(problem, InvalidQuantity) and problem.broker_code == "NOTIONAL"
    else:
        assert problem is None


def test_market_orders_use_the_reference_price_and_the_market_lot() -> None:
    assert check_order(BTC, OrderType.MARKET, D("0.0001"), None, None, D("30000")) is not None  # 3 < 5
    assert check_order(BTC, OrderType.MARKET, D("0.001"), None, None, D("30000")) is None
    assert check_order(BTC, OrderType.MARKET, D("0.0001"), None, None, None) is None  # no reference: Binance decides
    too_many = check_order(BTC, OrderType.MARKET, D("101"), None, None, D("1"))
    assert isinstance(too_many, InvalidQuantity) and too_many.broker_code == "MARKET_LOT_SIZE"
    assert check_order(BTC, OrderType.LIMIT, D("101"), D("1"), None) is None  # LOT_SIZE allows 9000


def test_a_stop_market_order_is_valued_at_its_stop_price() -> None:
    assert check_order(BTC, OrderType.STOP, D("0.0001"), None, D("30000")) is not None
    assert check_order(BTC, OrderType.STOP, D("0.001"), None, D("30000")) is None


def test_notional_bounds_apply_to_market_orders_only_when_the_filter_says_so() -> None:
    relaxed = SymbolFilters("X", notional=Notional(D(5), D(10), min_to_market=False, max_to_market=False))
    assert check_order(relaxed, OrderType.MARKET, D(1), None, None, D(1)) is None
    assert check_order(relaxed, OrderType.MARKET, D(100), None, None, D(1)) is None
    assert check_order(relaxed, OrderType.LIMIT, D(100), D(1), None) is not None
    strict = SymbolFilters("X", notional=Notional(D(5), D(10), min_to_market=True, max_to_market=True))
    assert check_order(strict, OrderType.MARKET, D(100), None, None, D(1)) is not None


def test_zero_switches_a_rule_off() -> None:
    assert check_order(SymbolFilters("X", lot=Band()), OrderType.LIMIT, D("0.123456789"), D("1.23456789"), None) is None
