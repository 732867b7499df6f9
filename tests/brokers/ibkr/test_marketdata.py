"""Quotes: streaming subscriptions, snapshots, delayed data and refusals."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from ib_async import Forex, Ticker

from brokers.ibkr.marketdata import ticker_to_quote
from host.trading.errors import InvalidInstrument, ServiceUnavailable

from .conftest import BrokerFactory, Harness

pytestmark = pytest.mark.anyio
AAPL = 265598
EUR_USD = 12087792


def ticker(bid: float, ask: float, bid_size: float = math.nan, ask_size: float = math.nan) -> Ticker:
    t = Ticker(contract=Forex("EURUSD"), time=datetime(2026, 11, 22, tzinfo=UTC))
    t.bid, t.ask, t.bidSize, t.askSize = bid, ask, bid_size, ask_size  # set after ib_async's own initialisation
    return t


def test_a_ticker_becomes_a_quote_only_with_both_sides() -> None:
    quote = ticker_to_quote(ticker(1.0851, 1.08515, 1e6), broker="ib", instrument="EUR_USD")
    assert quote is not None
    assert (quote.bid, quote.ask, quote.bid_size, quote.ask_size) == (Decimal("1.0851"), Decimal("1.08515"), Decimal("1000000"), None)
    assert quote.at == datetime(2026, 11, 22, tzinfo=UTC)
    for bid, ask in ((math.nan, 1.0), (1.0, -1.0), (0.0, 1.0)):
        assert ticker_to_quote(ticker(bid, ask), broker="ib", instrument="EUR_USD") is None


async def test_a_streamed_quote_is_requested_once_and_kept_up_to_date(ib: Harness) -> None:
    first = await ib.broker.quote("EUR_USD")
    assert (first.bid, first.ask, first.ask_size) == (Decimal("1.08512"), Decimal("1.08519"), Decimal("2000000"))
    (request,) = ib.fake.messages(1)
    assert request[3] == str(EUR_USD) and request[17] == "0"  # conId, not a snapshot
    ib.fake.push_quote(EUR_USD, "1.0853", "1.08535")
    await ib.fake.wait_for(lambda: ib.broker._market._tickers["EUR_USD"].bid == 1.0853)
    second = await ib.broker.quote("EUR_USD")
    assert (second.bid, second.ask) == (Decimal("1.0853"), Decimal("1.08535"))
    assert len(ib.fake.messages(1)) == 1


async def test_snapshots_ask_each_time(connect: BrokerFactory) -> None:
    ib = await connect(quotes="snapshot")
    ib.fake.quotes[AAPL] = ("190.10", "190.12", "300", "500")
    quote = await ib.broker.quote("AAPL")
    assert (quote.bid, quote.ask, quote.bid_size) == (Decimal("190.1"), Decimal("190.12"), Decimal("300"))
    await ib.broker.quote("AAPL")
    requests = ib.fake.messages(1)
    assert len(requests) == 2 and all(r[17] == "1" for r in requests)


async def test_delayed_market_data_is_asked_for_and_read(connect: BrokerFactory) -> None:
    ib = await connect(market_data="delayed")
    assert ib.fake.messages(59) == [["59", "1", "3"]]
    quote = await ib.broker.quote("EUR_USD")
    assert (quote.bid, quote.ask) == (Decimal("1.08512"), Decimal("1.08519"))


async def test_no_market_data_subscription_is_service_unavailable(ib: Harness) -> None:
    ib.fake.market_data_allowed = False
    with pytest.raises(ServiceUnavailable) as caught:
        await ib.broker.quote("EUR_USD")
    assert caught.value.broker_code == "354"


async def test_a_stream_without_prices_times_out(connect: BrokerFactory) -> None:
    ib = await connect(timeout=0.1)
    ib.fake.quotes[AAPL] = ("", "", "", "")
    with pytest.raises(ServiceUnavailable, match="market closed"):
        await ib.broker.quote("AAPL")
    await ib.fake.wait_for(lambda: bool(ib.fake.messages(2)))  # the subscription is cancelled


async def test_a_snapshot_without_prices_is_service_unavailable(connect: BrokerFactory) -> None:
    ib = await connect(quotes="snapshot")
    ib.fake.quotes[AAPL] = ("", "", "", "")
    with pytest.raises(ServiceUnavailable, match="no bid and ask"):
        await ib.broker.quote("AAPL")


async def test_quotes_of_instruments_not_configured_are_refused(ib: Harness) -> None:
    with pytest.raises(InvalidInstrument):
        await ib.broker.quote("GBP_USD")


async def test_a_snapshot_whose_connection_drops_while_it_waits_for_the_rate_limit_is_asked_again(connect: BrokerFactory) -> None:
    import asyncio

    ib = await connect(quotes="snapshot", reconnect_max_delay=0.5)  # back 0.5 s after a drop
    ib.broker._conn.bucket.block(0.2)  # the request waits its turn

    async def drop_meanwhile() -> None:
        await asyncio.sleep(0.02)
        ib.fake.drop()

    task = asyncio.get_running_loop().create_task(drop_meanwhile())
    quote = await ib.broker.quote("EUR_USD")
    await task
    assert (quote.bid, quote.ask) == (Decimal("1.08512"), Decimal("1.08519"))
    assert ib.fake.connections == 2
