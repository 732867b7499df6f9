"""What the adapter remembers about orders it has seen: OANDA order id ↔ client order id, size, fills, trades.

OANDA gives a replaced order a new id (the client id moves with it) and
reports a fill without saying whether the order is now complete; this book
answers both. It holds only what the session has seen: after a restart the
router's lookups fill it again, and an order it does not know is addressed
by its client id (``@<id>``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from host.trading.model import Fill

__all__ = ["OrderBook", "Tracked"]

ZERO = Decimal(0)
KEEP = 10_000
"""Orders (and trades) remembered; the oldest are forgotten first."""


@dataclass(slots=True)
class Tracked:
    cid: str
    order_id: str | None
    """OANDA's id of the order now standing for ``cid`` (None until OANDA answered)."""
    total: Decimal | None
    """Our order's whole quantity, when known."""
    filled: Decimal = ZERO
    fill_ids: set[str] = field(default_factory=set)

    @property
    def complete(self) -> bool:
        return self.total is not None and self.filled >= self.total


class OrderBook:
    """Orders by client id and by OANDA id; trades by id (for the units a stop loss closes)."""

    def __init__(self, keep: int = KEEP) -> None:
        self._keep = keep
        self._by_cid: OrderedDict[str, Tracked] = OrderedDict()
        self._by_id: dict[str, Tracked] = {}
        self._trades: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_cid)

    def get(self, cid: str) -> Tracked | None:
        return self._by_cid.get(cid)

    def cid_of(self, order_id: str | None) -> str | None:
        tracked = self._by_id.get(order_id) if order_id else None
        return tracked.cid if tracked else None

    def specifier(self, cid: str) -> str:
        """How to name the order in a URL: OANDA's id when known, else ``@<client id>``."""
        tracked = self._by_cid.get(cid)
        return tracked.order_id if tracked and tracked.order_id else f"@{cid}"

    def track(self, cid: str, order_id: str | None = None, total: Decimal | None = None) -> Tracked:
        """Remember ``cid`` (again), with OANDA's id and our quantity when they are given."""
        tracked = self._by_cid.get(cid)
        if tracked is None:
            tracked = Tracked(cid, None, None)
            self._by_cid[cid] = tracked
            if len(self._by_cid) > self._keep:
                _, old = self._by_cid.popitem(last=False)
                if old.order_id:
                    self._by_id.pop(old.order_id, None)
        if order_id:
            if tracked.order_id and tracked.order_id != order_id:
                self._by_id.pop(tracked.order_id, None)
            tracked.order_id = order_id
            self._by_id[order_id] = tracked
        if total is not None:
            tracked.total = total
        return tracked

    def replaced(self, old_id: str | None, new_id: str | None) -> None:
        """OANDA replaced order ``old_id`` by ``new_id``: the client id now names the new one."""
        tracked = self._by_id.pop(old_id, None) if old_id else None
        if tracked is not None and new_id:
            tracked.order_id = new_id
            self._by_id[new_id] = tracked

    def add_fill(self, cid: str, order_id: str | None, fill: Fill) -> Tracked:
        """Count ``fill`` once for ``cid``; the order as it stands after it."""
        tracked = self.track(cid, order_id)
        if fill.trade_id not in tracked.fill_ids:
            tracked.fill_ids.add(fill.trade_id)
            tracked.filled += fill.quantity
        return tracked

    def add_trade(self, trade_id: str, instrument: str, units: str) -> None:
        """A trade a fill opened: what a stop loss or take profit on it will close."""
        self._trades[trade_id] = {"id": trade_id, "instrument": instrument, "currentUnits": units}
        if len(self._trades) > self._keep:
            self._trades.popitem(last=False)

    def trade(self, trade_id: str) -> dict[str, Any] | None:
        return self._trades.get(trade_id)
