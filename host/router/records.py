"""The router's in-memory order record and its conversions (pure).

The router keeps live orders as mutable :class:`OrderRecord` objects, not
pydantic models: they change on every report, and the hot path cannot afford
validating an immutable copy each time. They become :class:`Order` models at
the adapter boundary and plain JSON-ready dicts on the wire.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from host.trading.model import ErrorInfo, Fill, Order, OrderRequest, OrderType, Side, TimeInForce
from host.trading.states import OPEN_STATES, TERMINAL_STATES, OrderStatus

__all__ = ["OrderRecord", "client_order_id", "day_of", "record_from_row", "record_to_row"]

ZERO = Decimal(0)


_DAY = 86_400.0
_day_cache: tuple[float, float, str] = (0.0, -1.0, "")


def day_of(now: float) -> str:
    """The UTC calendar day of an epoch time, ``YYYYMMDD``."""
    global _day_cache
    start, end, text = _day_cache
    if start <= now < end:  # every order asks; the answer changes once a day
        return text
    text = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%d")
    start = now - now % _DAY  # UTC days are 86,400 epoch seconds: there are no leap seconds in epoch time
    _day_cache = (start, start + _DAY, text)
    return text


def client_order_id(strategy: str, day: str, seq: int) -> str:
    """``STRATEGY-YYYYMMDD-SEQ``: unique per strategy and day, readable in any broker's order list."""
    return f"{strategy}-{day}-{seq}"


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


@dataclass(eq=False)
class OrderRecord:
    client_order_id: str
    strategy: str
    request_id: str
    day: str
    seq: int
    run_id: int | None
    broker: str
    instrument: str
    side: Side
    type: OrderType
    quantity: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    time_in_force: TimeInForce
    stop_loss: Decimal | None
    take_profit: Decimal | None
    tag: str | None
    status: OrderStatus
    created_at: float
    updated_at: float
    broker_order_id: str | None = None
    raw_status: str | None = None
    filled_quantity: Decimal = ZERO
    average_price: Decimal | None = None
    commission: Decimal = ZERO
    error: ErrorInfo | None = None
    fills: list[Fill] = field(default_factory=list)
    trailing_stop: Decimal | None = None
    """Distance of the trailing stop-loss the broker attaches once the order fills."""
    parent: str | None = None
    """For a bracket's stop-loss or take-profit: the client order id of the order that created it."""

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATES

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATES

    @classmethod
    def from_request(
        cls, request: OrderRequest, *, client_order_id: str, strategy: str, request_id: str, day: str, seq: int, run_id: int | None, broker: str, now: float
    ) -> OrderRecord:
        return cls(
            client_order_id=client_order_id, strategy=strategy, request_id=request_id, day=day, seq=seq, run_id=run_id, broker=broker,
            instrument=request.instrument, side=request.side, type=request.type, quantity=request.quantity,
            limit_price=request.limit_price, stop_price=request.stop_price, time_in_force=request.time_in_force,
            stop_loss=request.stop_loss, take_profit=request.take_profit, tag=request.tag,
            status=OrderStatus.INITIALIZED, created_at=now, updated_at=now, trailing_stop=request.trailing_stop,
        )

    def add_fill(self, fill: Fill) -> None:
        """Fold one new execution into the filled quantity, average price and commission."""
        self.fills.append(fill)
        self.filled_quantity += fill.quantity
        self.commission += fill.commission
        # From the fills themselves, not the previous average: a rounded average would carry its error on.
        spent = sum((f.price * f.quantity for f in self.fills), ZERO)
        self.average_price = spent / self.filled_quantity if self.filled_quantity else None

    def to_model(self) -> Order:
        """The immutable Order an adapter receives (built without re-validating known-good fields)."""
        return Order.model_construct(set(_ORDER_FIELDS), **self._fields(), fills=tuple(self.fills))

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready form a strategy receives."""
        data = self._fields()
        for key in ("quantity", "limit_price", "stop_price", "stop_loss", "take_profit", "trailing_stop", "filled_quantity", "average_price", "commission"):
            data[key] = _text(data[key])
        data["created_at"] = data["created_at"].isoformat()
        data["updated_at"] = data["updated_at"].isoformat()
        data["error"] = None if self.error is None else self.error.model_dump()
        data["fills"] = [
            {"trade_id": f.trade_id, "quantity": str(f.quantity), "price": str(f.price), "commission": str(f.commission), "at": f.at.isoformat()}
            for f in self.fills
        ]
        return data

    def _fields(self) -> dict[str, Any]:
        return {
            "client_order_id": self.client_order_id, "request_id": self.request_id, "strategy": self.strategy, "run_id": self.run_id,
            "broker": self.broker, "broker_order_id": self.broker_order_id, "instrument": self.instrument, "side": self.side,
            "type": self.type, "quantity": self.quantity, "limit_price": self.limit_price, "stop_price": self.stop_price,
            "time_in_force": self.time_in_force, "stop_loss": self.stop_loss, "take_profit": self.take_profit,
            "trailing_stop": self.trailing_stop, "tag": self.tag, "status": self.status, "raw_status": self.raw_status, "filled_quantity": self.filled_quantity,
            "average_price": self.average_price, "commission": self.commission, "error": self.error,
            "created_at": _utc(self.created_at), "updated_at": _utc(self.updated_at),
        }


_ORDER_FIELDS = frozenset(Order.model_fields)


def record_to_row(record: OrderRecord) -> dict[str, Any]:
    """The orders-table row of a record."""
    return {
        "client_order_id": record.client_order_id, "strategy": record.strategy, "request_id": record.request_id,
        "day": record.day, "seq": record.seq, "run_id": record.run_id, "broker": record.broker,
        "broker_order_id": record.broker_order_id, "instrument": record.instrument, "side": str(record.side),
        "type": str(record.type), "quantity": str(record.quantity), "limit_price": _text(record.limit_price),
        "stop_price": _text(record.stop_price), "time_in_force": str(record.time_in_force),
        "stop_loss": _text(record.stop_loss), "take_profit": _text(record.take_profit),
        "trailing_stop": _text(record.trailing_stop), "tag": record.tag,
        "parent": record.parent, "status": str(record.status), "raw_status": record.raw_status, "filled_quantity": str(record.filled_quantity),
        "average_price": _text(record.average_price), "commission": str(record.commission),
        "error": None if record.error is None else json.dumps(record.error.model_dump()),
        "created_at": record.created_at, "updated_at": record.updated_at,
    }


def record_from_row(row: Any, fills: list[Fill]) -> OrderRecord:
    """Rebuild a record from its orders-table row and its fills."""
    record = OrderRecord(
        client_order_id=row.client_order_id, strategy=row.strategy, request_id=row.request_id, day=row.day, seq=row.seq,
        run_id=row.run_id, broker=row.broker, instrument=row.instrument, side=Side(row.side), type=OrderType(row.type),
        quantity=Decimal(row.quantity), limit_price=_dec(row.limit_price), stop_price=_dec(row.stop_price),
        time_in_force=TimeInForce(row.time_in_force), stop_loss=_dec(row.stop_loss), take_profit=_dec(row.take_profit),
        tag=row.tag, status=OrderStatus(row.status), created_at=row.created_at, updated_at=row.updated_at,
        broker_order_id=row.broker_order_id, raw_status=row.raw_status, filled_quantity=Decimal(row.filled_quantity),
        average_price=_dec(row.average_price), commission=Decimal(row.commission),
        error=None if row.error is None else ErrorInfo.model_validate_json(row.error),
    )
    record.fills = fills
    record.parent = row.parent
    record.trailing_stop = _dec(row.trailing_stop)
    return record
