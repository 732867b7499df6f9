"""The order state table: every legal transition, written down once (pure).

A transition outside the table is refused by :func:`can_transition`; the
router logs and audits the refusal and keeps the order where it was.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["OPEN_STATES", "TERMINAL_STATES", "TRANSITIONS", "OrderStatus", "can_transition"]


class OrderStatus(StrEnum):
    INITIALIZED = "INITIALIZED"
    """Created and journaled by the router; no broker has seen it."""
    DENIED = "DENIED"
    """Refused locally (validation or a risk rule); never sent."""
    SUBMITTED = "SUBMITTED"
    """Handed to the broker; its answer is not known yet."""
    ACCEPTED = "ACCEPTED"
    """Working at the broker."""
    REJECTED = "REJECTED"
    """Refused by the broker."""
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    PENDING_UPDATE = "PENDING_UPDATE"
    """A modification was sent; the broker has not answered."""
    PENDING_CANCEL = "PENDING_CANCEL"
    """A cancel was sent; the broker has not answered."""
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"


S = OrderStatus

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    # INITIALIZED → ACCEPTED/CANCELED/FILLED...: an order found at the broker during reconciliation.
    S.INITIALIZED: frozenset({S.DENIED, S.SUBMITTED, S.ACCEPTED, S.REJECTED, S.CANCELED, S.PARTIALLY_FILLED, S.FILLED, S.EXPIRED}),
    S.DENIED: frozenset(),
    # SUBMITTED → FILLED/CANCELED/EXPIRED: IOC and FOK orders, and brokers that answer with the final state.
    # SUBMITTED → PENDING_CANCEL: a cancel sent before the broker acknowledged the order.
    S.SUBMITTED: frozenset({S.ACCEPTED, S.REJECTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.PENDING_CANCEL}),
    S.ACCEPTED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.PENDING_UPDATE, S.PENDING_CANCEL, S.CANCELED, S.EXPIRED, S.REJECTED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.PENDING_UPDATE, S.PENDING_CANCEL, S.CANCELED, S.EXPIRED}),
    # A modification answered: back to working (ACCEPTED), refused (back to ACCEPTED), or overtaken by fills and cancels.
    S.PENDING_UPDATE: frozenset({S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.CANCELED, S.EXPIRED, S.REJECTED}),
    # PENDING_CANCEL → ACCEPTED/PARTIALLY_FILLED: the cancel failed; → FILLED: a fill raced the cancel;
    # → REJECTED: the order was cancelled while still SUBMITTED and the broker then refused it.
    S.PENDING_CANCEL: frozenset({S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED}),
    # CANCELED → FILLED: a fill the broker executed before the cancel, reported after it. A late
    # partial fill is applied to a CANCELED order without moving it: the rest stays cancelled.
    S.CANCELED: frozenset({S.FILLED}),
    S.REJECTED: frozenset(),
    S.FILLED: frozenset(),
    S.EXPIRED: frozenset(),
}

TERMINAL_STATES = frozenset({S.DENIED, S.REJECTED, S.FILLED, S.CANCELED, S.EXPIRED})
"""States an order normally ends in (CANCELED may still take a late fill)."""

OPEN_STATES = frozenset(set(OrderStatus) - TERMINAL_STATES - {S.INITIALIZED})
"""States in which the order may be working at the broker."""


def can_transition(current: OrderStatus, new: OrderStatus) -> bool:
    """True if the table allows ``current`` → ``new``."""
    return new in TRANSITIONS[current]
