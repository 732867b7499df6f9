"""The paper broker's execution maths (pure): slippage, commission, triggers and the match of an order against a quote.

Conventions: ``side`` is +1 for BUY and −1 for SELL; a buyer takes the ask,
a seller the bid. Slippage applies to orders that take liquidity at any price
(MARKET, and STOP or MARKET_IF_TOUCHED once triggered); LIMIT and triggered STOP_LIMIT orders fill
at the better of their limit and the touch, without slippage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import NamedTuple

from brokers.base import ExecutionReport
from host.trading.model import ErrorInfo, Fill, OrderRequest, OrderType, Side, TimeInForce
from host.trading.states import OrderStatus

from .options import CommissionOptions, FixedSlippage, ImpactSlippage, NoSlippage, PercentSlippage

__all__ = [
    "Match",
    "PaperOrder",
    "commission",
    "floor_to",
    "limit_marketable",
    "match",
    "next_utc_midnight",
    "order_to_report",
    "order_to_request",
    "round_to_tick",
    "slipped_price",
    "slippage",
    "stop_triggered",
    "touch_triggered",
    "trail",
    "triggers",
]

ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_COMMISSION_EXP = Decimal("1e-8")
_DAY = 86400


def stop_triggered(side: int, stop: Decimal, bid: Decimal, ask: Decimal) -> bool:
    """A BUY stop triggers when the ask reaches the stop, a SELL stop when the bid does."""
    return ask >= stop if side > 0 else bid <= stop


def touch_triggered(side: int, trigger: Decimal, bid: Decimal, ask: Decimal) -> bool:
    """A BUY market-if-touched triggers when the ask falls to the trigger, a SELL when the bid rises to it (the opposite of a stop)."""
    return ask <= trigger if side > 0 else bid >= trigger


def triggers(kind: OrderType, side: int, trigger: Decimal, bid: Decimal, ask: Decimal) -> bool:
    """Whether an order of ``kind`` with trigger price ``trigger`` triggers on this quote."""
    if kind is OrderType.MARKET_IF_TOUCHED:
        return touch_triggered(side, trigger, bid, ask)
    return stop_triggered(side, trigger, bid, ask)


def trail(side: int, stop: Decimal, distance: Decimal, bid: Decimal, ask: Decimal) -> Decimal:
    """The trigger of a trailing stop after one quote: it follows the market by ``distance`` and never loosens.

    ``side`` is the stop's own side: a SELL stop protects a long and trails the
    bid from below (the highest bid − distance), a BUY stop protects a short and
    trails the ask from above (the lowest ask + distance).
    """
    if side < 0:
        return max(stop, bid - distance)
    return min(stop, ask + distance)


def limit_marketable(side: int, limit: Decimal, bid: Decimal, ask: Decimal) -> bool:
    """A BUY limit can fill when the ask is at or below it, a SELL limit when the bid is at or above it."""
    return ask <= limit if side > 0 else bid >= limit


def floor_to(quantity: Decimal, step: Decimal) -> Decimal:
    """``quantity`` rounded down to a multiple of ``step``."""
    return (quantity / step).to_integral_value(rounding=ROUND_FLOOR) * step


def round_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    """``price`` rounded to the nearest multiple of ``tick`` (half up)."""
    return (price / tick).to_integral_value(rounding=ROUND_HALF_UP) * tick


def slippage(
    model: NoSlippage | FixedSlippage | PercentSlippage | ImpactSlippage,
    touch: Decimal,
    quantity: Decimal,
    liquidity: Decimal,
) -> Decimal:
    """How far (in price units, ≥ 0) a taking fill of ``quantity`` lands beyond the touch."""
    if isinstance(model, NoSlippage):
        return ZERO
    if isinstance(model, FixedSlippage):
        return model.value
    if isinstance(model, PercentSlippage):
        return touch * model.value / _HUNDRED
    ratio = quantity / liquidity
    if model.exponent != 1:
        ratio = Decimal(repr(float(ratio) ** float(model.exponent)))
    return model.value * ratio * touch


def slipped_price(side: int, touch: Decimal, amount: Decimal, tick: Decimal) -> Decimal:
    """The touch moved ``amount`` against the taker, rounded to the nearest tick and never below one tick."""
    if not amount:
        return touch
    price = round_to_tick(touch + amount if side > 0 else touch - amount, tick)
    return max(price, tick)


def commission(options: CommissionOptions, quantity: Decimal, notional: Decimal) -> Decimal:
    """Commission of one fill in the account currency; ``notional`` is quantity × price, already converted."""
    amount = options.per_unit * quantity + notional * options.percent / _HUNDRED
    return max(amount, options.minimum).quantize(_COMMISSION_EXP)


def next_utc_midnight(t: float) -> float:
    """The first UTC midnight strictly after ``t`` (when a DAY order expires)."""
    return float((int(t // _DAY) + 1) * _DAY)


class Match(NamedTuple):
    """What one quote does to one order."""

    triggered: bool
    """The order's stop has triggered (always True for MARKET and LIMIT)."""
    quantity: Decimal
    """Quantity to fill now (0: nothing)."""
    price: Decimal
    """Price before slippage (the touch); meaningless when quantity is 0."""
    taker: bool
    """The fill takes liquidity at any price, so slippage applies."""


