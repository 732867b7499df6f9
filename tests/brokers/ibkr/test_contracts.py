"""Instrument specs ↔ IB contracts and contract details → trading rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ib_async import Contract, ContractDetails, Crypto, Forex, Stock

from brokers.ibkr.contracts import (
    DEFAULT_RULES,
    InstrumentRules,
    contract_for,
    decimal_of,
    default_rules,
    instrument_for,
    rules_from_details,
    symbol_for,
)
from brokers.ibkr.options import IbkrInstrument


def spec(**fields: object) -> IbkrInstrument:
    return IbkrInstrument.model_validate(fields)


def test_a_forex_pair_from_its_name() -> None:
    contract = contract_for("EUR_USD", spec(kind="forex"))
    assert isinstance(contract, Forex)
    assert (contract.secType, contract.symbol, contract.currency, contract.exchange, contract.conId) == ("CASH", "EUR", "USD", "IDEALPRO", 0)


def test_a_stock_with_its_listing_exchange() -> None:
    contract = contract_for("AAPL", spec(kind="stock", exchange="SMART", currency="USD", primary_exchange="NASDAQ"))
    assert isinstance(contract, Stock)
    assert (contract.secType, contract.symbol, contract.exchange, contract.primaryExchange, contract.currency) == ("STK", "AAPL", "SMART", "NASDAQ", "USD")


def test_a_stock_named_otherwise_on_ib() -> None:
    contract = contract_for("BRK_B", spec(kind="stock", symbol="BRK B"))
    assert (contract.symbol, contract.exchange, contract.currency) == ("BRK B", "SMART", "USD")


def test_a_crypto_pair_on_paxos() -> None:
    contract = contract_for("BTC_USD", spec(kind="crypto", exchange="PAXOS"))
    assert isinstance(contract, Crypto)
    assert (contract.secType, contract.symbol, contract.currency, contract.exchange) == ("CRYPTO", "BTC", "USD", "PAXOS")


def test_a_pinned_or_qualified_contract_id() -> None:
    assert contract_for("AAPL", spec(kind="stock", con_id=265598)).conId == 265598
    assert contract_for("AAPL", spec(kind="stock"), con_id=42).conId == 42


@pytest.mark.parametrize(
    ("contract", "name"),
    [
        (Contract(secType="CASH", conId=1, symbol="GBP", currency="USD"), "GBP_USD"),
        (Contract(secType="CRYPTO", conId=2, symbol="ETH", currency="USD"), "ETH_USD"),
        (Contract(secType="STK", conId=3, symbol="BRK B", currency="USD"), "BRK_B"),
        (Contract(secType="FUT", conId=4, symbol="ES", localSymbol="ESZ6"), "ESZ6"),
        (Contract(secType="CASH", conId=12087792, symbol="EUR", currency="USD"), "EURO"),
    ],
)
def test_our_name_of_an_ib_contract(contract: Contract, name: str) -> None:
    assert symbol_for(contract, {12087792: "EURO"}) == name


@pytest.mark.parametrize(
    ("value", "expected"),
    [(100.0, Decimal("100")), (1.08512, Decimal("1.08512")), (5e-05, Decimal("0.00005")), ("0.25", Decimal("0.25")),
     (Decimal("1.50"), Decimal("1.5")), (0.0, Decimal(0)), (-12.4, Decimal("-12.4")),
     (1.7976931348623157e308, None), (float("nan"), None), ("9223372036854775807", None), ("", None), (None, None)],
)  # fmt: skip
def test_decimal_of(value: object, expected: Decimal | None) -> None:
    assert decimal_of(value) == expected  # type: ignore[arg-type]


def test_rules_come_from_the_contract_details() -> None:
    details = ContractDetails(minTick=0.25, minSize=0.0001, sizeIncrement=1e-08)
    assert rules_from_details(details, DEFAULT_RULES["crypto"]) == InstrumentRules(Decimal("0.25"), Decimal("1E-8"), Decimal("0.0001"))


def test_missing_or_sentinel_sizes_fall_back() -> None:
    details = ContractDetails(minTick=0.01, minSize=1.7976931348623157e308, sizeIncrement=0.0)
    assert rules_from_details(details, DEFAULT_RULES["stock"]) == InstrumentRules(Decimal("0.01"), Decimal(1), Decimal(1))
    assert rules_from_details(None, DEFAULT_RULES["stock"]) == DEFAULT_RULES["stock"]


def test_a_jpy_pair_has_a_hundred_times_the_tick() -> None:
    assert default_rules("USD_JPY", spec(kind="forex")).tick == Decimal("0.005")
    assert default_rules("EUR_USD", spec(kind="forex")).tick == Decimal("0.00005")


def test_configured_rules_win_over_the_details() -> None:
    rules = InstrumentRules(Decimal("0.25"), Decimal("0.00000001"), Decimal("0.0001"))
    contract = contract_for("BTC_USD", spec(kind="crypto"), con_id=479624278)
    instrument = instrument_for("BTC_USD", spec(kind="crypto", tick="1", min="0.001"), rules, contract)
    assert (instrument.price_increment, instrument.quantity_increment, instrument.min_quantity) == (Decimal(1), Decimal("0.00000001"), Decimal("0.001"))
    assert (instrument.kind, instrument.currency, instrument.extra["con_id"]) == ("crypto", "USD", 479624278)


def test_the_minimum_is_at_least_one_lot() -> None:
    rules = InstrumentRules(Decimal("0.01"), Decimal(1), Decimal("0.5"))
    instrument = instrument_for("AAPL", spec(kind="stock"), rules, contract_for("AAPL", spec(kind="stock")))
    assert instrument.min_quantity == Decimal(1) and instrument.kind == "stock"
