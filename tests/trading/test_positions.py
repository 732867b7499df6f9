"""Tests for host.trading.positions: net positions at signed cost, and their realised and unrealised P&L."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from host.trading.positions import FLAT, Holding, apply_fill, average_price, exposure, is_increase, unrealised

D = Decimal
ZERO = D(0)


def run(*fills: tuple[str, str], start: Holding = FLAT) -> tuple[Holding, Decimal]:
    """Apply (signed quantity, price) fills in turn; the final holding and the total realised."""
    holding, total = start, ZERO
    for quantity, price in fills:
        holding, gain = apply_fill(holding, D(quantity), D(price))
        total += gain
    return holding, total


# -- examples ---------------------------------------------------------------------------------


def test_open_long_and_short() -> None:
    assert apply_fill(FLAT, D("10"), D("1.25")) == (Holding(D("10"), D("12.50"), ZERO), ZERO)
    assert apply_fill(FLAT, D("-3"), D("99.5")) == (Holding(D("-3"), D("-298.5"), ZERO), ZERO)
    assert average_price(Holding(D("-3"), D("-298.5"), ZERO)) == D("99.5")


def test_opening_and_adding_average_the_cost() -> None:
    holding, gain = run(("10", "100"), ("30", "120"))
    assert holding == Holding(D(40), D(4600), ZERO)
    assert average_price(holding) == D(115)
    assert gain == 0
    assert average_price(run(("-4", "100"), ("-1", "105"))[0]) == D(101)


def test_reducing_a_long_realises_against_the_average() -> None:
    holding, gain = run(("10", "1.10"), ("-4", "1.25"))
    assert gain == D("0.60")
    assert holding == Holding(D(6), D("6.60"), D("0.60"))
    assert average_price(holding) == D("1.10")
    assert run(("10", "1.10"), ("-4", "1.00"))[1] == D("-0.40")


def test_reducing_a_short_realises_the_other_way() -> None:
    holding, gain = run(("-10", "50"), ("4", "45"))
    assert (holding.quantity, average_price(holding), gain) == (D(-6), D(50), D(20))
    assert run(("-10", "50"), ("4", "52"))[1] == D(-8)
    assert run(("-5", "50"), ("5", "40"))[0] == Holding(ZERO, ZERO, D(50))


def test_closing_to_zero_leaves_no_cost() -> None:
    assert run(("5", "2"), ("-5", "3")) == (Holding(ZERO, ZERO, D(5)), D(5))
    assert run(("-5", "2"), ("5", "3")) == (Holding(ZERO, ZERO, D(-5)), D(-5))
    assert average_price(FLAT) == 0


def test_flipping_closes_the_old_side_and_opens_the_rest_at_the_fill_price() -> None:
    holding, gain = run(("5", "2"), ("-8", "3"))
    assert (holding.quantity, average_price(holding), gain) == (D(-3), D(3), D(5))
    holding, gain = run(("-5", "2"), ("8", "1.5"))
    assert (holding.quantity, average_price(holding), gain) == (D(3), D("1.5"), D("2.5"))


def test_a_round_trip() -> None:
    holding, realised = run(("10", "1.0"), ("10", "2.0"), ("-5", "2.5"), ("-25", "1.0"), ("10", "0.5"))
    # long 20 @ 1.5; sell 5 @ 2.5 (+5); sell 25 @ 1.0: close 15 (-7.5), short 10 @ 1.0; buy 10 @ 0.5 (+5)
    assert (holding, realised) == (Holding(ZERO, ZERO, D("2.5")), D("2.5"))


def test_a_partial_reduction_rounds_its_share_of_the_cost_to_12_places() -> None:
    holding, gain = run(("1", "1"), ("1", "1"), ("1", "0"), ("-1", "1"))
    # the share 2/3 is rounded, the rounding stays in what remains: nothing is lost
    assert (holding.cost, gain) == (D("1.333333333333"), D("0.333333333333"))
    assert gain + unrealised(holding, D(1)) == D(1)


def test_an_exact_share_keeps_the_cost_and_the_average_as_written() -> None:
    holding, _ = run(("6", "1.10"), ("-4", "1.12"))
    assert str(holding.cost) == "2.20" and str(average_price(holding)) == "1.10"
    holding, _ = run(("3", "1"), ("-1", "1"))
    assert str(holding.cost) == "2"


def test_realised_equals_cash_pnl_exactly_after_adding_at_several_prices() -> None:
    # An average price would be 20/13 after 6 @ 1 and 7 @ 2, rounded to 28 digits; the cost stays exact.
    holding, realised = run(("6", "1"), ("7", "2"), ("1", "1"))
    assert average_price(holding) == D("1.5")
    _, closing = apply_fill(holding, -holding.quantity, D("2"))
    assert realised + closing == D("7")


def test_unrealised_and_exposure_from_a_mark() -> None:
    long, _ = run(("10", "1.10"))
    short, _ = run(("-10", "1.10"))
    assert unrealised(long, D("1.15")) == D("0.50")
    assert unrealised(short, D("1.15")) == D("-0.50")
    assert exposure(short, D("1.15")) == D("11.50")
    assert unrealised(FLAT, D(7)) == 0


def test_unrealised_becomes_realised_on_close() -> None:
    holding, _ = run(("3", "10"), ("-1", "11"))
    mark = D("12.5")
    assert apply_fill(holding, -holding.quantity, mark)[1] == unrealised(holding, mark)


def test_is_increase() -> None:
    assert is_increase(D(0), D(1))
    assert is_increase(D(5), D(1))
    assert is_increase(D(-5), D(-1))
    assert not is_increase(D(5), D(-5))
    assert not is_increase(D(5), D(-8))  # flips to a smaller short
    assert is_increase(D(5), D(-11))  # flips to a bigger short


# -- properties -----------------------------------------------------------------------------------

quantities = st.integers(min_value=-50, max_value=50).filter(bool).map(lambda q: D(q) / 4)
prices = st.integers(min_value=1, max_value=10_000).map(lambda p: D(p) / 100)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(quantities, prices), min_size=1, max_size=30), prices)
def test_realised_plus_unrealised_equals_cash_pnl(trades: list[tuple[Decimal, Decimal]], mark: Decimal) -> None:
    holding, realised, cash_flow = FLAT, ZERO, ZERO
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
    # A whole round trip, adds at any prices included: realised P&L is exactly the cash P&L, and nothing is left open.
    assert holding.quantity == 0 and holding.cost == 0
    assert realised == cash_flow


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(quantities, prices), min_size=1, max_size=12))
def test_the_position_is_the_sum_of_fills_and_the_average_lies_between_prices(fills: list[tuple[Decimal, Decimal]]) -> None:
    holding = FLAT
    for quantity, price in fills:
        holding, _ = apply_fill(holding, quantity, price)
    assert holding.quantity == sum((q for q, _ in fills), ZERO)
    if holding.quantity:
        # Each partial reduction leaves up to 0.5e-12 of rounding in the cost.
        tolerance = D("1e-12") * len(fills) / abs(holding.quantity)
        assert min(p for _, p in fills) - tolerance <= average_price(holding) <= max(p for _, p in fills) + tolerance
    else:
        assert holding.cost == 0 and average_price(holding) == 0
