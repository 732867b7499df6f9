"""An ib_async trade → our order status, fills and execution report (pure).

The status comes from the trade's log, read in order, not from
``trade.orderStatus.status``: ib_async writes ``Cancelled`` there on any error
it does not know as a warning, including a refused cancel or modification of
an order that is still working. The error codes decide (:mod:`.errors`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from ib_async import Fill as IbFill
from ib_async import Trade

from brokers.base import ExecutionReport
from host.trading.model import ErrorInfo, Fill, OrderRequest
from host.trading.states import OrderStatus

from .contracts import decimal_of
from .errors import Effect, error_info, ib_error
from .orders import order_prices

__all__ = ["LogLine", "OrderState", "error_text", "fills_of", "order_state", "trade_report", "trade_state", "unfinished_fills"]

S = OrderStatus
ZERO = Decimal(0)
_WORKING = frozenset({"PreSubmitted", "Submitted", "ApiUpdate"})
_ACKNOWLEDGING = frozenset({"PreSubmitted", "Submitted", "Filled", "Cancelled", "ApiCancelled", "Inactive"})
_CANCELLED = frozenset({"Cancelled", "ApiCancelled"})
_DONE = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
_RAW_KEEP = 3
"""Error lines kept in a report's raw data."""


class LogLine(Protocol):
    """What the state machine reads from one ``TradeLogEntry``."""

    @property
    def status(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def errorCode(self) -> int: ...  # noqa: N802 - ib_async's name


@dataclass(frozen=True, slots=True)
class OrderState:
    status: OrderStatus
    raw_status: str
    error: ErrorInfo | None
    answered: bool
    """TWS said something final about the request that created or last changed the order."""


@dataclass
class _Machine:
    status: str = ""
    acked: bool = False
    pending: str | None = None
    before_cancel: str = ""
    ended: LogLine | None = None
    answered: bool = False

    def error(self, line: LogLine) -> None:
        effect = ib_error(line.errorCode).effect
        if effect is Effect.WARNING or effect is Effect.CONNECTIVITY:
            return
        if effect is Effect.CANCELLED:
            self.status, self.pending = "Cancelled", None
        elif self.pending == "cancel":  # the cancel was refused: the order is as it was
            self.status, self.pending = self.before_cancel, None
        elif self.pending == "modify" and self.acked:  # the modification was refused: the order works on
            self.pending = None
        elif effect is Effect.REFUSED:
            self.ended = line
        else:
            # Unclassified, on a new or working order: no proof it ended. TWS's next status, or a lookup, tells.
            return
        self.answered = True

    def state(self, line: LogLine) -> None:
        if line.message == "Modify":
            self.pending, self.answered = "modify", False
            return
        if line.status == "PendingCancel" and self.pending != "cancel":
            self.before_cancel, self.pending, self.answered = self.status, "cancel", False
        self.status = line.status
        if line.status in _WORKING or line.status == "Filled":
            self.acked = True
            if self.pending == "modify":
                self.pending = None
        if line.status in _ACKNOWLEDGING and self.pending is None:
            self.answered = True
        if line.status in _DONE:
            self.pending = None


def order_state(log: Iterable[LogLine], filled: Decimal, quantity: Decimal) -> OrderState:
    """Our status of an order from its log lines (and the quantity filled so far)."""
    m = _Machine()
    for line in log:
        if line.errorCode:
            m.error(line)
        elif not line.message.startswith("Fill "):
            m.state(line)
    if (quantity > 0 and filled >= quantity) or m.status == "Filled":
        return OrderState(S.FILLED, "Filled", None, True)
    if m.ended is not None:
        status = S.REJECTED if not m.acked and not filled else S.CANCELED
        code = m.ended.errorCode
        return OrderState(status, f"{m.status or 'Cancelled'} (IB error {code})", error_info(code, error_text(m.ended.message)), True)
    if m.status in _CANCELLED:
        return OrderState(S.CANCELED, m.status, None, True)
    if m.status == "Inactive":
        return OrderState(S.REJECTED if not m.acked and not filled else S.CANCELED, m.status, None, True)
    if m.status == "PendingCancel":
        return OrderState(S.PENDING_CANCEL, m.status, None, m.answered)
    working = m.status in _WORKING
    if filled:
        return OrderState(S.PARTIALLY_FILLED, m.status, None, m.answered or working)
    return OrderState(S.ACCEPTED if working else S.SUBMITTED, m.status or "PendingSubmit", None, m.answered)


def error_text(message: str) -> str:
    """IB's own text from an ib_async log line ("Error 201, reqId 7: Order rejected - reason: …")."""
    head, sep, text = message.partition(": ")
    return text if sep and head.startswith(("Error ", "Warning ")) else message


def fills_of(fills: Sequence[IbFill]) -> tuple[Fill, ...]:
    """Our fills: IB's execId as trade id, the commission where its report came."""
    result = []
    for f in fills:
        ex, report = f.execution, f.commissionReport
        quantity, price = decimal_of(ex.shares), decimal_of(ex.price)
        if quantity is None or price is None:
            continue
        commission = decimal_of(report.commission) if report.execId else None
        at = ex.time if ex.time.tzinfo is not None else ex.time.replace(tzinfo=UTC)
        result.append(Fill(trade_id=ex.execId, quantity=quantity, price=price, commission=commission or ZERO, at=at.astimezone(UTC)))
    return tuple(result)


def unfinished_fills(trade: Trade) -> list[str]:
    """Exec ids of fills whose commission report has not come yet."""
    return [f.execution.execId for f in trade.fills if not f.commissionReport.execId]


def trade_state(trade: Trade, completed: str | None = None) -> OrderState:
    """The state of one trade; ``completed`` is the status TWS gave it in its completed orders, if it did.

    A trade ib_async built from TWS's order lists (at connect) has no log yet: its status is its state.
    """
    fills = fills_of(trade.fills)
    filled = sum((f.quantity for f in fills), ZERO)
    quantity = decimal_of(trade.order.totalQuantity) or ZERO
    log: list[Any] = list(trade.log)
    known = completed or (trade.orderStatus.status if not log else None)
    if known:
        log.append(_Known(known))
    return order_state(log, filled, quantity)


def trade_report(
    trade: Trade,
    *,
    completed: str | None = None,
    parent: str | None = None,
    terms: OrderRequest | None = None,
    client_order_id: str | None = None,
) -> ExecutionReport:
    """The report of one trade; ``completed`` as for :func:`trade_state`."""
    fills = fills_of(trade.fills)
    quantity = decimal_of(trade.order.totalQuantity) or ZERO
    state = trade_state(trade, completed)
    limit, stop = order_prices(trade.order)
    return ExecutionReport(
        client_order_id=client_order_id or trade.order.orderRef,
        status=state.status,
        raw_status=state.raw_status,
        broker_order_id=str(trade.order.orderId) if trade.order.orderId > 0 else None,
        fills=fills,
        error=state.error,
        quantity=quantity or None,
        limit_price=limit,
        stop_price=stop,
        at=_last_time(trade),
        raw=_raw(trade),
        parent_client_order_id=parent,
        terms=terms,
    )


@dataclass(frozen=True, slots=True)
class _Known:
    """A status TWS gave outside the trade's log (its open or completed order lists)."""

    status: str
    message: str = "listed"
    errorCode: int = 0  # noqa: N815 - ib_async's name


def _last_time(trade: Trade) -> datetime | None:
    return trade.log[-1].time.astimezone(UTC) if trade.log else None


def _raw(trade: Trade) -> dict[str, Any]:
    status = trade.orderStatus
    raw: dict[str, Any] = {
        "order_id": trade.order.orderId,
        "perm_id": trade.order.permId or status.permId,
        "status": status.status,
        "filled": str(decimal_of(status.filled) or 0),
        "remaining": str(decimal_of(status.remaining) or 0),
    }
    if status.avgFillPrice:
        raw["avg_fill_price"] = str(decimal_of(status.avgFillPrice))
    if status.whyHeld:
        raw["why_held"] = status.whyHeld
    errors = [[line.errorCode, error_text(line.message)] for line in trade.log if line.errorCode][-_RAW_KEEP:]
    if errors:
        raw["errors"] = errors
    return raw
