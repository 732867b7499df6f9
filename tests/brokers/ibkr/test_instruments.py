"""Qualifying the configured instruments through TWS's contract details."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from ib_async import Contract, ContractDetails, Stock

from brokers.ibkr.instruments import InstrumentBook, pick_details
from brokers.ibkr.options import IbkrInstrument
from host.trading.errors import InvalidInstrument

from .conftest import BrokerFactory
from .fake_tws import FakeContract, FakeTws

pytestmark = pytest.mark.anyio


def details(primary: str, con_id: int) -> ContractDetails:
    return ContractDetails(contract=Contract(secType="STK", symbol="SHOP", conId=con_id, primaryExchange=primary))


def test_one_candidate_is_the_contract() -> None:
    only = details("NYSE", 1)
    assert pick_details(Stock("SHOP", "SMART", "USD"), [only]) is only


def test_several_candidates_need_the_primary_exchange() -> None:
    nyse, tse = details("NYSE", 1), details("TSE", 2)
    assert pick_details(Stock("SHOP", "SMART", "USD"), [nyse, tse]) is None
    assert pick_details(Stock("SHOP", "SMART", "USD", primaryExchange="TSE"), [nyse, tse]) is tse
    assert pick_details(Stock("SHOP", "SMART", "USD"), []) is None


def test_the_book_refuses_what_is_not_configured() -> None:
    book = InstrumentBook({"AAPL": IbkrInstrument(kind="stock")}, logging.getLogger("test"))
    assert book.symbols == ("AAPL",) and book.kind("AAPL") == "stock"
    with pytest.raises(InvalidInstrument, match="it trades AAPL"):
        book.contract("MSFT")


async def test_an_ambiguous_stock_stays_unqualified_until_its_listing_is_given(fake: FakeTws, connect: BrokerFactory) -> None:
    fake.contracts += [
        FakeContract(1001, "SHOP", "STK", "SMART", "USD", "SHOP", "SHOP", "0.01", primary_exchange="NYSE"),
        FakeContract(1002, "SHOP", "STK", "SMART", "USD", "SHOP", "SHOP", "0.01", primary_exchange="TSE"),
    ]
    vague = await connect(instruments={"SHOP": {"kind": "stock"}})
    shop = vague.broker.instrument("SHOP")
    assert shop is not None and shop.extra["con_id"] is None  # tradable, sent by symbol
    await vague.broker.stop()
    precise = await connect(instruments={"SHOP": {"kind": "stock", "primary_exchange": "TSE"}})
    shop = precise.broker.instrument("SHOP")
    assert shop is not None and shop.extra["con_id"] == 1002


async def test_configured_rules_are_kept_when_tws_has_other_ones(connect: BrokerFactory) -> None:
    ib = await connect(instruments={"AAPL": {"kind": "stock", "tick": "0.05", "lot": "10"}})
    aapl = ib.broker.instrument("AAPL")
    assert aapl is not None
    assert (aapl.price_increment, aapl.quantity_increment, aapl.min_quantity, aapl.extra["con_id"]) == (Decimal("0.05"), Decimal(10), Decimal(10), 265598)
