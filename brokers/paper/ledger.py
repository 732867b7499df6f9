"""The paper account's bookkeeping (pure, all Decimal): netting positions, realised and unrealised P&L, cash and equity.

A position is kept as its signed quantity and signed cost (Σ quantity × price
of the open units), not as an average price: a partial reduction takes the
proportional share of the cost, rounded to 12 decimal places, and leaves the
rounding in what remains. Every other step is exact, so realised plus
unrealised P&L always equals the cash P&L, and a round trip's realised P&L
equals its cash P&L to the last digit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

__all__ = [
    "FLAT",
    "Balance",
    "Holding",
    "apply_fill",
    "average_price",
    "book",
    "cash",
    "equity",
    "exposure",
    "is_increase",
    "unrealised",
]

ZERO = Decimal(0)
_PLACES = Decimal("1e-12")


class Holding(NamedTuple):
    """A net position in one instrument (no hedging), in the instrument's price currency."""

    quantity: Decimal
    """Signed: below zero is short."""
    cost: Decimal
    """Signed Σ quantity × price of the open units."""
    realised: Decimal
    """Realised P&L of all reductions so far."""


FLAT = Holding(ZERO, ZERO, ZERO)


def apply_fill(holding: Holding, quantity: Decimal, price: Decimal) -> tuple[Holding, Decimal]:
    """Add a fill of signed ``quantity`` at ``price``; return the new holding and the P&L it realised.

    Same direction (or flat): the cost grows. Opposite direction: the closed
    part realises ``closed × price`` against its share of the cost; a fill
    bigger than the position flips it, the remainder opening at ``price``.
    """
    position, cost, realised = holding
    if not position or (position > 0) == (quantity > 0):
        return Holding(position + quantity, cost + quantity * price, realised), ZERO
    size = abs(position)
    closed = min(abs(quantity), size)
    removed = cost if closed == size else _share(cost, closed, size)
    # Long: sold ``closed`` for closed × price; short: bought it back for that.
    gain = (closed * price if position > 0 else -closed * price) - removed
    remaining = position + quantity
    if closed == size:
        new_cost = remaining * price  # flat, or flipped with the remainder opened at ``price``
    else:
        new_cost = cost - removed
    return Holding(remaining, new_cost, realised + gain), gain


def _share(cost: Decimal, closed: Decimal, size: Decimal) -> Decimal:
    # Rounded to a fixed exponent (12 places, or the cost's own if finer) so that every other
    # operation on the books stays exact within Decimal's 28 digits.
    exponent = cost.as_tuple().exponent
    places = _PLACES if not isinstance(exponent, int) or exponent >= -12 else Decimal(1).scaleb(exponent)
    return (cost * closed / size).quantize(places)


def average_price(holding: Holding) -> Decimal:
    """Average entry price of the open units; 0 when flat."""
    return holding.cost / holding.quantity if holding.quantity else ZERO


def unrealised(holding: Holding, mark: Decimal) -> Decimal:
    """P&L of the open units if they were closed at ``mark``."""
    return holding.quantity * mark - holding.cost if holding.quantity else ZERO


def exposure(holding: Holding, mark: Decimal) -> Decimal:
    """Gross notional of the open units at ``mark`` (≥ 0)."""
    return abs(holding.quantity) * mark


def is_increase(position: Decimal, quantity: Decimal) -> bool:
    """True if a trade of signed ``quantity`` leaves a bigger absolute position than ``position``."""
    return abs(position + quantity) > abs(position)


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
