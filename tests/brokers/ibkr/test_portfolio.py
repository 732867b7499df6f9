"""Account values and positions from TWS → Account and Positions."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ib_async import AccountValue, Contract, PortfolioItem
from ib_async import Position as IbPosition

from brokers.ibkr.contracts import symbol_for
from brokers.ibkr.portfolio import account_from_values, commission_in, positions_from
from host.trading.errors import ServiceUnavailable


def values(*rows: tuple[str, str, str], account: str = "DU123") -> list[AccountValue]:
    return [AccountValue(account, tag, value, currency, "") for tag, value, currency in rows]


SUMMARY = values(
    ("AccountType", "INDIVIDUAL", ""), ("NetLiquidation", "100523.45", "USD"), ("TotalCashValue", "80210.10", "USD"),
    ("BuyingPower", "401045.80", "USD"), ("InitMarginReq", "5012.25", "USD"), ("UnrealizedPnL", "313.35", "BASE"),
    ("RealizedPnL", "-12.40", "BASE"), ("UnrealizedPnL", "100.00", "EUR"),
)  # fmt: skip


def test_the_account_from_its_summary() -> None:
    account = account_from_values(SUMMARY + values(("NetLiquidation", "1", "USD"), account="DU999"), broker="ib", account="DU123", commission=Decimal("3.5"))
    assert (account.broker, account.currency, account.equity, account.balance) == ("ib", "USD", Decimal("100523.45"), Decimal("80210.1"))
    assert (account.unrealised_pnl, account.realised_pnl, account.margin_used, account.buying_power) == (
        Decimal("313.35"), Decimal("-12.4"), Decimal("5012.25"), Decimal("401045.8"),
    )  # fmt: skip
    assert account.commission == Decimal("3.5")


def test_pnl_in_the_base_currency_when_there_is_no_base_row() -> None:
    rows = [v for v in SUMMARY if v.currency != "BASE"] + values(("UnrealizedPnL", "7", "USD"), ("RealizedPnL", "8", "USD"))
    account = account_from_values(rows, broker="ib", account="DU123", commission=Decimal(0))
    assert (account.unrealised_pnl, account.realised_pnl) == (Decimal(7), Decimal(8))


def test_margin_and_buying_power_may_be_missing() -> None:
    rows = [v for v in SUMMARY if v.tag not in ("InitMarginReq", "BuyingPower")]
    account = account_from_values(rows, broker="ib", account="DU123", commission=Decimal(0))
    assert (account.margin_used, account.buying_power) == (Decimal(0), None)


@pytest.mark.parametrize("missing", ["NetLiquidation", "TotalCashValue", "UnrealizedPnL", "RealizedPnL"])
def test_a_summary_without_what_an_account_needs_is_service_unavailable(missing: str) -> None:
    rows = [v for v in SUMMARY if v.tag != missing]
    with pytest.raises(ServiceUnavailable):
        account_from_values(rows, broker="ib", account="DU123", commission=Decimal(0))


def test_an_unreadable_value_counts_as_missing() -> None:
    rows = [v if v.tag != "TotalCashValue" else v._replace(value="n/a") for v in SUMMARY]
    with pytest.raises(ServiceUnavailable, match="balance"):
        account_from_values(rows, broker="ib", account="DU123", commission=Decimal(0))


def test_commissions_in_the_account_currency_only() -> None:
    assert commission_in([(1.25, "USD"), (2.0, "EUR"), (0.5, "USD")], "USD") == Decimal("1.75")


AAPL = Contract(secType="STK", conId=265598, symbol="AAPL", currency="USD")
EUR = Contract(secType="CASH", conId=12087792, symbol="EUR", currency="USD")
GBP = Contract(secType="CASH", conId=12087797, symbol="GBP", currency="USD")


def test_positions_with_their_marks() -> None:
    positions = [
        IbPosition("DU123", AAPL, 100.0, 190.25), IbPosition("DU123", EUR, -20000.0, 1.085),
        IbPosition("DU123", GBP, 0.0, 0.0), IbPosition("DU999", AAPL, 5.0, 1.0),
    ]  # fmt: skip
    portfolio = [PortfolioItem(AAPL, 100.0, 191.5, 19150.0, 190.25, 125.0, 10.0, "DU123"), PortfolioItem(GBP, 0.0, 1.27, 0.0, 0.0, 0.0, -3.0, "DU123")]
    found = positions_from(positions, portfolio, broker="ib", account="DU123", symbol_of=lambda c: symbol_for(c, {265598: "AAPL"}))
    by = {p.instrument: p for p in found}
    assert set(by) == {"AAPL", "EUR_USD", "GBP_USD"}  # GBP is flat but realised P&L today
    assert (by["AAPL"].quantity, by["AAPL"].average_price, by["AAPL"].market_price, by["AAPL"].unrealised_pnl) == (
        Decimal(100), Decimal("190.25"), Decimal("191.5"), Decimal(125),
    )  # fmt: skip
    assert (by["EUR_USD"].quantity, by["EUR_USD"].market_price, by["EUR_USD"].unrealised_pnl) == (Decimal(-20000), None, Decimal(0))
    assert (by["GBP_USD"].quantity, by["GBP_USD"].realised_pnl) == (Decimal(0), Decimal(-3))
