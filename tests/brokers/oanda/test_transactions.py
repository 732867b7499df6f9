"""The transaction feed: catch-up reads, stream lines, gaps, duplicates, brackets and replacements → reports."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

from brokers.base import ExecutionReport
from brokers.oanda.book import OrderBook
from brokers.oanda.client import OandaClient
from brokers.oanda.transactions import TransactionFeed
from host.trading.model import OrderType, Side
from host.trading.states import OrderStatus

from .conftest import broker, options, order
from .server import TOKEN, FakeOanda, Reply, Script, fixture

D = Decimal
S = OrderStatus
R = TypeVar("R")
LIMIT_CID = "sma_signal-20261122-000043"
LOG = logging.getLogger("tests.oanda")


def run(scenario: Callable[[], Coroutine[Any, Any, R]]) -> R:
    return asyncio.run(scenario())


async def feeding(server: FakeOanda, last_id: int, body: Callable[[TransactionFeed, OrderBook, list[ExecutionReport]], Coroutine[Any, Any, R]]) -> R:
    client = OandaClient(options(server), TOKEN)
    book, reports = OrderBook(), []
    try:
        return await body(TransactionFeed(client, book, reports.append, LOG, last_id), book, reports)
    finally:
        await client.aclose()


def test_catch_up_then_stream_lines_report_fills_brackets_and_their_end(oanda: FakeOanda) -> None:
    oanda.on("GET", "/transactions/sinceid", Reply(200, fixture("transactions_sinceid.json")))

    async def body(feed: TransactionFeed, book: OrderBook, reports: list[ExecutionReport]) -> list[ExecutionReport]:
        book.track(LIMIT_CID, "6411", D(8000))
        await feed.catch_up()
        for line in fixture("transactions_stream.ndjson"):
            await feed.on_message(line)
        assert feed.last_id == 6431
        return reports

    fill, stop_loss, take_profit, tp_fill, sl_cancel = run(lambda: feeding(oanda, 6411, body))
    assert [r.query for r in oanda.sent("GET", "/transactions/sinceid")] == [{"id": "6411"}]
    assert (fill.client_order_id, fill.status, fill.broker_order_id) == (LIMIT_CID, S.FILLED, "6411")
    assert [(f.trade_id, f.quantity, f.price) for f in fill.fills] == [("6420", D(8000), D("1.091"))]
    for child, kind, price in ((stop_loss, OrderType.STOP, "1.095"), (take_profit, OrderType.LIMIT, "1.08")):
        assert child.status is S.ACCEPTED and child.parent_client_order_id == LIMIT_CID
        assert child.terms is not None and (child.terms.type, child.terms.side, child.terms.quantity) == (kind, Side.BUY, D(8000))
    assert stop_loss.client_order_id == LIMIT_CID + "-SL" and stop_loss.stop_price == D("1.095") and stop_loss.broker_order_id == "6421"
    assert take_profit.client_order_id == LIMIT_CID + "-TP" and take_profit.terms is not None and take_profit.terms.limit_price == D("1.08")
    assert (tp_fill.client_order_id, tp_fill.status, tp_fill.fills[0].trade_id) == (LIMIT_CID + "-TP", S.FILLED, "6430")
    assert (sl_cancel.client_order_id, sl_cancel.status, sl_cancel.error) == (LIMIT_CID + "-SL", S.CANCELED, None)


def test_a_heartbeat_ahead_of_the_feed_reads_the_gap(oanda: FakeOanda) -> None:
    stream = fixture("transactions_stream.ndjson")
    oanda.on("GET", "/transactions/sinceid", Reply(200, {"transactions": stream[1:3], "lastTransactionID": "6431"}))

    async def body(feed: TransactionFeed, book: OrderBook, reports: list[ExecutionReport]) -> list[ExecutionReport]:
        book.track(LIMIT_CID + "-TP", "6422", D(8000))
        await feed.on_message({"type": "HEARTBEAT", "lastTransactionID": "6422", "time": "2026-11-22T15:20:12.000000000Z"})
        assert not oanda.sent("GET", "/transactions/sinceid")
        await feed.on_message(stream[3])  # says 6431: two transactions were missed
        for line in stream[1:3]:
            await feed.on_message(line)  # late copies change nothing
        return reports

    reports = run(lambda: feeding(oanda, 6422, body))
    assert [(r.client_order_id, r.status) for r in reports] == [(LIMIT_CID + "-TP", S.FILLED), (LIMIT_CID + "-SL", S.CANCELED)]
    assert [r.query for r in oanda.sent("GET", "/transactions/sinceid")] == [{"id": "6422"}]


def test_a_child_on_a_trade_the_feed_has_not_seen_reads_the_trade(oanda: FakeOanda) -> None:
    stop_loss = fixture("transactions_sinceid.json")["transactions"][1]
    oanda.on("GET", "/trades/6420", Reply(200, {"trade": {"id": "6420", "instrument": "EUR_USD", "currentUnits": "-8000", "state": "OPEN"}}))

    async def body(feed: TransactionFeed, book: OrderBook, reports: list[ExecutionReport]) -> list[ExecutionReport]:
        await feed.apply(stop_loss)
        return reports

    (child,) = run(lambda: feeding(oanda, 6420, body))
    assert child.terms is not None and (child.terms.instrument, child.terms.side, child.terms.quantity) == ("EUR_USD", Side.BUY, D(8000))


def test_replacements_expiry_and_orders_not_ours(oanda: FakeOanda) -> None:
    replace = fixture("order_replace.json")
    expired = {"id": "6450", "type": "ORDER_CANCEL", "orderID": "6411", "reason": "TIME_IN_FORCE_EXPIRED", "time": "2026-11-22T21:00:00.000000000Z"}
    theirs = {**fixture("transaction_fill.json")["transaction"], "id": "6451", "orderID": "9999"}
    del theirs["clientOrderID"]

    async def body(feed: TransactionFeed, book: OrderBook, reports: list[ExecutionReport]) -> list[ExecutionReport]:
        book.track(LIMIT_CID, "6361", D(5000))
        await feed.apply(replace["orderCancelTransaction"])
        await feed.apply(replace["orderCreateTransaction"])
        assert book.specifier(LIMIT_CID) == "6411" and book.cid_of("6411") == LIMIT_CID and not reports
        await feed.apply(expired)  # no clientOrderID: known by OANDA's id
        await feed.apply(theirs)
        await feed.apply({"type": "ORDER_FILL"})  # no id: skipped
        return reports

    (report,) = run(lambda: feeding(oanda, 6400, body))
    assert (report.client_order_id, report.status, report.error, report.raw_status) == (LIMIT_CID, S.EXPIRED, None, "CANCELLED TIME_IN_FORCE_EXPIRED")


def test_the_adapter_follows_the_stream_from_where_the_account_stood(oanda: FakeOanda) -> None:
    fill = {**fixture("transactions_sinceid.json")["transactions"][0], "units": "-5000", "orderID": "6361"}
    fill["tradeOpened"] = {**fill["tradeOpened"], "units": "-5000"}
    oanda.on("POST", "/orders", Reply(201, fixture("order_create_limit_pending.json")))
    oanda.on("GET", "/transactions/sinceid", Reply(200, {"transactions": [], "lastTransactionID": "6356"}))
    oanda.stream("/transactions/stream", Script([0.3, fill], then="hold"))

    async def scenario() -> list[ExecutionReport]:
        adapter, reports = broker(oanda, stream_transactions=True)
        await adapter.start()
        try:
            await adapter.submit(order(LIMIT_CID, "SELL", "5000", "LIMIT", limit="1.09"))
            deadline = time.monotonic() + 3
            while not reports:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            assert adapter.describe()["transaction_stream"]["alive"] is True
            return reports
        finally:
            await adapter.stop()

    (report,) = run(scenario)
    assert (report.client_order_id, report.status, report.broker_order_id) == (LIMIT_CID, S.FILLED, "6361")
    assert oanda.sent("GET", "/transactions/sinceid")[0].query == {"id": "6356"}
