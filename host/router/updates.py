"""Applying a broker's execution report to an order (pure): the state table decides, fills count once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from brokers.base import ExecutionReport
from host.trading.model import Fill
from host.trading.states import OrderStatus, can_transition

from .records import OrderRecord

__all__ = ["Applied", "apply_report", "transition"]

log = logging.getLogger("tradehost.router")


@dataclass
class Applied:
    """What one report changed."""

    before: OrderStatus
    after: OrderStatus
    fills: list[Fill] = field(default_factory=list)
    refused: OrderStatus | None = None
    """A status the report asked for that the state table does not allow from ``before``."""

    @property
    def changed(self) -> bool:
        return self.before != self.after or bool(self.fills)


def transition(record: OrderRecord, new: OrderStatus) -> bool:
    """Move the record to ``new`` if the table allows it; log and keep it where it is if not."""
    if new == record.status:
        return True
    if not can_transition(record.status, new):
        log.warning("order %s: refused transition %s → %s", record.client_order_id, record.status, new)
        return False
    record.status = new
    return True


def apply_report(record: OrderRecord, report: ExecutionReport, seen: Callable[[str], bool], now: float) -> Applied:
    """Fold ``report`` into ``record``; ``seen(trade_id)`` tells a fill already applied.

    New fills are applied even when the reported status is refused: an
    execution happened whatever the broker says about the order. When the
    fills complete the quantity the order becomes FILLED.
    """
    applied = Applied(before=record.status, after=record.status)
    for fill in report.fills:
        if seen(fill.trade_id) or any(f.trade_id == fill.trade_id for f in record.fills):
            continue
        record.add_fill(fill)
        applied.fills.append(fill)
    if report.broker_order_id and not record.broker_order_id:
        record.broker_order_id = report.broker_order_id
    if report.quantity is not None:
        record.quantity = report.quantity
    if report.limit_price is not None:
        record.limit_price = report.limit_price
    if report.stop_price is not None:
        record.stop_price = report.stop_price
    if report.error is not None:
        record.error = report.error
    record.raw_status = report.raw_status
    target = report.status
    if record.filled_quantity >= record.quantity and record.filled_quantity > 0:
        target = OrderStatus.FILLED
    elif applied.fills and target in (OrderStatus.ACCEPTED, OrderStatus.SUBMITTED):
        target = OrderStatus.PARTIALLY_FILLED
    if record.status == OrderStatus.CANCELED and target == OrderStatus.PARTIALLY_FILLED:
        target = OrderStatus.CANCELED  # a late partial fill: the rest stays cancelled
    if not transition(record, target):
        applied.refused = target
    if applied.changed or applied.refused is None:
        record.updated_at = now
    applied.after = record.status
    return applied
