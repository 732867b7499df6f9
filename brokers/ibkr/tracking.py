"""What the router has been told about each order, and reporting what changed since, once (no I/O).

ib_async updates a trade message by message; the adapter marks the trade
after each and flushes after each TCP packet, so that a status and the fills
that come with it go out in one report. A report whose fills still wait for
their commission report (or whose status counts fills whose executions have
not come yet) waits up to ``hold`` seconds for them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal

from ib_async import Trade

from brokers.base import ExecutionReport
from host.trading.states import OrderStatus

from .contracts import decimal_of
from .reports import unfinished_fills

__all__ = ["ReportTracker", "signature"]

Signature = tuple[OrderStatus, str, frozenset[str], Decimal | None, Decimal | None, Decimal | None]


def signature(report: ExecutionReport) -> Signature:
    """What makes two reports of one order different for the router."""
    trades = frozenset(f.trade_id for f in report.fills)
    return (report.status, report.raw_status, trades, report.quantity, report.limit_price, report.stop_price)


def waits_for_details(trade: Trade) -> bool:
    """Fills without their commission report, or a status counting executions not received yet."""
    if unfinished_fills(trade):
        return True
    received = sum((decimal_of(f.execution.shares) or Decimal(0) for f in trade.fills), Decimal(0))
    return (decimal_of(trade.orderStatus.filled) or Decimal(0)) > received


class ReportTracker:
    """Emits a report for a marked trade when it differs from the last one the router got for that order."""

    def __init__(
        self,
        emit: Callable[[ExecutionReport], None],
        build: Callable[[Trade], ExecutionReport | None],
        *,
        hold: float,
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit, self._build, self._hold, self._log, self._clock = emit, build, hold, logger, clock
        self._told: dict[str, Signature] = {}
        self._dirty: dict[str, Trade] = {}
        self._busy: dict[str, int] = {}
        self._held_since: dict[str, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def mark(self, trade: Trade) -> None:
        """The trade changed; report it at the next flush. Orders without our client order id are not reported."""
        cid = trade.order.orderRef
        if cid:
            self._dirty[cid] = trade

    def forget_marks(self) -> None:
        """Drop pending marks (their trades belong to a session that ended)."""
        self._dirty.clear()
        self._held_since.clear()

    def told(self, report: ExecutionReport) -> None:
        """The router got this report as a call's answer (or knows it otherwise)."""
        self._told[report.client_order_id] = signature(report)

    def knows(self, client_order_id: str) -> bool:
        return client_order_id in self._told

    @contextmanager
    def busy(self, client_order_ids: Iterable[str]) -> Iterator[None]:
        """While a call on these orders runs, its answer reports them; changes wait for the call to end."""
        ids = list(client_order_ids)
        for cid in ids:
            self._busy[cid] = self._busy.get(cid, 0) + 1
        try:
            yield
        finally:
            for cid in ids:
                left = self._busy[cid] - 1
                if left:
                    self._busy[cid] = left
                else:
                    del self._busy[cid]

    def flush(self) -> int:
        """Emit what changed; return how many reports went out."""
        sent = 0
        now = self._clock()
        for cid, trade in list(self._dirty.items()):
            if cid in self._busy:
                continue
            if waits_for_details(trade):
                since = self._held_since.setdefault(cid, now)
                if now - since < self._hold:
                    self._wake_in(since + self._hold - now)
                    continue
            del self._dirty[cid]
            self._held_since.pop(cid, None)
            sent += self._report(cid, trade)
        return sent

    def _report(self, cid: str, trade: Trade) -> int:
        try:
            report = self._build(trade)
        except Exception:
            self._log.exception("building the report of order %s failed", cid)
            return 0
        if report is None:
            return 0
        sig = signature(report)
        if self._told.get(cid) == sig:
            return 0
        self._told[cid] = sig
        try:
            self._emit(report)
        except Exception:  # one report the router cannot take must not hold back the others
            self._log.exception("emitting the report of order %s failed", cid)
        return 1

    def _wake_in(self, delay: float) -> None:
        if self._timer is not None and not self._timer.cancelled():
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, delay), self._wake)

    def _wake(self) -> None:
        self._timer = None
        self.flush()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
