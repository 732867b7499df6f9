"""Reporting each change of an order once, after the call that made it, with its commission."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from ib_async import CommissionReport, Execution, Fill, Forex, LimitOrder, OrderStatus, Trade, TradeLogEntry

from brokers.base import ExecutionReport
from brokers.ibkr.reports import trade_report
from brokers.ibkr.tracking import ReportTracker, signature, waits_for_details
from host.trading.states import OrderStatus as S

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 11, 22, tzinfo=UTC)
LOG = logging.getLogger("test.ibkr.tracking")


def working(ref: str = "sma-1") -> Trade:
    order = LimitOrder("BUY", 100.0, 1.08, orderId=7, orderRef=ref, permId=99)
    log = [TradeLogEntry(T0, "PendingSubmit"), TradeLogEntry(T0, "Submitted")]
    return Trade(Forex("EURUSD"), order, OrderStatus(orderId=7, status="Submitted", permId=99, remaining=100.0), [], log)


def add_fill(trade: Trade, exec_id: str, shares: float, *, commission: bool) -> Fill:
    report = CommissionReport(exec_id, 0.5, "USD") if commission else CommissionReport()
    fill = Fill(trade.contract, Execution(execId=exec_id, time=T0, shares=shares, price=1.08, permId=99, orderId=7), report, T0)
    trade.fills.append(fill)
    trade.orderStatus.filled += shares
    return fill


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def tracker(sent: list[ExecutionReport], clock: Clock | None = None, hold: float = 0.5) -> ReportTracker:
    return ReportTracker(sent.append, trade_report, hold=hold, logger=LOG, clock=clock or Clock())


async def test_a_change_is_reported_once() -> None:
    sent: list[ExecutionReport] = []
    t, trades = tracker(sent), working()
    t.mark(trades)
    assert t.flush() == 1 and sent[0].status is S.ACCEPTED
    t.mark(trades)
    assert t.flush() == 0
    trades.log.append(TradeLogEntry(T0, "Cancelled"))
    t.mark(trades)
    assert t.flush() == 1 and sent[-1].status is S.CANCELED


async def test_orders_without_our_client_order_id_are_not_reported() -> None:
    sent: list[ExecutionReport] = []
    t = tracker(sent)
    t.mark(working(ref=""))
    assert t.flush() == 0 and sent == []


async def test_what_a_call_answered_is_not_reported_again_and_changes_wait_for_the_call() -> None:
    sent: list[ExecutionReport] = []
    t, trade = tracker(sent), working()
    with t.busy(["sma-1"]):
        t.mark(trade)
        assert t.flush() == 0
        t.told(trade_report(trade))
    assert t.flush() == 0 and sent == []
    with t.busy(["sma-1"]):
        trade.log.append(TradeLogEntry(T0, "Filled"))
        t.mark(trade)
        assert t.flush() == 0
    assert t.flush() == 1 and sent[0].status is S.FILLED
    assert t.knows("sma-1") and not t.knows("sma-2")


async def test_nested_calls_keep_the_order_busy_until_both_end() -> None:
    sent: list[ExecutionReport] = []
    t, trade = tracker(sent), working()
    with t.busy(["sma-1"]):
        with t.busy(["sma-1"]):
            pass
        t.mark(trade)
        assert t.flush() == 0
    assert t.flush() == 1


async def test_a_fill_waits_for_its_commission_report() -> None:
    sent: list[ExecutionReport] = []
    clock = Clock()
    t, trade = tracker(sent, clock), working()
    fill = add_fill(trade, "e1", 100.0, commission=False)
    trade.log.append(TradeLogEntry(T0, "Filled"))
    assert waits_for_details(trade)
    t.mark(trade)
    assert t.flush() == 0
    fill.commissionReport.execId, fill.commissionReport.commission = "e1", 0.5  # as ib_async fills it in
    assert t.flush() == 1 and sent[0].fills[0].commission == 0.5 and sent[0].status is S.FILLED
    t.close()


async def test_a_fill_goes_out_without_commission_once_the_hold_is_over() -> None:
    sent: list[ExecutionReport] = []
    clock = Clock()
    t, trade = tracker(sent, clock, hold=0.5), working()
    add_fill(trade, "e1", 40.0, commission=False)
    t.mark(trade)
    assert t.flush() == 0
    clock.now = 0.49
    assert t.flush() == 0
    clock.now = 0.5
    assert t.flush() == 1 and sent[0].status is S.PARTIALLY_FILLED and sent[0].fills[0].commission == 0
    t.close()


async def test_the_hold_wakes_by_itself() -> None:
    sent: list[ExecutionReport] = []
    t, trade = ReportTracker(sent.append, trade_report, hold=0.02, logger=LOG), working()
    add_fill(trade, "e1", 40.0, commission=False)
    t.mark(trade)
    t.flush()
    import asyncio

    await asyncio.sleep(0.06)
    assert len(sent) == 1


async def test_a_status_counting_executions_not_received_waits_for_them() -> None:
    sent: list[ExecutionReport] = []
    t, trade = tracker(sent), working()
    trade.orderStatus.filled = 100.0
    trade.log.append(TradeLogEntry(T0, "Filled"))
    assert waits_for_details(trade)
    t.mark(trade)
    assert t.flush() == 0
    add_fill(trade, "e1", 100.0, commission=True)
    trade.orderStatus.filled = 100.0
    assert t.flush() == 1 and len(sent[0].fills) == 1
    t.close()


async def test_a_failing_emit_does_not_hold_back_the_others(caplog: pytest.LogCaptureFixture) -> None:
    got: list[ExecutionReport] = []

    def emit(report: ExecutionReport) -> None:
        if report.client_order_id == "bad":
            raise RuntimeError("router gone")
        got.append(report)

    t = ReportTracker(emit, trade_report, hold=0, logger=LOG)
    t.mark(working("bad"))
    t.mark(working("good"))
    assert t.flush() == 2
    assert [r.client_order_id for r in got] == ["good"]
    assert "emitting the report of order bad failed" in caplog.text


def test_signature_ignores_the_time_and_raw_data() -> None:
    a = trade_report(working())
    b = ExecutionReport(a.client_order_id, a.status, a.raw_status, quantity=a.quantity, limit_price=a.limit_price, raw={"x": 1})
    assert signature(a) == signature(b)
