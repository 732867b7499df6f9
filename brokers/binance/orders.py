"""Our orders as Binance spot requests, and Binance's order statuses as ours (pure).

``POST /api/v3/order`` takes form fields: ``symbol, side, type, quantity, price,
stopPrice, timeInForce, newClientOrderId, newOrderRespType``. Our types map to
MARKET, LIMIT, STOP_LOSS (a stop that becomes a market order) and STOP_LOSS_LIMIT;
Binance triggers a BUY stop when the price rises to it and a SELL stop when it falls,
as a stop order should. FULL answers carry the fills with their trade ids.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from brokers.ccxt.mapping import plain
from host.trading.model import Order, OrderType, TimeInForce
from host.trading.states import OrderStatus

__all__ = ["STATUSES", "order_to_request", "status_of", "supports", "wire_client_id"]

S = OrderStatus
_CLIENT_ID = re.compile(r"^[a-zA-Z0-9_-]{1,36}$")

STATUSES: dict[str, OrderStatus] = {
    "NEW": S.ACCEPTED,
    "PENDING_NEW": S.SUBMITTED,  # an order list's leg not yet working
    "PARTIALLY_FILLED": S.PARTIALLY_FILLED,
    "FILLED": S.FILLED,
    "CANCELED": S.CANCELED,
    "PENDING_CANCEL": S.PENDING_CANCEL,
    "REJECTED": S.REJECTED,
    "EXPIRED": S.EXPIRED,
    "EXPIRED_IN_MATCH": S.CANCELED,  # self-trade prevention took it off the book
}

_TYPES = {
    OrderType.MARKET: "MARKET",
    OrderType.LIMIT: "LIMIT",
    OrderType.STOP: "STOP_LOSS",
    OrderType.STOP_LIMIT: "STOP_LOSS_LIMIT",
}


def wire_client_id(client_order_id: str) -> str:
    """``newClientOrderId`` for our id: itself when Binance's rule allows (1–36 of ``[A-Za-z0-9_-]``), else a digest."""
    if _CLIENT_ID.match(client_order_id):
        return client_order_id
    return "th-" + hashlib.sha256(client_order_id.encode()).hexdigest()[:33]


def supports(kind: OrderType, tif: TimeInForce) -> bool:
    """Limit orders take GTC/IOC/FOK; a market order runs at once (GTC and IOC both mean that); a stop rests (GTC)."""
    if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        return tif in (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK)
    if kind is OrderType.MARKET:
        return tif in (TimeInForce.GTC, TimeInForce.IOC)
    return tif is TimeInForce.GTC


def order_to_request(order: Order, market_id: str, wire_id: str) -> dict[str, str]:
    """The form fields of ``POST /api/v3/order`` (ccxt adds timestamp, recvWindow and the signature)."""
    kind = OrderType(order.type)
    request = {
        "symbol": market_id,
        "side": str(order.side),
        "type": _TYPES[kind],
        "quantity": plain(order.quantity),
        "newClientOrderId": wire_id,
        "newOrderRespType": "FULL",
    }
    if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        assert order.limit_price is not None
        request["price"] = plain(order.limit_price)
        request["timeInForce"] = str(order.time_in_force)
    if kind in (OrderType.STOP, OrderType.STOP_LIMIT):
        assert order.stop_price is not None
        request["stopPrice"] = plain(order.stop_price)
    return request


def status_of(info: Mapping[str, Any]) -> tuple[OrderStatus, str]:
    """Our status and Binance's word; an IOC/FOK order's unfilled rest expiring is a cancel, as for other brokers."""
    word = str(info.get("status") or "")
    status = STATUSES.get(word, S.SUBMITTED)
    if word == "EXPIRED" and info.get("timeInForce") in ("IOC", "FOK") or word == "EXPIRED" and info.get("type") == "MARKET":
        status = S.CANCELED
    return status, word or "UNKNOWN"
