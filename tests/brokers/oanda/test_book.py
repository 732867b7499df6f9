"""The order book: client id ↔ OANDA id through replacements, fills counted once, bounded memory."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from brokers.oanda.book import OrderBook
from host.trading.model import Fill

D = Decimal


def fill(trade_id: str, quantity: str) -> Fill:
    return Fill(trade_id=trade_id, quantity=D(quantity), price=D("1.1"), at=datetime(2026, 11, 22, tzinfo=UTC))


def test_an_unknown_order_is_named_by_client_id_a_known_one_by_oanda_id() -> None:
    book = OrderBook()
    assert book.specifier("a-1") == "@a-1"
    book.track("a-1", total=D(10))
    assert book.specifier("a-1") == "@a-1"
    book.track("a-1", "101")
    assert book.specifier("a-1") == "101" and book.cid_of("101") == "a-1" and book.get("a-1").total == D(10)  # type: ignore[union-attr]


def test_a_replacement_moves_the_client_id_to_the_new_order() -> None:
    book = OrderBook()
    book.track("a-1", "101", D(10))
    book.replaced("101", "105")
    assert book.specifier("a-1") == "105" and book.cid_of("105") == "a-1" and book.cid_of("101") is None
    book.replaced("999", "1000")  # not ours: nothing happens
    assert book.cid_of("1000") is None


def test_fills_count_once_and_complete_the_order() -> None:
    book = OrderBook()
    book.track("a-1", "101", D(10))
    assert not book.add_fill("a-1", "101", fill("102", "4")).complete
    assert book.add_fill("a-1", "101", fill("102", "4")).filled == D(4)
    assert book.add_fill("a-1", None, fill("103", "6")).complete
    assert not book.add_fill("b-1", "201", fill("202", "6")).complete  # size unknown: never complete


def test_the_oldest_orders_and_trades_are_forgotten_first() -> None:
    book = OrderBook(keep=2)
    for n in range(3):
        book.track(f"a-{n}", str(100 + n))
        book.add_trade(str(200 + n), "EUR_USD", "10")
    assert len(book) == 2 and book.get("a-0") is None and book.cid_of("100") is None and book.cid_of("102") == "a-2"
    assert book.trade("200") is None and book.trade("202") == {"id": "202", "instrument": "EUR_USD", "currentUnits": "10"}
