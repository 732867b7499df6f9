"""The paper account's cash (pure, all Decimal): starting balance, realised P&L, commissions and equity.

The positions themselves (netting, cost, realised and unrealised P&L) are
kept by :mod:`host.trading.positions`, the bookkeeping the router's strategy
positions use too; this module adds up what their fills realise.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

__all__ = ["Balance", "book", "cash", "equity"]


class Balance(NamedTuple):
    """The account's cash components, in the account currency."""

    starting: Decimal
    realised: Decimal
    commission: Decimal


def book(balance: Balance, realised: Decimal, commission: Decimal) -> Balance:
    """Add one fill's realised P&L and commission."""
    return Balance(balance.starting, balance.realised + realised, balance.commission + commission)


def cash(balance: Balance) -> Decimal:
    """Starting balance + realised P&L − commissions."""
    return balance.starting + balance.realised - balance.commission


def equity(balance: Balance, unrealised_total: Decimal) -> Decimal:
    """Cash plus the unrealised P&L of every open position."""
    return cash(balance) + unrealised_total
