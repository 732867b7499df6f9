"""Watching working orders by polling: which orders changed (pure), and the loop that asks at an interval.

Polling was chosen over ccxt.pro's websocket streams because it runs on the same
REST endpoints the adapters already speak (and test against a local server), needs
no listen keys or JWT-signed subscriptions, and recovers from a dropped connection
by simply asking again on the next tick. Each tick lists the open orders of every
symbol with a watched order (one cheap request per symbol); a watched order whose
filled quantity or status moved, or that is no longer open, is read in full and
its report emitted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from brokers.tasks import cancel_and_wait
from host.trading.states import OPEN_STATES, OrderStatus

__all__ = ["Poller", "Seen", "Watched", "WorkingOrders", "needs_report"]


@dataclass(frozen=True)
class Seen:
    """An order as one poll saw it."""

    status: OrderStatus
    filled: Decimal


@dataclass(frozen=True)
class Watched:
    """A working order being watched, with what was last reported about it."""

    client_order_id: str
    symbol: str
    broker_order_id: str
    last: Seen


def needs_report(watched: Watched, seen: Seen | None) -> bool:
    """True if the order left the open list (``seen`` None) or its fills or status moved."""
    return seen is None or seen.filled != watched.last.filled or seen.status != watched.last.status


class WorkingOrders:
    """The orders one adapter watches, keyed by client order id."""

    def __init__(self) -> None:
        self._orders: dict[str, Watched] = {}

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, client_order_id: object) -> bool:
        return client_order_id in self._orders

    def update(self, client_order_id: str, symbol: str, broker_order_id: str | None, status: OrderStatus, filled: Decimal) -> None:
        """Watch the order while it may still change at the exchange; forget it once it cannot."""
        if status not in OPEN_STATES or not broker_order_id:
            self._orders.pop(client_order_id, None)
            return
        self._orders[client_order_id] = Watched(client_order_id, symbol, broker_order_id, Seen(status, filled))

    def forget(self, client_order_id: str) -> None:
        self._orders.pop(client_order_id, None)

    def restore(self, watched: Watched) -> None:
        """Watch an order again as it was (its last report did not reach the router)."""
        self._orders[watched.client_order_id] = watched

    def symbols(self) -> list[str]:
        return sorted({w.symbol for w in self._orders.values()})

    def changed(self, symbol: str, open_now: Mapping[str, Seen]) -> list[Watched]:
        """Watched orders of ``symbol`` to read again, given the open list (exchange order id → what was seen)."""
        return [w for w in self._orders.values() if w.symbol == symbol and needs_report(w, open_now.get(w.broker_order_id))]


class Poller:
    """Runs ``tick`` every ``interval`` seconds while ``busy()``; a failing tick is logged and retried next time."""

    def __init__(
        self, tick: Callable[[], Awaitable[None]], busy: Callable[[], bool], interval: float, logger: logging.Logger, name: str
    ) -> None:
        self._tick = tick
        self._busy = busy
        self.interval = interval
        self._logger = logger
        self._name = name
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0
        self.failures = 0
        """Ticks that failed in a row (0 once one succeeds)."""

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self._name} order poller")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self._busy():
                continue
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next tick asks again; the exchange may be back by then
                self.failures += 1
                level = logging.WARNING if self.failures < 5 else logging.ERROR
                self._logger.log(level, "%s: polling working orders failed (%d in a row): %s", self._name, self.failures, exc)
            else:
                self.failures = 0
            self.ticks += 1
