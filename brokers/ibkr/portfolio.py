"""TWS account values and positions → our Account and Positions (pure)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from ib_async import AccountValue, Contract, PortfolioItem
from ib_async import Position as IbPosition

from host.trading.errors import ServiceUnavailable
from host.trading.model import Account, Position

from .contracts import decimal_of

__all__ = ["account_from_values", "commission_in", "positions_from"]

ZERO = Decimal(0)
BASE = "BASE"
"""The currency the $LEDGER rows use for totals converted to the account's base currency."""


def _values(values: Iterable[AccountValue], account: str) -> dict[tuple[str, str], str]:
    return {(v.tag, v.currency): v.value for v in values if v.account == account}


def _amount(by: dict[tuple[str, str], str], tag: str, currencies: tuple[str, ...]) -> Decimal | None:
    for currency in currencies:
        value = by.get((tag, currency))
        if value:
            try:
                return decimal_of(value)
            except ArithmeticError:
                return None
    return None


def account_from_values(values: Iterable[AccountValue], *, broker: str, account: str, commission: Decimal) -> Account:
    """Cash, net liquidation, P&L and buying power of ``account`` from its summary; ServiceUnavailable if TWS sent too little."""
    by = _values(values, account)
    currency = next((cur for (tag, cur) in by if tag == "NetLiquidation" and cur and cur != BASE), None)
    if currency is None:
        raise ServiceUnavailable(f"TWS sent no NetLiquidation for account {account}")
    totals = (BASE, currency)
    required = {
        "equity": _amount(by, "NetLiquidation", (currency,)),
        "balance": _amount(by, "TotalCashValue", (currency,)),
        "unrealised": _amount(by, "UnrealizedPnL", totals),
        "realised": _amount(by, "RealizedPnL", totals),
    }
    missing = [name for name, value in required.items() if value is None]
    if missing:
        raise ServiceUnavailable(f"TWS's account summary of {account} lacks {', '.join(missing)}")
    return Account(
        broker=broker,
        currency=currency,
        balance=required["balance"] or ZERO,
        equity=required["equity"] or ZERO,
        realised_pnl=required["realised"] or ZERO,
        unrealised_pnl=required["unrealised"] or ZERO,
        commission=commission,
        margin_used=_amount(by, "InitMarginReq", (currency,)) or ZERO,
        buying_power=_amount(by, "BuyingPower", (currency,)),
    )


def commission_in(reports: Iterable[tuple[float, str]], currency: str) -> Decimal:
    """The sum of (commission, currency) pairs charged in ``currency``."""
    return sum((decimal_of(amount) or ZERO for amount, cur in reports if cur == currency), ZERO)


def positions_from(
    positions: Iterable[IbPosition],
    portfolio: Iterable[PortfolioItem],
    *,
    broker: str,
    account: str,
    symbol_of: Callable[[Contract], str],
) -> list[Position]:
    """Open positions of ``account`` (and closed ones with realised P&L), marked where TWS's portfolio has them."""
    items = {p.contract.conId: p for p in portfolio if p.account == account}
    result = []
    for pos in positions:
        if pos.account != account:
            continue
        item = items.get(pos.contract.conId)
        quantity = decimal_of(pos.position) or ZERO
        realised = (decimal_of(item.realizedPNL) if item else None) or ZERO
        if not quantity and not realised:
            continue
        result.append(
            Position(
                broker=broker,
                instrument=symbol_of(pos.contract),
                quantity=quantity,
                average_price=decimal_of(pos.avgCost) or ZERO,
                realised_pnl=realised,
                unrealised_pnl=(decimal_of(item.unrealizedPNL) if item else None) or ZERO,
                market_price=decimal_of(item.marketPrice) if item else None,
            )
        )
    return result
