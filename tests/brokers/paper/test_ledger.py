"""The paper account's bookkeeping: netting, average cost, realised and unrealised P&L, cash and equity."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from brokers.paper.ledger import FLAT, Balance, Holding, apply_fill, average_price, book, cash, equity, exposure, is_increase, unrealised

D = Decimal


def fills(*items: tuple[str, str]) -> tuple[Holding, Decimal]:
    holding, total = FLAT, D(0)
    for quantity, price in items:
        holding, gain = apply_fill(holding, D(quantity), D(price))
        total += gain
    return holding, total


def test_opening_and_adding_average_the_cost() -> None:
    holding, gain = fills(("10", "100"), ("30", "120"))
    assert holding.quantity == D(40)
    assert average_price(holding) == D(115)
    assert gain == 0


def test_partial_reduction_realises_against_the_average() -> None:
    holding, gain = fills(("10", "100"), ("30", "120"), ("-20", "130"))
    assert gain == D(300)  # 20 × (130 − 115)
    assert holding.quantity == D(20)
    assert average_price(holding) == D(115)
    assert holding.realised == D(300)


def test_short_position_profits_when_the_price_falls() -> None:
    holding, gain = fills(("-5", "50"), ("5", "40"))
    assert gain == D(50)
    assert holding == Holding(D(0), D(0), D(50))


def test_flip_closes_then_opens_the_rest_at_the_fill_price() -> None:
    holding, gain = fills(("10", "100"), ("-15", "110"))
    assert gain == D(100)
    assert holding.quantity == D(-5)
    assert average_price(holding) == D(110)


def test_unrealised_and_exposure_from_a_mark() -> None:
    long, _ = fills(("10", "100"))
    short, _ = fills(("-10", "100"))
    assert unrealised(long, D(103)) == D(30)
    assert unrealised(short, D(103)) == D(-30)
    assert exposure(short, D(103)) == D(1030)
    assert unrealised(FLAT, D(5)) == 0
    assert average_price(FLAT) == 0


def test_is_increase() -> None:
    assert is_increase(D(0), D(1))
    assert is_increase(D(5), D(1))
    assert is_increase(D(-5), D(-1))
    assert not is_increase(D(5), D(-5))
    assert not is_increase(D(5), D(-8))  # flips to a smaller short
    assert is_increase(D(5), D(-11))  # flips to a bigger short


def test_cash_and_equity() -> None:
    balance = book(Balance(D(1000), D(0), D(0)), D(50), D(2))
    assert cash(balance) == D(1048)
    assert equity(balance, D(-8)) == D(1040)


trade = st.tuples(
    st.integers(min_value=-50, max_value=50).filter(bool).map(lambda q: D(q) / 4),
    st.integers(min_value=1, max_value=10_000).map(lambda p: D(p) / 100),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(trade, min_size=1, max_size=30), st.integers(min_value=1, max_value=10_000).map(lambda p: D(p) / 100))
def test_realised_plus_unrealised_equals_cash_pnl(trades: list[tuple[Decimal, Decimal]], mark: Decimal) -> None:
    holding, realised, cash_flow = FLAT, D(0), D(0)
    for quantity, price in trades:
        holding, gain = apply_fill(holding, quantity, price)
        realised += gain
        cash_flow -= quantity * price
        # At any moment: what was realised plus what is open, marked, equals the cash P&L of closing now.
        assert realised + unrealised(holding, mark) == cash_flow + holding.quantity * mark
        assert holding.realised == realised
    closing = -holding.quantity
    if closing:
        holding, gain = apply_fill(holding, closing, mark)
        realised += gain
        cash_flow -= closing * mark
    # A whole round trip: realised P&L is exactly the cash P&L, and nothing is left open.
    assert holding.quantity == 0 and holding.cost == 0
    assert realised == cash_flow
