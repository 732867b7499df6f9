"""Net positions at signed cost: the bookkeeping the router's strategy positions and the paper broker share (pure, all Decimal).

A position is kept as its signed quantity and signed cost (Σ quantity × price
of the open units), not as an average price: adding to a position only adds,
so no step divides except a partial reduction, which takes the proportional
share of the cost rounded to 12 decimal places (or the cost's own, if finer)
and leaves the rounding in what remains. Every other step is exact, so
realised plus unrealised P&L always equals the cash P&L, and a round trip's
realised P&L equals its cash P&L to the last digit. The average price is
derived (:func:`average_price`), never stored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

__all__ = ["FLAT", "Holding", "apply_fill", "average_price", "exposure", "is_increase", "unrealised"]

ZERO = Decimal(0)


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
    # operation on the books stays exact within Decimal's 28 digits. A share that is already that
    # coarse is left as it is: the same value, without trailing zeros that would show in the
    # derived average price ("1.10", not "1.100000000000").
    exponent = cost.as_tuple().exponent
    target = exponent if isinstance(exponent, int) and exponent < -12 else -12
    share = cost * closed / size
    share_exponent = share.as_tuple().exponent
    if isinstance(share_exponent, int) and share_exponent >= target:
        return share
    return share.quantize(Decimal(1).scaleb(target))


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
