"""ccxt's unified dicts → the router's model (pure): orders, trades, balances, tickers, markets.

ccxt is told to keep numbers as strings (see :mod:`.exchange`), so every amount
here goes from the exchange's text to :class:`~decimal.Decimal` without a float.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from brokers.base import ExecutionReport
from host.trading.model import Account, ErrorInfo, Fill, Instrument, Position, Quote
from host.trading.states import OrderStatus

__all__ = [
    "ZERO",
    "account_from_balances",
    "commission_in_quote",
    "dec",
    "fill_id",
    "market_to_instrument",
    "ms_to_datetime",
    "order_to_report",
    "plain",
    "positions_from_balances",
    "settle_status",
    "ticker_to_quote",
    "trade_to_fill",
    "trim",
]

ZERO = Decimal(0)
S = OrderStatus


def dec(value: Any) -> Decimal | None:
    """A Decimal from ccxt's text (or an int); None for None, '' and anything unreadable."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def plain(value: Decimal) -> str:
    """A Decimal as exchanges want it on the wire: no exponent, no trailing zeros ("0.001", "10")."""
    text = format(value.normalize(), "f")
    return text


def ms_to_datetime(ms: Any) -> datetime | None:
    """UTC datetime from epoch milliseconds (int or text); None if absent."""
    number = dec(ms)
    return None if number is None else datetime.fromtimestamp(float(number) / 1000, UTC)


