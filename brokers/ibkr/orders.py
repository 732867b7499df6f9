"""Our orders → ib_async orders, brackets included, and back to order terms (pure).

Our client order id travels as IB's ``orderRef``, so that an order can be found
among open orders, completed orders and executions by it. An order with
``stop_loss`` / ``take_profit`` becomes an IB bracket: the entry, a take-profit
limit and a stop-loss stop, both children of the entry (``parentId``) and one
OCA group. Only the last leg is transmitted; TWS sends the whole bracket then.
A MARKET_IF_TOUCHED order is IB's ``MIT`` with the trigger (our stop_price) as
``auxPrice``. ``trailing_stop`` (a price distance) adds one more child, IB's
``TRAIL`` with the distance as ``auxPrice`` (the trailing amount; neither
``trailStopPrice`` nor ``trailingPercent`` is sent, so TWS starts the trigger from
the market), named ``<id>-TSL``, in the OCA group with the other children. The
order model has no trailing type: a TRAIL order reads as a STOP at its current
trigger (``trailStopPrice``, which TWS moves with the market), and has no terms
as long as TWS has not said where the trigger is.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from ib_async import LimitOrder, MarketOrder, StopLimitOrder, StopOrder
from ib_async import Order as IbOrder

from host.trading.errors import InvalidPrice, InvalidQuantity, NotSupported
from host.trading.model import Order, OrderChanges, OrderRequest, OrderType, Side, TimeInForce

from .contracts import decimal_of

__all__ = [
    "OCA_REDUCE_WITH_BLOCK",
    "STOP_LOSS_SUFFIX",
    "TAKE_PROFIT_SUFFIX",
    "TRAIL",
    "TRAILING_STOP_SUFFIX",
    "Leg",
    "bracket_parent",
    "changes_to_ib",
    "ib_to_request",
    "legs_needed",
    "order_prices",
    "order_to_ib",
    "wire_number",
]

TAKE_PROFIT_SUFFIX = "-TP"
STOP_LOSS_SUFFIX = "-SL"
TRAILING_STOP_SUFFIX = "-TSL"
TRAIL = "TRAIL"
OCA_REDUCE_WITH_BLOCK = 2
"""A partial fill of one bracket child shrinks the other by as much (a stop-loss keeps covering what is left);
"with block" keeps both from filling at once."""

ORDER_TYPES: dict[OrderType, str] = {
    OrderType.MARKET: "MKT",
    OrderType.LIMIT: "LMT",
    OrderType.STOP: "STP",
    OrderType.STOP_LIMIT: "STP LMT",
    OrderType.MARKET_IF_TOUCHED: "MIT",
}
_OUR_TYPES = {v: k for k, v in ORDER_TYPES.items()}
_TIFS = {t: t.value for t in TimeInForce}
_OUR_TIFS = {v: k for k, v in _TIFS.items()}
_USES_LIMIT = frozenset({"LMT", "STP LMT"})
_USES_STOP = frozenset({"STP", "STP LMT", "MIT"})


@dataclass(frozen=True)
class Leg:
    """One IB order to place, with the client order id it carries."""

    client_order_id: str
    order: IbOrder
    parent_client_order_id: str | None = None
    terms: OrderRequest | None = None
    """For a bracket child: what it is, for the router to record it (None for a trailing stop: its trigger is not known yet)."""


def bracket_parent(client_order_id: str) -> str | None:
    """The entry's client order id, for a bracket child named by :func:`order_to_ib`; None for any other name."""
    for suffix in (TAKE_PROFIT_SUFFIX, STOP_LOSS_SUFFIX, TRAILING_STOP_SUFFIX):
        if client_order_id.endswith(suffix) and len(client_order_id) > len(suffix):
            return client_order_id[: -len(suffix)]
    return None


def wire_number(value: Decimal, what: str, *, price: bool) -> float:
    """``value`` as the float ib_async sends; refused if its shortest repr would not be exactly ``value``."""
    number = float(value)
    if Decimal(repr(number)) != value:
        cls = InvalidPrice if price else InvalidQuantity
        raise cls(f"{what} {value} has more digits than the TWS API carries")
    return number


def legs_needed(order: Order) -> int:
    """How many IB orders (and order ids) ``order`` takes: 1, or 2–4 for a bracket."""
    return 1 + (order.stop_loss is not None) + (order.take_profit is not None) + (order.trailing_stop is not None)


def order_to_ib(order: Order, order_ids: Sequence[int], *, account: str, outside_rth: bool = False) -> list[Leg]:
    """The IB order(s) for ``order``: the entry first, then take-profit, stop-loss and trailing-stop children."""
    if len(order_ids) != legs_needed(order):
        raise ValueError(f"order {order.client_order_id} needs {legs_needed(order)} order ids, got {len(order_ids)}")
    side = Side(order.side)
    entry = _entry(order, side)
    entry.orderId, entry.orderRef, entry.account = order_ids[0], order.client_order_id, account
    entry.outsideRth = outside_rth
    legs = [Leg(order.client_order_id, entry)]
    legs += _children(order, side, order_ids[0], order_ids[1:], account, outside_rth)
    for leg in legs[:-1]:
        leg.order.transmit = False  # TWS holds the legs until the last one arrives
    legs[-1].order.transmit = True
    return legs


