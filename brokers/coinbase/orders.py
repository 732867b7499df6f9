"""Our orders as Coinbase Advanced Trade requests, and Coinbase's order statuses as ours (pure).

``POST /api/v3/brokerage/orders`` takes ``{client_order_id, product_id, side,
order_configuration}``; the configuration names type and time in force together:

=============  ====================  ============================================
type           time in force         configuration
=============  ====================  ============================================
MARKET         GTC, IOC              ``market_market_ioc {base_size}``
LIMIT          GTC                   ``limit_limit_gtc {base_size, limit_price, post_only}``
LIMIT          IOC                   ``sor_limit_ioc {base_size, limit_price}``
LIMIT          FOK                   ``limit_limit_fok {base_size, limit_price}``
LIMIT          DAY                   ``limit_limit_gtd`` ending at the next UTC midnight
STOP_LIMIT     GTC / DAY             ``stop_limit_stop_limit_gtc`` / ``…_gtd``
=============  ====================  ============================================

A BUY stop triggers when the price rises to it (``STOP_DIRECTION_STOP_UP``), a SELL
stop when it falls (``…_DOWN``). Coinbase has no stop-market order. Our client order
id travels as ``client_order_id`` (ccxt would otherwise send ``ccxt-<uuid>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from brokers.ccxt.mapping import plain
from host.trading.model import Order, OrderChanges, OrderType, Side, TimeInForce
from host.trading.states import OrderStatus

__all__ = ["STATUSES", "changes_to_edit", "day_end", "order_to_body", "status_of", "supports"]

S = OrderStatus

STATUSES: dict[str, OrderStatus] = {
    "PENDING": S.SUBMITTED,
    "QUEUED": S.SUBMITTED,
    "OPEN": S.ACCEPTED,
    "FILLED": S.FILLED,
    "CANCELLED": S.CANCELED,
    "CANCEL_QUEUED": S.PENDING_CANCEL,
    "EDIT_QUEUED": S.PENDING_UPDATE,
    "EXPIRED": S.EXPIRED,
    "FAILED": S.REJECTED,
    "UNKNOWN_ORDER_STATUS": S.SUBMITTED,
}

_SUPPORTED: dict[OrderType, frozenset[TimeInForce]] = {
    OrderType.MARKET: frozenset({TimeInForce.GTC, TimeInForce.IOC}),
    OrderType.LIMIT: frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.DAY}),
    OrderType.STOP_LIMIT: frozenset({TimeInForce.GTC, TimeInForce.DAY}),
}


def supports(kind: OrderType, tif: TimeInForce) -> bool:
    return tif in _SUPPORTED.get(kind, frozenset())


def day_end(now: datetime) -> str:
    """The next UTC midnight in Coinbase's time format: when a DAY order ends."""
    midnight = (now.astimezone(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.strftime("%Y-%m-%dT%H:%M:%SZ")


def _configuration(order: Order, now: datetime) -> dict[str, Any]:
    kind, tif = OrderType(order.type), TimeInForce(order.time_in_force)
    size = plain(order.quantity)
    if kind is OrderType.MARKET:
        return {"market_market_ioc": {"base_size": size}}
    assert order.limit_price is not None
    price = plain(order.limit_price)
    if kind is OrderType.STOP_LIMIT:
        assert order.stop_price is not None
        direction = "STOP_DIRECTION_STOP_UP" if Side(order.side) is Side.BUY else "STOP_DIRECTION_STOP_DOWN"
        terms = {"base_size": size, "limit_price": price, "stop_price": plain(order.stop_price), "stop_direction": direction}
        if tif is TimeInForce.DAY:
            return {"stop_limit_stop_limit_gtd": terms | {"end_time": day_end(now)}}
        return {"stop_limit_stop_limit_gtc": terms}
    if tif is TimeInForce.IOC:
        return {"sor_limit_ioc": {"base_size": size, "limit_price": price}}
    if tif is TimeInForce.FOK:
        return {"limit_limit_fok": {"base_size": size, "limit_price": price}}
    if tif is TimeInForce.DAY:
        return {"limit_limit_gtd": {"base_size": size, "limit_price": price, "end_time": day_end(now), "post_only": False}}
    return {"limit_limit_gtc": {"base_size": size, "limit_price": price, "post_only": False}}


def order_to_body(order: Order, product_id: str, wire_id: str, now: datetime) -> dict[str, Any]:
    """The JSON body of ``POST /api/v3/brokerage/orders``."""
    return {
        "client_order_id": wire_id,
        "product_id": product_id,
        "side": str(order.side),
        "order_configuration": _configuration(order, now),
    }


def changes_to_edit(order_id: str, order: Order, changes: OrderChanges) -> dict[str, str]:
    """The body of ``POST /api/v3/brokerage/orders/edit``: the new total size and limit price."""
    price = changes.limit_price if changes.limit_price is not None else order.limit_price
    assert price is not None
    return {
        "order_id": order_id,
        "size": plain(changes.quantity if changes.quantity is not None else order.quantity),
        "price": plain(price),
    }


def status_of(info: Mapping[str, Any]) -> tuple[OrderStatus, str]:
    """Our status and Coinbase's word; an IOC/FOK order's rest expiring is a cancel, as for other brokers."""
    word = str(info.get("status") or "")
    status = STATUSES.get(word, S.SUBMITTED)
    if word == "EXPIRED" and info.get("time_in_force") in ("IMMEDIATE_OR_CANCEL", "FILL_OR_KILL"):
        status = S.CANCELED
    return status, word or "UNKNOWN_ORDER_STATUS"
