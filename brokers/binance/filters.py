"""Binance's symbol filters checked with Decimal before an order is sent (pure).

The filters come from ``exchangeInfo.symbols[].filters``. A value of 0 switches a
rule off. Step and tick rules are counted from the minimum, as Binance defines
them: ``(quantity - minQty) % stepSize == 0``. The checks here:

* ``PRICE_FILTER`` — limit and stop prices within [minPrice, maxPrice], on the tick;
* ``LOT_SIZE`` — every quantity within [minQty, maxQty], on the step;
* ``MARKET_LOT_SIZE`` — the same for MARKET and STOP (stop-loss market) orders;
* ``NOTIONAL`` / legacy ``MIN_NOTIONAL`` — price × quantity within the bounds; a MARKET
  order is valued at the reference (average) price the caller supplies, a STOP order
  at its stop price, and the bounds apply to market orders only when the filter says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from host.trading.errors import InvalidPrice, InvalidQuantity, TradingError
from host.trading.model import OrderType

__all__ = ["Band", "Notional", "SymbolFilters", "check_order", "filters_from_info"]

ZERO = Decimal(0)


@dataclass(frozen=True)
class Band:
    """A min/max/step rule (PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE); 0 switches a part off."""

    minimum: Decimal = ZERO
    maximum: Decimal = ZERO
    step: Decimal = ZERO


@dataclass(frozen=True)
class Notional:
    """A NOTIONAL or MIN_NOTIONAL rule."""

    minimum: Decimal = ZERO
    maximum: Decimal = ZERO
    min_to_market: bool = True
    max_to_market: bool = False
    average_minutes: int = 5


@dataclass(frozen=True)
class SymbolFilters:
    symbol: str
    price: Band | None = None
    lot: Band | None = None
    market_lot: Band | None = None
    notional: Notional | None = None


def _d(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else ZERO


def filters_from_info(info: Mapping[str, Any]) -> SymbolFilters:
    """The filters of one ``exchangeInfo`` symbol entry."""
    found: dict[str, Any] = {}
    for f in info.get("filters") or []:
        kind = f.get("filterType")
        if kind == "PRICE_FILTER":
            found["price"] = Band(_d(f.get("minPrice")), _d(f.get("maxPrice")), _d(f.get("tickSize")))
        elif kind in ("LOT_SIZE", "MARKET_LOT_SIZE"):
            found["lot" if kind == "LOT_SIZE" else "market_lot"] = Band(_d(f.get("minQty")), _d(f.get("maxQty")), _d(f.get("stepSize")))
        elif kind == "NOTIONAL":
            found["notional"] = Notional(
                _d(f.get("minNotional")), _d(f.get("maxNotional")), bool(f.get("applyMinToMarket", True)),
                bool(f.get("applyMaxToMarket", False)), int(f.get("avgPriceMins") or 0),
            )  # fmt: skip
        elif kind == "MIN_NOTIONAL" and "notional" not in found:
            found["notional"] = Notional(_d(f.get("minNotional")), ZERO, bool(f.get("applyToMarket", True)), False, int(f.get("avgPriceMins") or 0))
    return SymbolFilters(symbol=str(info.get("symbol", "")), **found)


def _band_problem(band: Band, value: Decimal) -> str | None:
    if band.minimum > 0 and value < band.minimum:
        return f"below the minimum {band.minimum.normalize():f}"
    if band.maximum > 0 and value > band.maximum:
        return f"above the maximum {band.maximum.normalize():f}"
    if band.step > 0 and (value - band.minimum) % band.step != 0:
        return f"not on the step {band.step.normalize():f}"
    return None


def _quantity_problems(f: SymbolFilters, kind: OrderType, quantity: Decimal) -> Iterable[TradingError]:
    market_like = kind in (OrderType.MARKET, OrderType.STOP)
    for name, band in (("LOT_SIZE", f.lot), ("MARKET_LOT_SIZE", f.market_lot if market_like else None)):
        problem = None if band is None else _band_problem(band, quantity)
        if problem:
            yield InvalidQuantity(f"quantity {quantity.normalize():f} of {f.symbol} is {problem}", broker_code=name, broker_message=f"Filter failure: {name}")


def _price_problems(f: SymbolFilters, prices: Iterable[tuple[str, Decimal | None]]) -> Iterable[TradingError]:
    if f.price is None:
        return
    for what, price in prices:
        problem = None if price is None else _band_problem(f.price, price)
        if problem and price is not None:
            message = f"{what} {price.normalize():f} of {f.symbol} is {problem}"
            yield InvalidPrice(message, broker_code="PRICE_FILTER", broker_message="Filter failure: PRICE_FILTER")


def _notional_problem(f: SymbolFilters, kind: OrderType, quantity: Decimal, price: Decimal | None) -> TradingError | None:
    n = f.notional
    if n is None or price is None:
        return None
    market = kind in (OrderType.MARKET, OrderType.STOP)  # a stop-loss becomes a market order
    value = quantity * price
    name = "NOTIONAL"
    if n.minimum > 0 and value < n.minimum and (n.min_to_market or not market):
        why = f"notional {value.normalize():f} of {f.symbol} is below the minimum {n.minimum.normalize():f}"
        return InvalidQuantity(why, broker_code=name, broker_message=f"Filter failure: {name}")
    if n.maximum > 0 and value > n.maximum and (n.max_to_market or not market):
        why = f"notional {value.normalize():f} of {f.symbol} is above the maximum {n.maximum.normalize():f}"
        return InvalidQuantity(why, broker_code=name, broker_message=f"Filter failure: {name}")
    return None


def check_order(
    f: SymbolFilters,
    kind: OrderType,
    quantity: Decimal,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    reference_price: Decimal | None = None,
) -> TradingError | None:
    """The first filter the order fails, as the error to raise; None if it passes them all.

    ``reference_price`` values a MARKET order for the notional rule (Binance uses the
    average price over the filter's minutes); without one that rule is left to Binance.
    """
    for problem in _quantity_problems(f, kind, quantity):
        return problem
    for problem in _price_problems(f, (("limit price", limit_price), ("stop price", stop_price))):
        return problem
    price = limit_price if limit_price is not None else stop_price if kind is OrderType.STOP else reference_price
    return _notional_problem(f, kind, quantity, price)
