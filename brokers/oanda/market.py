"""OANDA instruments, prices, positions and the account summary → our model (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from host.trading.model import Account, Instrument, Position, Quote

from .errors import MalformedAnswer
from .mapping import decimal_at, parse_time

__all__ = ["instrument_to_model", "position_to_model", "price_to_quote", "summary_to_account"]

ZERO = Decimal(0)
_KINDS = {"CURRENCY": "fx", "CFD": "cfd", "METAL": "metal"}


def _int_at(data: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise MalformedAnswer(f"{key!r} is missing or not an integer: {value!r}")
    try:
        return int(value)
    except ValueError:
        raise MalformedAnswer(f"{key!r} is not an integer: {value!r}") from None


def instrument_to_model(data: Mapping[str, Any]) -> Instrument:
    """An OANDA Instrument: the tick is one unit of ``displayPrecision``, the lot one of ``tradeUnitsPrecision``."""
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedAnswer(f"an instrument without a name: {data!r}"[:200])
    tick = Decimal(1).scaleb(-_int_at(data, "displayPrecision"))
    lot = Decimal(1).scaleb(-_int_at(data, "tradeUnitsPrecision", 0))
    maximum = decimal_at(data, "maximumOrderUnits") if data.get("maximumOrderUnits") else None
    kind = str(data.get("type") or "")
    extra: dict[str, Any] = {"oanda_type": kind, "display_name": data.get("displayName")}
    if "pipLocation" in data:
        extra["pip"] = str(Decimal(1).scaleb(_int_at(data, "pipLocation")))
    for key, label in (("marginRate", "margin_rate"), ("minimumTrailingStopDistance", "min_trailing_stop_distance")):
        if data.get(key) is not None:
            extra[label] = str(data[key])
    return Instrument(
        symbol=name,
        price_increment=tick,
        quantity_increment=lot,
        min_quantity=decimal_at(data, "minimumTradeSize") if data.get("minimumTradeSize") else lot,
        max_quantity=maximum if maximum else None,
        currency=name.rsplit("_", 1)[-1],
        kind=_KINDS.get(kind, kind.lower() or "fx"),
        extra=extra,
    )


def _touch(data: Mapping[str, Any], side: str, closeout: str) -> tuple[Decimal, Decimal | None]:
    levels = data.get(side)
    if isinstance(levels, list) and levels and isinstance(levels[0], Mapping):
        top = levels[0]
        size = top.get("liquidity")
        return decimal_at(top, "price"), Decimal(str(size)) if isinstance(size, (int, str)) and not isinstance(size, bool) else None
    return decimal_at(data, closeout), None  # no book (a closed market): the closeout price is all there is


def price_to_quote(data: Mapping[str, Any], broker: str) -> Quote:
    """A PRICE (stream line or ``prices[]`` entry): the best bid and ask with their liquidity."""
    bid, bid_size = _touch(data, "bids", "closeoutBid")
    ask, ask_size = _touch(data, "asks", "closeoutAsk")
    instrument = data.get("instrument")
    if not isinstance(instrument, str):
        raise MalformedAnswer("a price without an instrument")
    return Quote(broker=broker, instrument=instrument, bid=bid, ask=ask, at=parse_time(data.get("time")), bid_size=bid_size, ask_size=ask_size)


def _side(data: Mapping[str, Any], key: str) -> tuple[Decimal, Decimal]:
    side = data.get(key)
    if not isinstance(side, Mapping):
        return ZERO, ZERO
    units = decimal_at(side, "units") if side.get("units") is not None else ZERO
    return units, decimal_at(side, "averagePrice") if units and side.get("averagePrice") else ZERO


def position_to_model(data: Mapping[str, Any], broker: str, market_price: Decimal | None = None) -> Position:
    """An OANDA Position: net units = long units + short units (short units are negative).

    With both sides open (a hedging account) the average price is the larger side's.
    P&L is in the account currency, as OANDA reports it.
    """
    long_units, long_price = _side(data, "long")
    short_units, short_price = _side(data, "short")
    net = long_units + short_units
    average = long_price if long_units >= -short_units else short_price
    return Position(
        broker=broker,
        instrument=str(data.get("instrument") or ""),
        quantity=net,
        average_price=average,
        realised_pnl=decimal_at(data, "pl") if data.get("pl") is not None else ZERO,
        unrealised_pnl=decimal_at(data, "unrealizedPL") if data.get("unrealizedPL") is not None else ZERO,
        market_price=market_price,
    )


def summary_to_account(data: Mapping[str, Any], broker: str) -> Account:
    """An OANDA AccountSummary: balance, NAV as equity, margin used, margin available as buying power."""
    return Account(
        broker=broker,
        currency=str(data.get("currency") or ""),
        balance=decimal_at(data, "balance"),
        equity=decimal_at(data, "NAV"),
        realised_pnl=decimal_at(data, "pl") if data.get("pl") is not None else ZERO,
        unrealised_pnl=decimal_at(data, "unrealizedPL"),
        commission=decimal_at(data, "commission") if data.get("commission") is not None else ZERO,
        margin_used=decimal_at(data, "marginUsed"),
        buying_power=decimal_at(data, "marginAvailable") if data.get("marginAvailable") is not None else None,
    )
