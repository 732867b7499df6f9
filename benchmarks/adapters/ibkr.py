#!/usr/bin/env python3
"""What the Interactive Brokers adapter itself costs per order: mapping, and the round trip over the one TWS socket.

Run from the repository root::

    .venv/bin/python benchmarks/adapters/ibkr.py           # 2,000 orders
    .venv/bin/python benchmarks/adapters/ibkr.py 500

``measure(n)`` returns, in microseconds per order (first the figures every adapter
module reports, see ``benchmarks/adapters/__init__.py``):

- ``mapping_signing_us``: our order → ib_async order(s) with the contract, and a
  filled ib_async trade → ExecutionReport, with no I/O (the TWS API signs nothing:
  TWS holds the login, so there is no signing step to time);
- ``round_trip_p50_us`` / ``round_trip_p99_us``: ``IbkrBroker.submit`` of a market
  order to its answer, against the contract tests' fake TWS
  (``tests/brokers/ibkr/fake_tws.py``, server version 176, on 127.0.0.1 in its own
  process) that answers every order with openOrder, orderStatus, execDetails,
  orderStatus Filled and the commission report: pacing, placeOrder through
  ib_async's socket, decoding, the state of the order, the report (with the fill
  when it came in the same TCP read). The rate limit and ib_async's throttle
  behind it are lifted for the run (IB's 45-50 a second would dominate otherwise);
- ``bare_p50_us``: a bare ``ib_async.IB`` placing the same order and waiting for
  what the adapter's answer waits for (TWS's acknowledgement, and the commission
  report of a fill that came with it), and ``overhead_p50_us`` the difference (the
  adapter's own cost). The bare client runs all its orders first, on its own
  session, then the adapter;
- ``connections``: API sessions (sockets) the fake saw during the adapter's run (1 = one socket throughout);
- ``to_fill_p50_us`` / ``bare_to_fill_p50_us`` (extra): from submit to the FILLED
  report with its commission (the answer or the report emitted after it), and the
  bare client's time to the same messages.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import sqlalchemy  # noqa: E402
from ib_async import IB, CommissionReport, Execution, Fill, Forex, MarketOrder, OrderStatus, Trade, TradeLogEntry  # noqa: E402

from benchmarks.adapters import figures, main, percentile_us, warm_up  # noqa: E402
from brokers.base import AdapterServices, ExecutionReport  # noqa: E402
from brokers.ibkr.adapter import IbkrBroker  # noqa: E402
from brokers.ibkr.contracts import contract_for  # noqa: E402
from brokers.ibkr.options import IbkrInstrument, IbkrOptions  # noqa: E402
from brokers.ibkr.orders import order_to_ib  # noqa: E402
from brokers.ibkr.reports import trade_report  # noqa: E402
from host.trading.model import Order, OrderType, Side, TimeInForce  # noqa: E402
from host.trading.states import OrderStatus as Status  # noqa: E402
from tests.brokers.ibkr.fake_tws import FakeOrder, FakeTws  # noqa: E402

EUR_USD = {"EUR_USD": IbkrInstrument(kind="forex")}


def _order(n: int) -> Order:
    now = datetime.now(UTC)
    cid = f"bench-20261122-{n:06d}"
    return Order(
        client_order_id=cid, request_id=cid, strategy="bench", run_id=None, broker="ib", broker_order_id=None,
        instrument="EUR_USD", side=Side.BUY, type=OrderType.MARKET, quantity=Decimal(20000), limit_price=None,
        stop_price=None, time_in_force=TimeInForce.GTC, stop_loss=None, take_profit=None, tag=None,
        status=Status.SUBMITTED, raw_status=None, filled_quantity=Decimal(0), average_price=None, commission=Decimal(0),
        error=None, created_at=now, updated_at=now,
    )  # fmt: skip


def _filled_trade(n: int) -> Trade:
    order = MarketOrder("BUY", 20000.0, orderId=n, orderRef=f"bench-20261122-{n:06d}", permId=10_000 + n)
    at = datetime(2026, 11, 22, 14, 3, 12, tzinfo=UTC)
    execution = Execution(execId=f"0000e0d5.{n:08x}.01.01", time=at, shares=20000.0, price=1.08432, permId=10_000 + n, orderId=n)
    fill = Fill(Forex("EURUSD"), execution, CommissionReport(execution.execId, 2.0, "USD"), at)
    log = [TradeLogEntry(at, "PendingSubmit"), TradeLogEntry(at, "Submitted"), TradeLogEntry(at, "Submitted", "Fill 20000.0@1.08432"),
           TradeLogEntry(at, "Filled")]  # fmt: skip
    status = OrderStatus(orderId=n, status="Filled", filled=20000.0, remaining=0.0, avgFillPrice=1.08432, permId=10_000 + n)
    return Trade(Forex("EURUSD"), order, status, [fill], log)


def _mapping_us(n: int) -> float:
    orders = [_order(i) for i in range(n)]
    trades = [_filled_trade(i) for i in range(n)]
    spec = IbkrInstrument(kind="forex")
    started = time.perf_counter()
    for i, (order, trade) in enumerate(zip(orders, trades)):
        contract_for("EUR_USD", spec, 12087792)
        order_to_ib(order, [i + 1], account="DU123")
        trade_report(trade)
    return (time.perf_counter() - started) / n * 1e6


def _serve(pipe: Connection) -> None:
    """The fake TWS in its own process: every order acknowledged and filled at once, with its commission."""

    async def main() -> None:
        fake = FakeTws()

        def fill(order: FakeOrder) -> None:
            fake.accept(order)
            fake.fill(order, order.quantity, "1.08432", commission="2")

        fake.on_place = fill
        pipe.send(await fake.start())
        loop = asyncio.get_running_loop()
        while not await loop.run_in_executor(None, pipe.poll, 0.05):
            pass
        pipe.recv()
        pipe.send(fake.connections)
        await fake.stop()

    asyncio.run(main())


async def _adapter_round_trips(port: int, n: int, warm: int) -> tuple[list[float], list[float]]:
    """(submit → its answer, submit → the fill with its commission known) per order."""
    filled: dict[str, ExecutionReport] = {}
    changed = asyncio.Event()

    def emit(report: ExecutionReport) -> None:
        if report.status is Status.FILLED:
            filled[report.client_order_id] = report
            changed.set()

    options = IbkrOptions(port=port, client_id=11, timeout=5, rate_limit=1_000_000, commission_wait=1.0, instruments=EUR_USD)
    services = AdapterServices(engine=sqlalchemy.create_engine("sqlite://"), emit=emit, clock=time.time, logger=logging.getLogger("bench.ibkr"))
    broker = IbkrBroker("ib", options, services)
    broker._ib.client.MaxRequests = 0  # ib_async's own throttle too, which the adapter keeps as a backstop at IB's 50 a second
    await broker.start()
    answers: list[float] = []
    fills: list[float] = []
    try:
        for i in range(warm + n):
            order = _order(i)
            started = time.perf_counter()
            report = await broker.submit(order)
            answered = time.perf_counter()
            while report.status is not Status.FILLED:
                changed.clear()
                await changed.wait()
                report = filled.get(order.client_order_id, report)
            assert report.fills[0].commission == 2, (i, report)
            if i >= warm:
                answers.append(answered - started)
                fills.append(time.perf_counter() - started)
    finally:
        await broker.stop()
    return answers, fills


async def _bare_round_trips(port: int, n: int, warm: int) -> tuple[list[float], list[float]]:
    """The same with a bare ib_async client: (placeOrder → TWS's acknowledgement, placeOrder → fill with commission)."""
    ib = IB()
    ib.client.MaxRequests = 0
    await ib.connectAsync("127.0.0.1", port, clientId=12, timeout=5)
    contract = Forex("EURUSD")
    await ib.qualifyContractsAsync(contract)
    answers: list[float] = []
    fills: list[float] = []
    changed = asyncio.Event()
    ib.updateEvent += changed.set
    try:
        for i in range(warm + n):
            order = MarketOrder("BUY", 20000.0, orderRef=f"bare-{i}", account="DU123")
            started = time.perf_counter()
            trade = ib.placeOrder(contract, order)
            # What the adapter answers with: TWS's acknowledgement, and the commission of any fill already in.
            while trade.orderStatus.status == "PendingSubmit" or any(not f.commissionReport.execId for f in trade.fills):
                changed.clear()
                await changed.wait()
            answered = time.perf_counter()
            while not (trade.orderStatus.status == "Filled" and trade.fills and trade.fills[0].commissionReport.execId):
                changed.clear()
                await changed.wait()
            if i >= warm:
                answers.append(answered - started)
                fills.append(time.perf_counter() - started)
    finally:
        ib.disconnect()
    return answers, fills


def measure(n: int) -> dict[str, float]:
    """Per-order figures in microseconds (see the module docstring)."""
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    mapping = _mapping_us(n)
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(theirs,), daemon=True)
    server.start()
    try:
        port = ours.recv()
        warm = warm_up(n)
        bare, bare_fills = asyncio.run(_bare_round_trips(port, n, warm))
        adapter, adapter_fills = asyncio.run(_adapter_round_trips(port, n, warm))
        ours.send("stop")
        connections = ours.recv()
    finally:
        server.join(timeout=5)
        if server.is_alive():
            server.terminate()
    return figures(mapping, adapter, bare, connections - 1) | {  # the bare client's session is the first one
        "to_fill_p50_us": percentile_us(adapter_fills, 0.5),
        "bare_to_fill_p50_us": percentile_us(bare_fills, 0.5),
    }


if __name__ == "__main__":
    main(measure)
