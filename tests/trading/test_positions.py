"""Tests for host.trading.positions: net positions with average cost, and their realised and unrealised P&L."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.trading.positions import apply_fill, unrealised_pnl

D = Decimal
ZERO = D(0)


def run(fills: list[tuple[str, str]], quantity: str = "0", average: str = "0") -> tuple[Decimal, Decimal, Decimal]:
    """Apply (signed quantity, price) fills in turn; the final position and the total realised."""
    q, avg, total = D(quantity), D(average), ZERO
    for signed, price in fills:
        q, avg, realised = apply_fill(q, avg, D(signed), D(price))
        total += realised
    return q, avg, total


# -- examples ---------------------------------------------------------------------------------


def test_open_long_and_short() -> None:
    assert apply_fill(ZERO, ZERO, D("10"), D("1.25")) == (D("10"), D("1.25"), ZERO)
    assert apply_fill(ZERO, ZERO, D("-3"), D("99.5")) == (D("-3"), D("99.5"), ZERO)


def test_opening_ignores_a_stale_average() -> None:
    assert apply_fill(ZERO, D("123"), D("2"), D("5")) == (D("2"), D("5"), ZERO)


def test_adding_moves_the_average() -> None:
    assert apply_fill(D("10"), D("1.00"), D("30"), D("1.20")) == (D("40"), D("1.15"), ZERO)
    assert apply_fill(D("-4"), D("100"), D("-1"), D("105")) == (D("-5"), D("101"), ZERO)


def test_reducing_a_long_realises_against_the_average() -> None:
    assert apply_fill(D("10"), D("1.10"), D("-4"), D("1.25")) == (D("6"), D("1.10"), D("0.60"))
    assert apply_fill(D("10"), D("1.10"), D("-4"), D("1.00")) == (D("6"), D("1.10"), D("-0.40"))


def test_reducing_a_short_realises_the_other_way() -> None:
    assert apply_fill(D("-10"), D("50"), D("4"), D("45")) == (D("-6"), D("50"), D("20"))
    assert apply_fill(D("-10"), D("50"), D("4"), D("52")) == (D("-6"), D("50"), D("-8"))


def test_closing_to_zero_resets_the_average() -> None:
    assert apply_fill(D("5"), D("2"), D("-5"), D("3")) == (ZERO, ZERO, D("5"))
    assert apply_fill(D("-5"), D("2"), D("5"), D("3")) == (ZERO, ZERO, D("-5"))


def test_flipping_closes_the_old_side_and_opens_the_rest_at_the_fill_price() -> None:
    assert apply_fill(D("5"), D("2"), D("-8"), D("3")) == (D("-3"), D("3"), D("5"))
    assert apply_fill(D("-5"), D("2"), D("8"), D("1.5")) == (D("3"), D("1.5"), D("2.5"))


def test_a_round_trip() -> None:
    q, avg, realised = run([("10", "1.0"), ("10", "2.0"), ("-5", "2.5"), ("-25", "1.0"), ("10", "0.5")])
    # long 20 @ 1.5; sell 5 @ 2.5 (+5); sell 25 @ 1.0: close 15 (-7.5), short 10 @ 1.0; buy 10 @ 0.5 (+5)
    assert (q, avg, realised) == (ZERO, ZERO, D("2.5"))


def test_unrealised_pnl() -> None:
    assert unrealised_pnl(D("10"), D("1.10"), D("1.15")) == D("0.50")
    assert unrealised_pnl(D("-10"), D("1.10"), D("1.15")) == D("-0.50")
    assert unrealised_pnl(ZERO, ZERO, D("7")) == ZERO


def test_unrealised_becomes_realised_on_close() -> None:
    q, avg, _ = run([("3", "10"), ("-1", "11")])
    mark = D("12.5")
    assert apply_fill(q, avg, -q, mark)[2] == unrealised_pnl(q, avg, mark)


@pytest.mark.xfail(strict=True, reason="apply_fill keeps an average price, so adding divides: after 6@1 and 7@2 the average "
                   "20/13 is rounded to 28 digits, and after 1 more @1 it is 1.499999999999999999999999999, not 21/14; "
                   "closing 14 @2 then realises 7.000000000000000000000000014 instead of the cash P&L 28 - 21 = 7")
def test_realised_equals_cash_pnl_exactly_after_adding_at_several_prices() -> None:
    q, avg, realised = run([("6", "1"), ("7", "2"), ("1", "1")])
    assert avg == D("1.5")
    _, _, closing = apply_fill(q, avg, -q, D("2"))
    assert realised + closing == D("7")


# -- properties -----------------------------------------------------------------------------------

quantities = st.integers(min_value=-50, max_value=50).filter(bool).map(D)
prices = st.integers(min_value=1, max_value=20_000).map(lambda n: D(n) / 100)


def cash(fills: list[tuple[Decimal, Decimal]]) -> Decimal:
    return sum((-q * p for q, p in fills), ZERO)


def close_out(fills: list[tuple[Decimal, Decimal]], mark: Decimal) -> tuple[Decimal, list[tuple[Decimal, Decimal]]]:
    """Apply the fills, then one closing the position at ``mark``: total realised and every fill made."""
    q, avg, total = ZERO, ZERO, ZERO
    for signed, price in fills:
        q, avg, realised = apply_fill(q, avg, signed, price)
        total += realised
    made = list(fills)
    if q:
        made.append((-q, mark))
        q, avg, realised = apply_fill(q, avg, -q, mark)
        total += realised
    assert (q, avg) == (ZERO, ZERO)
    return total, made


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(quantities, prices), max_size=12), prices)
def test_realised_matches_cash_pnl_when_no_fill_adds(fills: list[tuple[Decimal, Decimal]], mark: Decimal) -> None:
    """Only opens, reductions, closes and flips: no average is ever a quotient, so the match is exact."""
    position = ZERO
    kept: list[tuple[Decimal, Decimal]] = []
    for signed, price in fills:
        if position and (signed > 0) == (position > 0):
            signed = -signed  # turn an add into a reduction or a flip
        kept.append((signed, price))
        position += signed
    total, made = close_out(kept, mark)
    assert total == cash(made)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(quantities, prices), max_size=12), prices)
def test_realised_matches_cash_pnl_for_any_fills(fills: list[tuple[Decimal, Decimal]], mark: Decimal) -> None:
    """Adds divide (28 significant digits), so allow for rounding far below any currency unit."""
    total, made = close_out(fills, mark)
    assert abs(total - cash(made)) <= D("1e-20")


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(quantities, prices), min_size=1, max_size=12))
def test_the_position_is_the_sum_of_fills_and_the_average_lies_between_prices(fills: list[tuple[Decimal, Decimal]]) -> None:
    q, avg = ZERO, ZERO
    for signed, price in fills:
        q, avg, _ = apply_fill(q, avg, signed, price)
    assert q == sum((s for s, _ in fills), ZERO)
    if q:
        lowest = min(p for _, p in fills)
        highest = max(p for _, p in fills)
        assert lowest - D("1e-20") <= avg <= highest + D("1e-20")
    else:
        assert avg == ZERO