def match(
    kind: OrderType,
    side: int,
    remaining: Decimal,
    limit: Decimal | None,
    stop: Decimal | None,
    triggered: bool,
    bid: Decimal,
    ask: Decimal,
    available: Decimal,
    lot: Decimal,
    all_or_none: bool,
) -> Match:
    """Match an order against a quote with ``available`` units at the touch.

    STOP, STOP_LIMIT and MARKET_IF_TOUCHED orders first wait for their trigger
    (:func:`triggers`); then STOP and MARKET_IF_TOUCHED act as MARKET and
    STOP_LIMIT as LIMIT. A marketable order fills up to the available
    size (rounded down to the lot); ``all_or_none`` (FOK) fills everything or nothing.
    """
    if not triggered:
        if stop is None or not triggers(kind, side, stop, bid, ask):
            return Match(False, ZERO, ZERO, False)
        triggered = True
    touch = ask if side > 0 else bid
    taker = kind is OrderType.MARKET or kind is OrderType.STOP or kind is OrderType.MARKET_IF_TOUCHED
    if not taker and (limit is None or not limit_marketable(side, limit, bid, ask)):
        return Match(triggered, ZERO, touch, False)
    quantity = remaining if available >= remaining else floor_to(available, lot) if available > 0 else ZERO
    if all_or_none and quantity < remaining:
        quantity = ZERO
    return Match(triggered, quantity, touch, taker)


@dataclass(slots=True, eq=False)
class PaperOrder:
    """One order as the paper broker holds it (mutable; the adapter owns it)."""

    client_order_id: str
    broker_order_id: str | None
    """``P<n>``; None for an order refused before it was booked."""
    instrument: str
    side: int
    type: OrderType
    quantity: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    time_in_force: TimeInForce
    created_at: float
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    tag: str | None = None
    parent: str | None = None
    """Client order id of the entry a bracket child protects."""
    oco: str | None = None
    """Client order id of another bracket child; when this one fills, every other working child of the same parent is cancelled."""
    trailing_stop: Decimal | None = None
    """On an entry: distance of the trailing stop-loss to attach once it fills. On a ``-TSL`` child: the
    distance its ``stop_price`` trails the best price seen by (the stop only ever tightens)."""
    triggered: bool = False
    expires_at: float | None = None
    status: OrderStatus = OrderStatus.ACCEPTED
    raw_status: str = "working"
    filled: Decimal = ZERO
    filled_value: Decimal = ZERO
    """Σ quantity × price of the fills (the average price is filled_value / filled)."""
    commission: Decimal = ZERO
    fills: list[Fill] = field(default_factory=list)
    error: tuple[str, str] | None = None
    """(code, message) when the broker cancelled or rejected the order itself."""
    updated_at: float = 0.0
    checked_step: int | None = None
    """The quote step this order was last matched against (not persisted)."""
    stored: bool = False
    """A working row of this order is in the database (to delete once the order is done)."""

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled

    @property
    def average_price(self) -> Decimal | None:
        return self.filled_value / self.filled if self.filled else None

    @property
    def has_brackets(self) -> bool:
        return self.stop_loss is not None or self.take_profit is not None or self.trailing_stop is not None


def order_to_request(order: PaperOrder) -> OrderRequest:
    """What an order is, for a router that has not seen it (a bracket child; any working order when reconciling)."""
    return OrderRequest(
        instrument=order.instrument,
        side=Side.BUY if order.side > 0 else Side.SELL,
        quantity=order.quantity,
        type=order.type,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        time_in_force=order.time_in_force,
        tag=order.tag,
    )


def order_to_report(order: PaperOrder, fills: Iterable[Fill], at: datetime) -> ExecutionReport:
    """The report of an order's current state with ``fills`` (the new ones, or all of them for a lookup)."""
    return ExecutionReport(
        client_order_id=order.client_order_id,
        status=order.status,
        raw_status=order.raw_status,
        broker_order_id=order.broker_order_id,
        fills=tuple(fills),
        error=None if order.error is None else ErrorInfo(code=order.error[0], message=order.error[1]),
        quantity=order.quantity,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        at=at,
        parent_client_order_id=order.parent,
        terms=None if order.parent is None else order_to_request(order),
    )
