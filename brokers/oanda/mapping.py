"""Our orders → OANDA v20 order JSON, and OANDA's answers, orders and transactions → execution reports (pure).

Order types: MARKET, LIMIT, STOP and MARKET_IF_TOUCHED map to OANDA's types of
the same name (a MARKET_IF_TOUCHED's ``price`` is our ``stop_price``, its
trigger). STOP_LIMIT becomes an OANDA STOP order whose ``priceBound`` is our
limit: it triggers at the stop price and fills at the limit or better, and what
cannot fill within the bound is cancelled (``BOUNDS_VIOLATION``) instead of
resting as a limit order. An OANDA MARKET_IF_TOUCHED found at the broker is
reported as one (trigger in ``stop_price``), unless it has a ``priceBound``
(never sent from here), which has no equivalent and reads as a LIMIT at its
trigger price.

Time in force: a MARKET order is FOK unless it is IOC (OANDA allows only those
two); for the others GTC → GTC, DAY → GFD (OANDA's trading day ends 17:00 New
York), IOC → IOC, FOK → FOK.

Brackets: ``stop_loss`` → ``stopLossOnFill``, ``take_profit`` → ``takeProfitOnFill``;
the orders OANDA creates from them carry the client ids ``<id>-SL`` and ``<id>-TP``
so they can be looked up and reported as the parent's children. ``trailing_stop``
(a price distance) → ``trailingStopLossOnFill`` with client id ``<id>-TSL``. The
order model has no trailing type: a trailing stop found at the broker (such a
child, or one set up elsewhere) is reported as a STOP at its current trigger
price (``trailingStopValue``), which moves as the market does.

An accepted order OANDA kills at once (``orderCancelTransaction`` in a 201) is
REJECTED, with the reason as broker code, unless the reason is the order's own
fill-or-kill terms (``INSUFFICIENT_LIQUIDITY``, ``BOUNDS_VIOLATION``) or a client
request, which leave it CANCELED, or ``TIME_IN_FORCE_EXPIRED`` (EXPIRED). Once
part of it filled, the rest is CANCELED whatever the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from brokers.base import ExecutionReport
from host.trading.model import ErrorInfo, Fill, Instrument, Order, OrderChanges, OrderRequest, OrderType, Side, TimeInForce
from host.trading.states import OrderStatus

from .errors import MalformedAnswer, error_from_reason

__all__ = [
    "CHILD_SUFFIX",
    "answer_to_report",
    "cancel_error",
    "cancel_report",
    "cancel_status",
    "child_parent",
    "client_id",
    "decimal_at",
    "fill_report",
    "fill_to_model",
    "number_text",
    "order_json_to_report",
    "order_json_to_terms",
    "order_to_body",
    "parse_time",
    "replacement_body",
    "trim",
]

ZERO = Decimal(0)
S = OrderStatus

CHILD_SUFFIX: dict[str, str] = {"STOP_LOSS": "-SL", "TAKE_PROFIT": "-TP", "TRAILING_STOP_LOSS": "-TSL"}
"""OANDA's order type of a bracket child → the suffix of its client id after the parent's."""

_TYPES: dict[str, str] = {"MARKET": "MARKET", "LIMIT": "LIMIT", "STOP": "STOP", "STOP_LIMIT": "STOP", "MARKET_IF_TOUCHED": "MARKET_IF_TOUCHED"}
_PENDING_TIF: dict[str, str] = {"GTC": "GTC", "DAY": "GFD", "IOC": "IOC", "FOK": "FOK"}
_OUR_TIF: dict[str, TimeInForce] = {"GTC": TimeInForce.GTC, "GTD": TimeInForce.GTC, "GFD": TimeInForce.DAY, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}
_CANCELLED_NOT_REJECTED = frozenset({"CLIENT_REQUEST", "CLIENT_REQUEST_REPLACED", "LINKED_TRADE_CLOSED", "INSUFFICIENT_LIQUIDITY", "BOUNDS_VIOLATION", "MIGRATION"})
_NO_FAULT = frozenset({"CLIENT_REQUEST", "CLIENT_REQUEST_REPLACED", "TIME_IN_FORCE_EXPIRED", "LINKED_TRADE_CLOSED"})
_AUDIT_KEYS = (
    "id", "type", "orderID", "clientOrderID", "instrument", "units", "price", "priceBound", "timeInForce", "reason",
    "time", "tradeOpened", "tradesClosed", "tradeReduced", "pl", "financing", "commission", "fullVWAP",
    "replacesOrderID", "replacedByOrderID", "tradeID", "state",
)  # fmt: skip
_FRACTION = re.compile(r"\.(\d+)")


# ------------------------------------------------------------------ values


def number_text(value: Decimal, places: int | None = None) -> str:
    """``value`` as OANDA wants a number: a plain decimal string, at ``places`` decimals when that is exact."""
    if places is not None:
        quantized = value.quantize(Decimal(1).scaleb(-places))
        if quantized == value:
            return f"{quantized:f}"
    return f"{value.normalize():f}"


def decimal_at(data: Mapping[str, Any], key: str) -> Decimal:
    """``data[key]`` as a Decimal; MalformedAnswer if it is missing or not a number."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise MalformedAnswer(f"{key!r} is missing or not a number: {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise MalformedAnswer(f"{key!r} is not a number: {value!r}") from None
    if not number.is_finite():
        raise MalformedAnswer(f"{key!r} is not a finite number: {value!r}")
    return number


def parse_time(value: Any) -> datetime:
    """An OANDA time (RFC 3339 with nanoseconds, or UNIX seconds) as a UTC datetime."""
    if not isinstance(value, str) or not value:
        raise MalformedAnswer(f"time is missing or not a string: {value!r}")
    try:
        if value[0].isdigit() and "T" not in value:
            return datetime.fromtimestamp(float(value), UTC)
        text = _FRACTION.sub(lambda m: "." + m.group(1)[:6], value.replace("Z", "+00:00"), count=1)
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise MalformedAnswer(f"time {value!r} is not RFC 3339") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _places(step: Decimal | None) -> int | None:
    if step is None:
        return None
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else None


def trim(transaction: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The audit-worthy part of a transaction."""
    if not transaction:
        return None
    return {k: transaction[k] for k in _AUDIT_KEYS if k in transaction}


def client_id(data: Mapping[str, Any]) -> str | None:
    """The client id OANDA holds for an order (``clientExtensions.id``), if it has one."""
    extensions = data.get("clientExtensions")
    if isinstance(extensions, Mapping) and isinstance(extensions.get("id"), str):
        return str(extensions["id"])
    return None


def child_parent(cid: str, oanda_type: str) -> str | None:
    """The parent's client id of a bracket child named ``<parent><suffix>``; None for any other order."""
    suffix = CHILD_SUFFIX.get(oanda_type)
    if suffix and cid.endswith(suffix) and len(cid) > len(suffix):
        return cid[: -len(suffix)]
    return None


# ------------------------------------------------------------------ orders → OANDA


def _order_spec(order: Order, units: Decimal, limit: Decimal | None, stop: Decimal | None, instrument: Instrument | None) -> dict[str, Any]:
    kind = str(order.type)
    prices = _places(instrument.price_increment if instrument else None)
    signed = units if order.side == Side.BUY else -units
    spec: dict[str, Any] = {
        "type": _TYPES[kind],
        "instrument": order.instrument,
        "units": number_text(signed, _places(instrument.quantity_increment if instrument else None)),
        "positionFill": "DEFAULT",
    }
    tif = str(order.time_in_force)
    if kind == "MARKET":
        spec["timeInForce"] = "IOC" if tif == "IOC" else "FOK"
    else:
        price = limit if kind == "LIMIT" else stop
        if price is None or (kind == "STOP_LIMIT" and limit is None):
            raise ValueError(f"a {kind} order needs {'limit_price' if kind == 'LIMIT' else 'stop_price and limit_price' if kind == 'STOP_LIMIT' else 'stop_price'}")
        spec["timeInForce"] = _PENDING_TIF[tif]
        spec["price"] = number_text(price, prices)
        if kind == "STOP_LIMIT" and limit is not None:
            spec["priceBound"] = number_text(limit, prices)
    cid = order.client_order_id
    if order.stop_loss is not None:
        spec["stopLossOnFill"] = {"price": number_text(order.stop_loss, prices), "timeInForce": "GTC", "clientExtensions": {"id": cid + CHILD_SUFFIX["STOP_LOSS"]}}
    if order.take_profit is not None:
        spec["takeProfitOnFill"] = {"price": number_text(order.take_profit, prices), "timeInForce": "GTC", "clientExtensions": {"id": cid + CHILD_SUFFIX["TAKE_PROFIT"]}}
    if order.trailing_stop is not None:
        spec["trailingStopLossOnFill"] = {
            "distance": number_text(order.trailing_stop, prices), "timeInForce": "GTC", "clientExtensions": {"id": cid + CHILD_SUFFIX["TRAILING_STOP_LOSS"]},
        }
    return spec


def order_to_body(order: Order, instrument: Instrument | None) -> dict[str, Any]:
    """The body of ``POST /v3/accounts/{id}/orders``; our client order id travels in ``clientExtensions.id``."""
    spec = _order_spec(order, order.quantity, order.limit_price, order.stop_price, instrument)
    extensions = {"id": order.client_order_id}
    if order.tag:
        extensions["tag"] = order.tag
    spec["clientExtensions"] = extensions
    return {"order": spec}


def replacement_body(order: Order, changes: OrderChanges, instrument: Instrument | None) -> dict[str, Any]:
    """The body of ``PUT .../orders/{specifier}``: the whole order again, with ``changes`` and the units still open.

    clientExtensions are left out: OANDA carries them over to the replacing order.
    """
    total = changes.quantity if changes.quantity is not None else order.quantity
    remaining = total - order.filled_quantity
    if remaining <= 0:
        raise ValueError(f"quantity {total} is not above the {order.filled_quantity} already filled")
    limit = changes.limit_price if changes.limit_price is not None else order.limit_price
    stop = changes.stop_price if changes.stop_price is not None else order.stop_price
    return {"order": _order_spec(order, remaining, limit, stop, instrument)}


# ------------------------------------------------------------------ OANDA → reports


def fill_to_model(transaction: Mapping[str, Any]) -> Fill:
    """An ORDER_FILL transaction as one Fill; its transaction id is the trade id the router counts once.

    The price is the units-weighted price of the trades it opened, reduced and
    closed (OANDA's official per-unit prices), else ``fullVWAP``, else ``price``.
    """
    units = abs(decimal_at(transaction, "units"))
    parts: list[Mapping[str, Any]] = [p for p in (transaction.get("tradeOpened"), transaction.get("tradeReduced")) if isinstance(p, Mapping)]
    closed = transaction.get("tradesClosed")
    parts.extend(p for p in (closed if isinstance(closed, list) else []) if isinstance(p, Mapping))
    if parts and all("price" in p and "units" in p for p in parts):
        weights = [(abs(decimal_at(p, "units")), decimal_at(p, "price")) for p in parts]
        size = sum((w for w, _ in weights), ZERO)
        price = sum((w * p for w, p in weights), ZERO) / size if size else decimal_at(transaction, "price")
    else:
        price = decimal_at(transaction, "fullVWAP" if "fullVWAP" in transaction else "price")
    commission = decimal_at(transaction, "commission") if "commission" in transaction else ZERO
    fill_id = transaction.get("id")
    if not isinstance(fill_id, str) or not fill_id:
        raise MalformedAnswer("an ORDER_FILL transaction has no id")
    return Fill(trade_id=fill_id, quantity=units, price=price, commission=abs(commission), at=parse_time(transaction.get("time")))


def cancel_status(reason: str, filled: bool) -> OrderStatus:
    """Where an order OANDA cancelled for ``reason`` ends: EXPIRED, CANCELED or REJECTED."""
    if reason == "TIME_IN_FORCE_EXPIRED":
        return S.EXPIRED
    if filled or reason in _CANCELLED_NOT_REJECTED:
        return S.CANCELED
    return S.REJECTED


def cancel_error(reason: str) -> ErrorInfo | None:
    """Why OANDA cancelled an order, as the report carries it; None for a client request, an expiry or a closed trade."""
    if reason in _NO_FAULT:
        return None
    error = error_from_reason(reason, "the order")
    return ErrorInfo(code=str(error.code), message=error.message, broker_code=error.broker_code)


def answer_to_report(
    cid: str,
    answer: Mapping[str, Any],
    *,
    total: Decimal,
    filled_before: Decimal = ZERO,
    cancel_key: str = "orderCancelTransaction",
) -> ExecutionReport:
    """The report of a 201 answer to a create (or, with ``cancel_key="replacingOrderCancelTransaction"``, a replace).

    ``total`` is the order's whole quantity and ``filled_before`` what had filled
    before this request; the answer's fill and cancel decide the status.
    """
    create = answer.get("orderCreateTransaction")
    if not isinstance(create, Mapping) or not isinstance(create.get("id"), str):
        raise MalformedAnswer("a 201 answer without orderCreateTransaction.id")
    fill_txn = answer.get("orderFillTransaction")
    cancel_txn = answer.get(cancel_key)
    fills = (fill_to_model(fill_txn),) if isinstance(fill_txn, Mapping) else ()
    filled = filled_before + sum((f.quantity for f in fills), ZERO)
    error = None
    if isinstance(cancel_txn, Mapping):
        reason = str(cancel_txn.get("reason") or "UNKNOWN")
        status, raw_status, error = cancel_status(reason, filled > 0), f"CANCELLED {reason}", cancel_error(reason)
    elif fills:
        status = S.FILLED if filled >= total else S.PARTIALLY_FILLED
        raw_status = "FILLED" if status is S.FILLED else "PARTIALLY_FILLED"
    else:
        status, raw_status = (S.PARTIALLY_FILLED if filled_before else S.ACCEPTED), "PENDING"
    last = cancel_txn if isinstance(cancel_txn, Mapping) else fill_txn if isinstance(fill_txn, Mapping) else create
    raw = {k: trim(v) for k, v in answer.items() if k.endswith("Transaction") and isinstance(v, Mapping)}
    raw["lastTransactionID"] = answer.get("lastTransactionID")
    return ExecutionReport(
        client_order_id=cid, status=status, raw_status=raw_status, broker_order_id=str(create["id"]), fills=fills,
        error=error, at=parse_time(last.get("time")), raw=raw,
    )  # fmt: skip


def fill_report(transaction: Mapping[str, Any], cid: str, *, complete: bool) -> ExecutionReport:
    """The report of an ORDER_FILL seen on its own (the transaction stream); ``complete`` if the order is now filled."""
    fill = fill_to_model(transaction)
    return ExecutionReport(
        client_order_id=cid, status=S.FILLED if complete else S.PARTIALLY_FILLED,
        raw_status=f"ORDER_FILL {transaction.get('reason') or ''}".strip(), broker_order_id=_text(transaction.get("orderID")),
        fills=(fill,), at=fill.at, raw={"orderFillTransaction": trim(transaction)},
    )  # fmt: skip


def cancel_report(transaction: Mapping[str, Any], cid: str, *, filled: bool) -> ExecutionReport:
    """The report of an ORDER_CANCEL (a cancel's answer or a stream line); ``filled`` if part of the order had filled."""
    reason = str(transaction.get("reason") or "UNKNOWN")
    return ExecutionReport(
        client_order_id=cid, status=cancel_status(reason, filled), raw_status=f"CANCELLED {reason}",
        broker_order_id=_text(transaction.get("orderID")), error=cancel_error(reason), at=parse_time(transaction.get("time")),
        raw={"orderCancelTransaction": trim(transaction)},
    )  # fmt: skip


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None


def _prices(data: Mapping[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    """(limit, stop) of an OANDA order as our terms see them."""
    kind = data.get("type")
    if kind in ("LIMIT", "TAKE_PROFIT"):
        return decimal_at(data, "price"), None
    if kind == "MARKET_IF_TOUCHED":  # one with a priceBound (never sent from here) reads as a LIMIT at its trigger, as it did before
        return (decimal_at(data, "price"), None) if data.get("priceBound") else (None, decimal_at(data, "price"))
    if kind == "STOP":
        bound = decimal_at(data, "priceBound") if data.get("priceBound") else None
        return bound, decimal_at(data, "price")
    if kind == "STOP_LOSS":
        return None, decimal_at(data, "price")
    if kind == "TRAILING_STOP_LOSS" and data.get("trailingStopValue"):
        return None, decimal_at(data, "trailingStopValue")
    return None, None


def order_json_to_report(
    data: Mapping[str, Any],
    cid: str,
    *,
    fills: Iterable[Fill] = (),
    cancel_reason: str | None = None,
    terms: OrderRequest | None = None,
) -> ExecutionReport:
    """The report of an OANDA Order object (a lookup, a pending order) with the fills found for it."""
    state = str(data.get("state") or "")
    fills = tuple(fills)
    filled = sum((f.quantity for f in fills), ZERO)
    error = None
    if state == "FILLED":
        status = S.FILLED
    elif state == "CANCELLED":
        status = cancel_status(cancel_reason or "UNKNOWN", filled > 0)
        error = cancel_error(cancel_reason or "UNKNOWN")
    elif state in ("PENDING", "TRIGGERED"):
        status = S.PARTIALLY_FILLED if filled else S.ACCEPTED
    else:
        raise MalformedAnswer(f"order {data.get('id')!r} has an unknown state {state!r}")
    kind = str(data.get("type") or "")
    limit, stop = _prices(data)
    raw_status = f"{kind} {state}" + (f" {cancel_reason}" if cancel_reason else "")
    quantity = abs(decimal_at(data, "units")) if "units" in data else (terms.quantity if terms else None)
    at_key = {"FILLED": "filledTime", "CANCELLED": "cancelledTime"}.get(state, "createTime")
    parent = child_parent(cid, kind)
    return ExecutionReport(
        client_order_id=cid, status=status, raw_status=raw_status.strip(), broker_order_id=str(data.get("id")), fills=fills,
        error=error, quantity=quantity, limit_price=limit, stop_price=stop,
        at=parse_time(data.get(at_key) or data.get("createTime")), raw={"order": trim(data)},
        parent_client_order_id=parent, terms=terms,
    )  # fmt: skip


def order_json_to_terms(data: Mapping[str, Any], trade: Mapping[str, Any] | None = None) -> OrderRequest | None:
    """What an OANDA order is, in our terms (for a bracket child or an order placed elsewhere).

    An order on a trade (stop loss, take profit, trailing stop) has neither
    instrument nor units of its own: it closes the ``trade`` (an OANDA Trade,
    ``instrument`` and signed ``currentUnits``); None without it.
    """
    kind = str(data.get("type") or "")
    if "units" in data:
        signed, instrument = decimal_at(data, "units"), data.get("instrument")
    elif trade is not None:
        signed, instrument = -decimal_at(trade, "currentUnits"), trade.get("instrument")
    else:
        return None
    if not signed or not isinstance(instrument, str):
        return None
    limit, stop = _prices(data)
    if kind == "MARKET_IF_TOUCHED" and limit is None:
        ours = OrderType.MARKET_IF_TOUCHED
    elif kind in ("LIMIT", "MARKET_IF_TOUCHED", "TAKE_PROFIT"):
        ours = OrderType.LIMIT
    elif kind in ("STOP", "STOP_LOSS", "TRAILING_STOP_LOSS"):
        ours = OrderType.STOP_LIMIT if limit is not None and stop is not None else OrderType.STOP
    else:
        ours, limit, stop = OrderType.MARKET, None, None
    if (ours is OrderType.LIMIT and limit is None) or (ours in (OrderType.STOP, OrderType.MARKET_IF_TOUCHED) and stop is None):
        return None
    extensions = data.get("clientExtensions")
    tag = extensions.get("tag") if isinstance(extensions, Mapping) else None
    try:
        return OrderRequest(
            instrument=instrument, side=Side.BUY if signed > 0 else Side.SELL, quantity=abs(signed), type=ours,
            limit_price=limit, stop_price=stop, time_in_force=_OUR_TIF.get(str(data.get("timeInForce")), TimeInForce.GTC),
            tag=str(tag)[:64] if tag else None,
        )  # fmt: skip
    except ValidationError:  # an order placed elsewhere that our model cannot express (a name or size out of range)
        return None