def _entry(order: Order, side: Side) -> IbOrder:
    action, qty = side.value, wire_number(order.quantity, "quantity", price=False)
    tif = _TIFS[TimeInForce(order.time_in_force)]
    kind = OrderType(order.type)
    if kind is OrderType.MARKET:
        return MarketOrder(action, qty, tif=tif)
    if kind is OrderType.LIMIT:
        return LimitOrder(action, qty, _price(order.limit_price, "limit price"), tif=tif)
    if kind is OrderType.STOP:
        return StopOrder(action, qty, _price(order.stop_price, "stop price"), tif=tif)
    if kind is OrderType.MARKET_IF_TOUCHED:
        return IbOrder(orderType="MIT", action=action, totalQuantity=qty, auxPrice=_price(order.stop_price, "stop price"), tif=tif)
    return StopLimitOrder(action, qty, _price(order.limit_price, "limit price"), _price(order.stop_price, "stop price"), tif=tif)


def _children(order: Order, side: Side, parent_id: int, ids: Sequence[int], account: str, outside_rth: bool) -> list[Leg]:
    cid = order.client_order_id
    reverse = Side.SELL if side is Side.BUY else Side.BUY
    qty = wire_number(order.quantity, "quantity", price=False)
    legs: list[Leg] = []
    specs: list[tuple[str, str, Decimal]] = []
    if order.take_profit is not None:
        specs.append((cid + TAKE_PROFIT_SUFFIX, "LMT", order.take_profit))
    if order.stop_loss is not None:
        specs.append((cid + STOP_LOSS_SUFFIX, "STP", order.stop_loss))
    if order.trailing_stop is not None:
        specs.append((cid + TRAILING_STOP_SUFFIX, TRAIL, order.trailing_stop))
    for order_id, (child_id, kind, price) in zip(ids, specs):
        terms: OrderRequest | None
        if kind == "LMT":
            ib: IbOrder = LimitOrder(reverse.value, qty, _price(price, "take profit"), tif="GTC")
            terms = OrderRequest(
                instrument=order.instrument, side=reverse, quantity=order.quantity, type=OrderType.LIMIT, limit_price=price, tag=order.tag,
            )  # fmt: skip
        elif kind == "STP":
            ib = StopOrder(reverse.value, qty, _price(price, "stop loss"), tif="GTC")
            terms = OrderRequest(
                instrument=order.instrument, side=reverse, quantity=order.quantity, type=OrderType.STOP, stop_price=price, tag=order.tag,
            )  # fmt: skip
        else:  # the trailing amount as auxPrice; the trigger (trailStopPrice) is TWS's to set and move
            ib = IbOrder(orderType=TRAIL, action=reverse.value, totalQuantity=qty, auxPrice=_price(price, "trailing stop"), tif="GTC")
            terms = None
        ib.orderId, ib.orderRef, ib.account, ib.parentId = order_id, child_id, account, parent_id
        ib.outsideRth = outside_rth
        if len(specs) > 1:
            ib.ocaGroup, ib.ocaType = f"{cid}-OCA", OCA_REDUCE_WITH_BLOCK
        legs.append(Leg(child_id, ib, cid, terms))
    return legs


def _price(value: Decimal | None, what: str) -> float:
    if value is None:
        raise InvalidPrice(f"{what} is missing")
    if value <= 0:
        raise InvalidPrice(f"{what} {value} must be positive")
    return wire_number(value, what, price=True)


def changes_to_ib(current: IbOrder, changes: OrderChanges) -> IbOrder:
    """A copy of the working IB order with the changed terms; placing it under the same orderId modifies the order."""
    changed = copy.copy(current)
    if changes.quantity is not None:
        if changes.quantity <= 0:
            raise InvalidQuantity(f"quantity {changes.quantity} must be positive")
        changed.totalQuantity = wire_number(changes.quantity, "quantity", price=False)
    if changes.limit_price is not None:
        if current.orderType not in _USES_LIMIT:
            raise InvalidPrice(f"a {current.orderType} order has no limit price to change")
        changed.lmtPrice = _price(changes.limit_price, "limit price")
    if changes.stop_price is not None:
        if current.orderType not in _USES_STOP:
            raise InvalidPrice(f"a {current.orderType} order has no stop price to change")
        changed.auxPrice = _price(changes.stop_price, "stop price")
    changed.transmit = True
    return changed


def order_prices(ib: IbOrder) -> tuple[Decimal | None, Decimal | None]:
    """(limit, stop) of an IB order, each only where its type uses it; a TRAIL order's stop is its current trigger, if known."""
    if ib.orderType == TRAIL:
        return None, decimal_of(ib.trailStopPrice)
    limit = decimal_of(ib.lmtPrice) if ib.orderType in _USES_LIMIT else None
    stop = decimal_of(ib.auxPrice) if ib.orderType in _USES_STOP else None
    return limit, stop


def ib_to_request(ib: IbOrder, instrument: str, tag: str | None = None) -> OrderRequest:
    """The terms of an IB order in our model (a bracket child, an order found at the broker).

    A TRAIL order is a STOP at its current trigger; NotSupported while TWS has not told the trigger.
    """
    kind = OrderType.STOP if ib.orderType == TRAIL else _OUR_TYPES.get(ib.orderType)
    quantity = decimal_of(ib.totalQuantity)
    if kind is None or quantity is None or ib.action not in ("BUY", "SELL"):
        raise NotSupported(f"IB order type {ib.orderType!r} {ib.action} {ib.totalQuantity} has no equivalent here")
    limit, stop = order_prices(ib)
    if ib.orderType == TRAIL and stop is None:
        raise NotSupported(f"IB TRAIL order {ib.orderRef or ib.orderId}: its trigger (trailStopPrice) is not known yet")
    return OrderRequest(
        instrument=instrument, side=Side(ib.action), quantity=quantity, type=kind, limit_price=limit, stop_price=stop,
        time_in_force=_OUR_TIFS.get(ib.tif, TimeInForce.GTC), tag=tag,
    )  # fmt: skip
