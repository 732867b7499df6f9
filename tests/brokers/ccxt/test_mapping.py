"""ccxt's unified dicts → reports, fills, quotes, instruments, positions and accounts (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from brokers.ccxt.mapping import (
    account_from_balances,
    commission_in_quote,
    dec,
    fill_id,
    market_to_instrument,
    ms_to_datetime,
    order_to_report,
    plain,
    positions_from_balances,
    settle_status,
    ticker_to_quote,
    trade_to_fill,
)
from host.trading.states import OrderStatus

D = Decimal
S = OrderStatus
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
MARKET = {"id": "BTCUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT",
          "precision": {"amount": "0.00001000", "price": "0.01000000"},
          "limits": {"amount": {"min": "0.00001000", "max": "9000.00000000"}, "cost": {"min": "5.00000000", "max": None}}}  # fmt: skip


@pytest.mark.parametrize(("text", "value"), [("0.1", D("0.1")), ("1e-8", D("1e-8")), (5, D(5)), ("", None), (None, None), ("x", None), ("NaN", None), (True, None)])
def test_dec_reads_text_without_float(text: object, value: Decimal | None) -> None:
    assert dec(text) == value


@pytest.mark.parametrize(("value", "text"), [(D("0.01000000"), "0.01"), (D("10"), "10"), (D("1E+1"), "10"), (D("30000.10"), "30000.1")])
def test_plain_writes_what_exchanges_accept(value: Decimal, text: str) -> None:
    assert plain(value) == text


def test_times_and_ids() -> None:
    assert ms_to_datetime(1700000000000) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert ms_to_datetime(None) is None
    assert fill_id("BTCUSDT", "28", "56") == "BTCUSDT:28:56"


@pytest.mark.parametrize(
    ("cost", "currency", "expected"),
    [(D("4"), "USDT", D("4")), (D("0.001"), "BTC", D("30")), (D("0.01"), "BNB", D(0)), (None, "USDT", D(0)), (D("2"), None, D("2"))],
)
def test_commission_is_counted_in_the_quote_currency(cost: Decimal | None, currency: str | None, expected: Decimal) -> None:
    assert commission_in_quote(cost, currency, D("30000"), "BTC", "USDT") == expected


def test_a_trade_becomes_a_fill_with_a_unique_id() -> None:
    trade = {"id": "56", "amount": "0.5", "price": "30000.1", "timestamp": 1700000000000, "fee": {"cost": "0.0005", "currency": "BTC"}}
    fill = trade_to_fill(trade, market=MARKET, order_id="28", fallback_at=NOW)
    assert fill is not None
    assert (fill.trade_id, fill.quantity, fill.price, fill.commission) == ("BTCUSDT:28:56", D("0.5"), D("30000.1"), D("15.00005"))
    assert trade_to_fill({"id": None, "amount": "1", "price": "1"}, market=MARKET, order_id="28", fallback_at=NOW) is None
    assert trade_to_fill({"id": "1", "amount": "0", "price": "1"}, market=MARKET, order_id="28", fallback_at=NOW) is None


@pytest.mark.parametrize(
    ("status", "filled", "amount", "expected"),
    [(S.ACCEPTED, D(0), D(1), S.ACCEPTED), (S.ACCEPTED, D("0.4"), D(1), S.PARTIALLY_FILLED), (S.ACCEPTED, D(1), D(1), S.FILLED),
     (S.SUBMITTED, D("0.1"), None, S.PARTIALLY_FILLED), (S.CANCELED, D("0.5"), D(1), S.CANCELED), (S.EXPIRED, D(0), D(1), S.EXPIRED)],
)  # fmt: skip
def test_settle_status(status: OrderStatus, filled: Decimal, amount: Decimal | None, expected: OrderStatus) -> None:
    assert settle_status(status, filled, amount) is expected


def test_an_order_becomes_a_report_with_its_fills_and_terms() -> None:
    order = {"id": "28", "type": "limit", "price": "29000", "amount": "1", "filled": "0.5", "triggerPrice": None,
             "timestamp": 1700000000000, "lastUpdateTimestamp": 1700000001000}  # fmt: skip
    trades = [{"id": "56", "amount": "0.5", "price": "29000", "fee": {"cost": "1", "currency": "USDT"}}]
    report = order_to_report(order, client_order_id="s-1", status=S.ACCEPTED, raw_status="PARTIALLY_FILLED", market=MARKET,
                             trades=trades, raw={"orderId": 28}, now=NOW)  # fmt: skip
    assert report.status is S.PARTIALLY_FILLED and report.raw_status == "PARTIALLY_FILLED"
    assert report.broker_order_id == "28" and report.quantity == D(1) and report.limit_price == D(29000) and report.stop_price is None
    assert report.at == datetime(2023, 11, 14, 22, 13, 21, tzinfo=UTC)
    assert [f.trade_id for f in report.fills] == ["BTCUSDT:28:56"] and report.fills[0].at == report.at
    market_order = order | {"type": "market", "price": "29000.5"}
    assert order_to_report(market_order, client_order_id="s", status=S.FILLED, raw_status="FILLED", market=MARKET, trades=[], raw={}, now=NOW).limit_price is None


def test_a_ticker_becomes_a_quote_only_with_both_sides() -> None:
    quote = ticker_to_quote({"bid": "1.5", "ask": "1.6", "bidVolume": "10", "askVolume": None}, broker="b", instrument="X/Y", now=NOW)
    assert quote is not None and (quote.bid, quote.ask, quote.bid_size, quote.ask_size, quote.at) == (D("1.5"), D("1.6"), D(10), None, NOW)
    assert ticker_to_quote({"bid": "1.5", "ask": None}, broker="b", instrument="X/Y", now=NOW) is None


def test_a_market_becomes_an_instrument() -> None:
    instrument = market_to_instrument(MARKET)
    assert instrument is not None
    assert (instrument.symbol, instrument.price_increment, instrument.quantity_increment) == ("BTC/USDT", D("0.01"), D("0.00001"))
    assert (instrument.min_quantity, instrument.max_quantity, instrument.min_notional) == (D("0.00001"), D(9000), D(5))
    assert instrument.currency == "USDT" and instrument.kind == "crypto" and instrument.extra == {"id": "BTCUSDT", "base": "BTC"}
    assert market_to_instrument(MARKET | {"precision": {"amount": None, "price": "0.01"}}) is None


BALANCES = {"total": {"BTC": "1.5", "ETH": "0", "USDT": "1000", "BNB": "2"}, "free": {"USDT": "900"}}


def symbol_of(asset: str) -> str | None:
    return {"BTC": "BTC/USDT", "ETH": "ETH/USDT"}.get(asset)


def test_holdings_are_positions_against_the_account_currency() -> None:
    positions = positions_from_balances(BALANCES, broker="b", quote="USDT", symbol_of=symbol_of, marks={"BTC/USDT": D(30000)})
    assert [(p.instrument, p.quantity, p.market_price, p.average_price) for p in positions] == [("BNB", D(2), None, D(0)), ("BTC/USDT", D("1.5"), D(30000), D(0))]


def test_the_account_values_holdings_at_their_mid() -> None:
    account = account_from_balances(BALANCES, broker="b", quote="USDT", symbol_of=symbol_of, marks={"BTC/USDT": D(30000)})
    assert (account.balance, account.equity, account.buying_power, account.currency) == (D(1000), D(46000), D(900), "USDT")