def trim(info: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The exchange's own fields worth auditing, those present only."""
    return {k: info[k] for k in keys if k in info and info[k] not in (None, "")}


def fill_id(market_id: str, order_id: str, trade_id: str) -> str:
    """Our id of one execution: unique across the exchange's symbols and both sides of a self-trade."""
    return f"{market_id}:{order_id}:{trade_id}"


def commission_in_quote(cost: Decimal | None, currency: str | None, price: Decimal, base: str, quote: str) -> Decimal:
    """A fee in the quote currency: as is, base-currency fees at the fill price, other assets (BNB) as 0."""
    if cost is None:
        return ZERO
    if currency is None or currency == quote:
        return cost
    if currency == base:
        return cost * price
    return ZERO


def trade_to_fill(trade: Mapping[str, Any], *, market: Mapping[str, Any], order_id: str, fallback_at: datetime) -> Fill | None:
    """One ccxt trade of one of our orders as a Fill; None if it has no id, amount or price."""
    trade_id, quantity, price = trade.get("id"), dec(trade.get("amount")), dec(trade.get("price"))
    if not trade_id or quantity is None or price is None or quantity <= 0:
        return None
    fee = trade.get("fee") or {}
    commission = commission_in_quote(dec(fee.get("cost")), fee.get("currency"), price, str(market["base"]), str(market["quote"]))
    return Fill(
        trade_id=fill_id(str(market["id"]), order_id, str(trade_id)),
        quantity=quantity,
        price=price,
        commission=commission,
        at=ms_to_datetime(trade.get("timestamp")) or fallback_at,
    )


def settle_status(status: OrderStatus, filled: Decimal, amount: Decimal | None) -> OrderStatus:
    """A working order with executions is PARTIALLY_FILLED; one whose executions reach its amount is FILLED."""
    if status in (S.ACCEPTED, S.SUBMITTED, S.PARTIALLY_FILLED) and filled > 0:
        return S.FILLED if amount is not None and filled >= amount else S.PARTIALLY_FILLED
    return status


def order_to_report(
    order: Mapping[str, Any],
    *,
    client_order_id: str,
    status: OrderStatus,
    raw_status: str,
    market: Mapping[str, Any],
    trades: Iterable[Mapping[str, Any]],
    raw: dict[str, Any],
    now: datetime,
    error: ErrorInfo | None = None,
) -> ExecutionReport:
    """ccxt's unified order (and its trades) as our report; ``status`` comes from the exchange's own table."""
    order_id = str(order.get("id") or "")
    at = ms_to_datetime(order.get("lastUpdateTimestamp")) or ms_to_datetime(order.get("timestamp")) or now
    fills = tuple(f for f in (trade_to_fill(t, market=market, order_id=order_id, fallback_at=at) for t in trades) if f is not None)
    amount = dec(order.get("amount"))
    filled = dec(order.get("filled")) or ZERO
    return ExecutionReport(
        client_order_id=client_order_id,
        status=settle_status(status, filled, amount),
        raw_status=raw_status,
        broker_order_id=order_id or None,
        fills=fills,
        error=error,
        quantity=amount if amount else None,
        limit_price=dec(order.get("price")) if order.get("type") == "limit" else None,
        stop_price=dec(order.get("triggerPrice")),
        at=at,
        raw=raw,
    )


def ticker_to_quote(ticker: Mapping[str, Any], *, broker: str, instrument: str, now: datetime) -> Quote | None:
    """A ccxt ticker (best bid/ask) as a Quote; None if either side is missing."""
    bid, ask = dec(ticker.get("bid")), dec(ticker.get("ask"))
    if bid is None or ask is None:
        return None
    return Quote(
        broker=broker,
        instrument=instrument,
        bid=bid,
        ask=ask,
        at=ms_to_datetime(ticker.get("timestamp")) or now,
        bid_size=dec(ticker.get("bidVolume")),
        ask_size=dec(ticker.get("askVolume")),
    )


def market_to_instrument(market: Mapping[str, Any]) -> Instrument | None:
    """A ccxt spot market (precision in tick sizes) as our Instrument; None without tick and step."""
    precision, limits = market.get("precision") or {}, market.get("limits") or {}
    tick, step = dec(precision.get("price")), dec(precision.get("amount"))
    if tick is None or step is None or tick <= 0 or step <= 0:
        return None
    amount, cost = limits.get("amount") or {}, limits.get("cost") or {}
    minimum = dec(amount.get("min"))
    maximum = dec(amount.get("max"))
    min_notional = dec(cost.get("min"))
    return Instrument(
        symbol=str(market["symbol"]),
        price_increment=tick,
        quantity_increment=step,
        min_quantity=minimum if minimum and minimum > 0 else step,
        max_quantity=maximum if maximum and maximum > 0 else None,
        min_notional=min_notional if min_notional and min_notional > 0 else None,
        currency=str(market["quote"]),
        kind="crypto",
        extra={"id": str(market["id"]), "base": str(market["base"])},
    )


def _holdings(balances: Mapping[str, Any]) -> dict[str, Decimal]:
    totals = balances.get("total") or {}
    held = {}
    for asset, amount in totals.items():
        number = dec(amount)
        if number:
            held[str(asset)] = number
    return held


def positions_from_balances(
    balances: Mapping[str, Any], *, broker: str, quote: str, symbol_of: Callable[[str], str | None], marks: Mapping[str, Decimal]
) -> list[Position]:
    """Spot holdings as positions: every non-zero asset but the account currency, against it where a market exists.

    A spot exchange keeps no cost basis, so average price and P&L are 0; the mark is the
    market's mid when one was fetched.
    """
    result = []
    for asset, quantity in sorted(_holdings(balances).items()):
        if asset == quote:
            continue
        symbol = symbol_of(asset)
        result.append(Position(
            broker=broker, instrument=symbol or asset, quantity=quantity, average_price=ZERO,
            realised_pnl=ZERO, unrealised_pnl=ZERO, market_price=marks.get(symbol) if symbol else None,
        ))  # fmt: skip
    return result


def account_from_balances(
    balances: Mapping[str, Any], *, broker: str, quote: str, symbol_of: Callable[[str], str | None], marks: Mapping[str, Decimal]
) -> Account:
    """Cash is the account currency's balance; equity adds every other holding at its market's mid (0 if none)."""
    held = _holdings(balances)
    free = dec((balances.get("free") or {}).get(quote))
    cash = held.get(quote, ZERO)
    equity = cash
    for asset, quantity in held.items():
        symbol = symbol_of(asset) if asset != quote else None
        if symbol is not None and symbol in marks:
            equity += quantity * marks[symbol]
    return Account(
        broker=broker, currency=quote, balance=cash, equity=equity, realised_pnl=ZERO,
        unrealised_pnl=ZERO, commission=ZERO, buying_power=free if free is not None else cash,
    )  # fmt: skip
