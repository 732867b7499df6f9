"""Instruments, prices, positions and the account summary from recorded v20 shapes (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from brokers.oanda.errors import MalformedAnswer
from brokers.oanda.market import instrument_to_model, position_to_model, price_to_quote, summary_to_account

from .server import fixture

D = Decimal


def test_instruments_take_tick_lot_limits_and_currency_from_oanda() -> None:
    eur, jpy, dax, gold = (instrument_to_model(i) for i in fixture("account_instruments.json")["instruments"])
    assert (eur.price_increment, eur.quantity_increment, eur.min_quantity, eur.max_quantity, eur.currency, eur.kind) == (D("0.00001"), D(1), D(1), D(100000000), "USD", "fx")
    assert (jpy.price_increment, jpy.currency, jpy.extra["pip"]) == (D("0.001"), "JPY", "0.01")
    assert (dax.price_increment, dax.quantity_increment, dax.min_quantity, dax.max_quantity, dax.kind) == (D("0.1"), D("0.1"), D("0.1"), D(2500), "cfd")
    assert (gold.kind, gold.extra["oanda_type"], gold.extra["margin_rate"]) == ("metal", "METAL", "0.05")
    with pytest.raises(MalformedAnswer):
        instrument_to_model({"name": "EUR_USD"})


def test_a_price_is_the_top_of_book_with_its_liquidity() -> None:
    quote = price_to_quote(fixture("pricing.json")["prices"][0], "fx")
    assert (quote.broker, quote.instrument, quote.bid, quote.ask, quote.bid_size) == ("fx", "USD_JPY", D("149.321"), D("149.335"), D(1000000))
    assert quote.at == datetime(2026, 11, 22, 14, 49, 59, 812345, tzinfo=UTC)
    closed = {"type": "PRICE", "instrument": "EUR_USD", "time": "2026-11-22T14:49:59Z", "bids": [], "asks": [], "closeoutBid": "1.08", "closeoutAsk": "1.09"}
    assert (price_to_quote(closed, "fx").bid, price_to_quote(closed, "fx").ask_size) == (D("1.08"), None)
    with pytest.raises(MalformedAnswer):
        price_to_quote({"type": "PRICE", "time": "2026-11-22T14:49:59Z", "bids": [], "asks": []}, "fx")


def test_a_position_nets_long_and_short_units() -> None:
    eur, dax = (position_to_model(p, "fx") for p in fixture("open_positions.json")["positions"])
    assert (eur.quantity, eur.average_price, eur.realised_pnl, eur.unrealised_pnl, eur.market_price) == (D(10000), D("1.08432"), D("-12.872"), D("12.3"), None)
    assert (dax.quantity, dax.average_price) == (D(-20), D("10581.5"))
    hedged = {"instrument": "EUR_USD", "long": {"units": "300", "averagePrice": "1.1"}, "short": {"units": "-100", "averagePrice": "1.2"}, "pl": "0", "unrealizedPL": "1"}
    position = position_to_model(hedged, "fx", D("1.15"))
    assert (position.quantity, position.average_price, position.market_price) == (D(200), D("1.1"), D("1.15"))


def test_the_account_is_balance_nav_margin_and_pnl() -> None:
    account = summary_to_account(fixture("account_summary.json")["account"], "fx")
    assert (account.broker, account.currency, account.balance, account.equity) == ("fx", "USD", D("99812.431"), D("99824.731"))
    assert (account.realised_pnl, account.unrealised_pnl, account.commission, account.margin_used, account.buying_power) == (D("-187.569"), D("12.3"), D(0), D("216.864"), D("99607.867"))
    with pytest.raises(MalformedAnswer):
        summary_to_account({"currency": "USD", "balance": "x"}, "fx")
