"""The paper account's cash: balance, realised P&L, commissions and equity (its positions are host.trading.positions, tested there)."""

from __future__ import annotations

from decimal import Decimal

from brokers.paper.ledger import Balance, book, cash, equity
from host.trading.positions import FLAT, apply_fill, unrealised

D = Decimal


def test_cash_and_equity() -> None:
    balance = book(Balance(D(1000), D(0), D(0)), D(50), D(2))
    assert cash(balance) == D(1048)
    assert equity(balance, D(-8)) == D(1040)


def test_booking_accumulates_realised_and_commission() -> None:
    balance = Balance(D(500), D(0), D(0))
    for realised, commission in (("10", "0.5"), ("-4.25", "0.25"), ("0", "1")):
        balance = book(balance, D(realised), D(commission))
    assert balance == Balance(D(500), D("5.75"), D("1.75"))
    assert cash(balance) == D(504)


def test_equity_of_a_round_trip_is_cash_plus_open_pnl() -> None:
    """Booking what the fills realise, equity at any mark is the start plus the cash P&L less commissions."""
    balance, holding = Balance(D(1000), D(0), D(0)), FLAT
    cash_flow = D(0)
    for quantity, price in (("6", "1"), ("7", "2"), ("-3", "1.5"), ("1", "1")):
        holding, gain = apply_fill(holding, D(quantity), D(price))
        balance = book(balance, gain, D("0.1"))
        cash_flow -= D(quantity) * D(price)
    mark = D("1.75")
    assert equity(balance, unrealised(holding, mark)) == D(1000) + cash_flow + holding.quantity * mark - D("0.4")
