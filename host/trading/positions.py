"""Net positions with average cost: the one piece of bookkeeping the router and the paper broker share (pure)."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["apply_fill", "unrealised_pnl"]

ZERO = Decimal(0)


def apply_fill(quantity: Decimal, average_price: Decimal, signed_fill: Decimal, price: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """The position after a fill: ``(quantity, average price, realised P&L of this fill)``.

    ``quantity`` is signed (short < 0); ``signed_fill`` is positive for a buy.
    Adding to a position moves the average price; reducing it realises P&L
    against the average; a fill through zero closes the old side and opens the
    rest at the fill price.
    """
    if quantity == ZERO or (quantity > ZERO) == (signed_fill > ZERO):
        new_quantity = quantity + signed_fill
        average = (average_price * abs(quantity) + price * abs(signed_fill)) / abs(new_quantity)
        return new_quantity, average, ZERO
    closed = min(abs(quantity), abs(signed_fill))
    direction = Decimal(1) if quantity > ZERO else Decimal(-1)
    realised = (price - average_price) * closed * direction
    new_quantity = quantity + signed_fill
    if new_quantity == ZERO:
        return ZERO, ZERO, realised
    if (new_quantity > ZERO) == (quantity > ZERO):
        return new_quantity, average_price, realised
    return new_quantity, price, realised


def unrealised_pnl(quantity: Decimal, average_price: Decimal, mark: Decimal) -> Decimal:
    """P&L of an open position marked at ``mark``."""
    return (mark - average_price) * quantity
