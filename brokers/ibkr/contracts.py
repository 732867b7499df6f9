"""Our instrument names and specs ↔ IB contracts, and IB contract details → trading rules (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ib_async import Contract, ContractDetails, Crypto, Forex, Stock

from host.trading.model import Instrument

from .options import DEFAULT_EXCHANGES, IbkrInstrument, split_pair

__all__ = ["InstrumentRules", "contract_for", "decimal_of", "instrument_for", "rules_from_details", "symbol_for"]

_KINDS = {"forex": "fx", "stock": "stock", "crypto": "crypto"}
_SEC_TYPES = {"CASH": "forex", "STK": "stock", "CRYPTO": "crypto"}
_HUGE = Decimal("1e15")
"""IB fills unknown sizes with huge sentinels (Double.MAX_VALUE, Long.MAX_VALUE); nothing real is that big."""


@dataclass(frozen=True, slots=True)
class InstrumentRules:
    """Tick, lot and minimum of an instrument, from TWS's contract details or from defaults."""

    tick: Decimal
    lot: Decimal
    min: Decimal


DEFAULT_RULES = {
    "forex": InstrumentRules(Decimal("0.00005"), Decimal(1), Decimal(1)),
    "stock": InstrumentRules(Decimal("0.01"), Decimal(1), Decimal(1)),
    "crypto": InstrumentRules(Decimal("0.01"), Decimal("0.00000001"), Decimal("0.00000001")),
}
"""Used until (or when) TWS cannot be asked; forex ticks of a JPY pair are 100 times larger."""


def decimal_of(value: float | int | str | Decimal | None) -> Decimal | None:
    """An IB number as an exact Decimal (through its shortest repr); None if unset, NaN or a sentinel."""
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        number = value
    else:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    if not number.is_finite() or abs(number) >= _HUGE:
        return None
    return Decimal(f"{number.normalize():f}") if number else Decimal(0)


def names_of(name: str, spec: IbkrInstrument) -> tuple[str, str]:
    """(IB symbol, currency) of an instrument, from the spec or its name."""
    if spec.kind == "stock":
        return spec.symbol or name, spec.currency or "USD"
    pair = split_pair(name)
    symbol = spec.symbol or (pair[0] if pair else name)
    currency = spec.currency or (pair[1] if pair else "USD")
    return symbol, currency


def contract_for(name: str, spec: IbkrInstrument, con_id: int = 0) -> Contract:
    """The ib_async contract for one configured instrument (``con_id`` once TWS has qualified it)."""
    symbol, currency = names_of(name, spec)
    exchange = spec.exchange or DEFAULT_EXCHANGES[spec.kind]
    con_id = con_id or spec.con_id or 0
    if spec.kind == "forex":
        return Forex(symbol=symbol, currency=currency, exchange=exchange, conId=con_id)
    if spec.kind == "crypto":
        return Crypto(symbol, exchange, currency, conId=con_id)
    return Stock(symbol, exchange, currency, primaryExchange=spec.primary_exchange or "", conId=con_id)


def symbol_for(contract: Contract, by_con_id: Mapping[int, str]) -> str:
    """Our name for an IB contract: the configured instrument with its id, else one built like the configured names."""
    known = by_con_id.get(contract.conId)
    if known is not None:
        return known
    kind = _SEC_TYPES.get(contract.secType)
    if kind in ("forex", "crypto"):
        return f"{contract.symbol}_{contract.currency}"
    if kind == "stock":
        return contract.symbol.replace(" ", "_")
    return contract.localSymbol or f"{contract.symbol}_{contract.secType}"


def default_rules(name: str, spec: IbkrInstrument) -> InstrumentRules:
    rules = DEFAULT_RULES[spec.kind]
    if spec.kind == "forex" and names_of(name, spec)[1] == "JPY":
        rules = InstrumentRules(rules.tick * 100, rules.lot, rules.min)
    return rules


def rules_from_details(details: ContractDetails | None, fallback: InstrumentRules) -> InstrumentRules:
    """Tick from ``minTick``, lot from ``sizeIncrement`` and minimum from ``minSize``; the fallback for what is missing."""
    if details is None:
        return fallback
    tick = _positive(details.minTick) or fallback.tick
    lot = _positive(details.sizeIncrement) or _positive(details.minSize) or fallback.lot
    minimum = _positive(details.minSize) or lot
    return InstrumentRules(tick, lot, minimum)


def instrument_for(name: str, spec: IbkrInstrument, rules: InstrumentRules, contract: Contract) -> Instrument:
    """What the router checks orders against; configured tick, lot and min win over TWS's."""
    symbol, currency = names_of(name, spec)
    lot = spec.lot or rules.lot
    extra: dict[str, Any] = {"con_id": contract.conId or None, "exchange": contract.exchange, "ib_symbol": symbol}
    return Instrument(
        symbol=name,
        price_increment=spec.tick or rules.tick,
        quantity_increment=lot,
        min_quantity=spec.min or max(rules.min, lot),
        currency=currency,
        kind=_KINDS[spec.kind],
        extra=extra,
    )


def _positive(value: float) -> Decimal | None:
    number = decimal_of(value)
    return number if number is not None and number > 0 else None
