"""The paper broker's execution maths: triggers, matching, slippage, commission, expiry."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from brokers.paper.execution import (
    commission,
    floor_to,
    limit_marketable,
    match,
    next_utc_midnight,
    round_to_tick,
    slipped_price,
    slippage,
    stop_triggered,
    touch_triggered,
    trail,
    triggers,
)
from brokers.paper.options import CommissionOptions, FixedSlippage, ImpactSlippage, NoSlippage, PercentSlippage
from host.trading.model import OrderType

D = Decimal
BID, ASK = D("1.10000"), D("1.10010")
LOT = D(1)
BIG = D(1_000_000)


def test_stop_triggers_on_the_touch_that_crosses_it() -> None:
    assert stop_triggered(+1, D("1.10010"), BID, ASK)  # BUY stop: ask >= stop
    assert not stop_triggered(+1, D("1.10011"), BID, ASK)
    assert stop_triggered(-1, D("1.10000"), BID, ASK)  # SELL stop: bid <= stop
    assert not stop_triggered(-1, D("1.09999"), BID, ASK)


def test_market_if_touched_triggers_on_the_favourable_side() -> None:
    assert touch_triggered(+1, D("1.10010"), BID, ASK)  # BUY MIT: ask <= trigger
    assert touch_triggered(+1, D("1.10020"), BID, ASK)
    assert not touch_triggered(+1, D("1.10009"), BID, ASK)
    assert touch_triggered(-1, D("1.10000"), BID, ASK)  # SELL MIT: bid >= trigger
    assert touch_triggered(-1, D("1.09990"), BID, ASK)
    assert not touch_triggered(-1, D("1.10001"), BID, ASK)
    # The opposite of a stop at the same trigger.
    assert triggers(OrderType.MARKET_IF_TOUCHED, +1, D("1.10020"), BID, ASK) and not triggers(OrderType.STOP, +1, D("1.10020"), BID, ASK)
    assert triggers(OrderType.STOP, -1, D("1.10020"), BID, ASK) and not triggers(OrderType.MARKET_IF_TOUCHED, -1, D("1.10020"), BID, ASK)


def test_market_if_touched_waits_on_the_wrong_side_then_takes_like_a_market_order() -> None:
    waiting = match(OrderType.MARKET_IF_TOUCHED, +1, D(5), None, D("1.10000"), False, BID, ASK, BIG, LOT, False)
    assert waiting == (False, 0, 0, False)  # ask 1.10010 is above the buy trigger
    buy = match(OrderType.MARKET_IF_TOUCHED, +1, D(5), None, D("1.10010"), False, BID, ASK, BIG, LOT, False)
    assert buy == (True, D(5), ASK, True)  # taker: slippage applies
    still = match(OrderType.MARKET_IF_TOUCHED, -1, D(5), None, D("1.10005"), False, BID, ASK, BIG, LOT, False)
    assert still.triggered is False and still.quantity == 0  # bid 1.10000 below the sell trigger
    sell = match(OrderType.MARKET_IF_TOUCHED, -1, D(5), None, D("1.09990"), False, BID, ASK, BIG, LOT, False)
    assert sell == (True, D(5), BID, True)
    # Once triggered it fills whatever the price does next, limited by the size like a market order.
    later = match(OrderType.MARKET_IF_TOUCHED, +1, D(10), None, D("1.10010"), True, D("1.20000"), D("1.20010"), D(4), LOT, False)
    assert later == (True, D(4), D("1.20010"), True)
    assert match(OrderType.MARKET_IF_TOUCHED, +1, D(10), None, D("1.10010"), False, BID, ASK, D(4), LOT, True) == (True, 0, ASK, True)


def test_trailing_stop_follows_the_market_and_never_loosens() -> None:
    gap = D("0.00050")
    # A SELL stop protects a long: it follows the bid up, not down.
    assert trail(-1, D("1.09950"), gap, D("1.10100"), D("1.10110")) == D("1.10050")
    assert trail(-1, D("1.10050"), gap, D("1.10000"), D("1.10010")) == D("1.10050")
    # A BUY stop protects a short: it follows the ask down, not up.
    assert trail(+1, D("1.10060"), gap, D("1.09900"), D("1.09910")) == D("1.09960")
    assert trail(+1, D("1.09960"), gap, D("1.10100"), D("1.10110")) == D("1.09960")


def test_limit_is_marketable_against_the_opposite_touch() -> None:
    assert limit_marketable(+1, D("1.10010"), BID, ASK)
    assert not limit_marketable(+1, D("1.10009"), BID, ASK)
    assert limit_marketable(-1, D("1.10000"), BID, ASK)
    assert not limit_marketable(-1, D("1.10001"), BID, ASK)


def test_market_buys_at_the_ask_and_sells_at_the_bid() -> None:
    buy = match(OrderType.MARKET, +1, D(5), None, None, True, BID, ASK, BIG, LOT, False)
    sell = match(OrderType.MARKET, -1, D(5), None, None, True, BID, ASK, BIG, LOT, False)
    assert (buy.quantity, buy.price, buy.taker) == (D(5), ASK, True)
    assert (sell.quantity, sell.price, sell.taker) == (D(5), BID, True)


def test_marketable_limit_fills_at_the_touch_which_is_better_than_the_limit() -> None:
    m = match(OrderType.LIMIT, +1, D(5), D("1.20000"), None, True, BID, ASK, BIG, LOT, False)
    assert (m.quantity, m.price, m.taker) == (D(5), ASK, False)
    m = match(OrderType.LIMIT, -1, D(5), D("1.00000"), None, True, BID, ASK, BIG, LOT, False)
    assert (m.quantity, m.price) == (D(5), BID)


def test_non_marketable_limit_does_not_fill() -> None:
    m = match(OrderType.LIMIT, +1, D(5), D("1.09000"), None, True, BID, ASK, BIG, LOT, False)
    assert m.quantity == 0 and m.triggered


def test_stop_waits_then_acts_as_market() -> None:
    waiting = match(OrderType.STOP, +1, D(5), None, D("1.20000"), False, BID, ASK, BIG, LOT, False)
    assert (waiting.triggered, waiting.quantity) == (False, 0)
    fired = match(OrderType.STOP, +1, D(5), None, D("1.10005"), False, BID, ASK, BIG, LOT, False)
    assert (fired.triggered, fired.quantity, fired.price, fired.taker) == (True, D(5), ASK, True)
    sell = match(OrderType.STOP, -1, D(5), None, D("1.10005"), False, BID, ASK, BIG, LOT, False)
    assert (sell.triggered, sell.quantity, sell.price) == (True, D(5), BID)


def test_stop_limit_triggers_then_rests_as_a_limit() -> None:
    # Triggered (ask 1.10010 >= stop 1.10005) but the limit 1.10008 is below the ask: no fill yet.
    m = match(OrderType.STOP_LIMIT, +1, D(5), D("1.10008"), D("1.10005"), False, BID, ASK, BIG, LOT, False)
    assert (m.triggered, m.quantity) == (True, 0)
    # Once triggered it is a limit, even if the price falls back below the stop.
    m = match(OrderType.STOP_LIMIT, +1, D(5), D("1.10008"), D("1.10005"), True, D("1.09990"), D("1.10000"), BIG, LOT, False)
    assert (m.quantity, m.price, m.taker) == (D(5), D("1.10000"), False)


def test_fill_is_limited_by_available_size_rounded_to_the_lot() -> None:
    m = match(OrderType.MARKET, +1, D(10), None, None, True, BID, ASK, D("3.7"), LOT, False)
    assert m.quantity == D(3)
    m = match(OrderType.MARKET, +1, D(10), None, None, True, BID, ASK, D("3.7"), D("0.1"), False)
    assert m.quantity == D("3.7")
    m = match(OrderType.MARKET, +1, D(10), None, None, True, BID, ASK, D(0), LOT, False)
    assert m.quantity == 0


def test_all_or_none_fills_everything_or_nothing() -> None:
    assert match(OrderType.MARKET, +1, D(10), None, None, True, BID, ASK, D(9), LOT, True).quantity == 0
    assert match(OrderType.MARKET, +1, D(10), None, None, True, BID, ASK, D(10), LOT, True).quantity == D(10)


def test_slippage_models() -> None:
    touch = D("100.00")
    assert slippage(NoSlippage(), touch, D(10), BIG) == 0
    assert slippage(FixedSlippage(model="fixed", value=D("0.05")), touch, D(10), BIG) == D("0.05")
    assert slippage(PercentSlippage(model="percent", value=D("0.1")), touch, D(10), BIG) == D("0.1")
    impact = ImpactSlippage(model="impact", value=D("0.01"))
    assert slippage(impact, touch, D(100), D(1000)) == D("0.1")  # 0.01 × 100/1000 × 100
    assert slippage(impact, touch, D(200), D(1000)) == D("0.2")  # twice the size, twice the impact
    root = ImpactSlippage(model="impact", value=D("0.01"), exponent=D("0.5"))
    assert slippage(root, touch, D(250), D(1000)) == D("0.5")  # 0.01 × sqrt(0.25) × 100


def test_slipped_price_moves_against_the_taker_to_the_nearest_tick() -> None:
    tick = D("0.01")
    assert slipped_price(+1, D("100.00"), D("0.014"), tick) == D("100.01")
    assert slipped_price(+1, D("100.00"), D("0.015"), tick) == D("100.02")
    assert slipped_price(-1, D("100.00"), D("0.016"), tick) == D("99.98")
    assert slipped_price(-1, D("0.02"), D("5"), tick) == tick  # never below one tick
    assert slipped_price(+1, D("100.00"), D(0), tick) == D("100.00")


def test_commission_per_unit_percent_and_minimum() -> None:
    assert commission(CommissionOptions(per_unit=D("0.005")), D(100), D(15_000)) == D("0.5")
    assert commission(CommissionOptions(percent=D("0.1")), D(100), D(15_000)) == D("15")
    both = CommissionOptions(per_unit=D("0.01"), percent=D("0.01"), minimum=D("1"))
    assert commission(both, D(10), D(1_000)) == D("1")  # 0.1 + 0.1 is below the minimum
    assert commission(both, D(1000), D(100_000)) == D("20")  # 10 + 10
    assert commission(CommissionOptions(), D(10), D(1_000)) == 0


def test_next_utc_midnight() -> None:
    t = datetime(2024, 3, 5, 13, 30, tzinfo=UTC).timestamp()
    assert next_utc_midnight(t) == datetime(2024, 3, 6, tzinfo=UTC).timestamp()
    midnight = datetime(2024, 3, 6, tzinfo=UTC).timestamp()
    assert next_utc_midnight(midnight) == datetime(2024, 3, 7, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("value", "step", "down", "nearest"), [("3.7", "1", "3", "4"), ("1.234567", "0.00001", "1.23456", "1.23457"), ("10.26", "0.25", "10.25", "10.25")])
def test_rounding_helpers(value: str, step: str, down: str, nearest: str) -> None:
    assert floor_to(D(value), D(step)) == D(down)
    assert round_to_tick(D(value), D(step)) == D(nearest)
