"""Trade logs → our status (by IB's codes, not ib_async's status), fills and reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from ib_async import CommissionReport, Execution, Fill, Forex, LimitOrder, MarketOrder, OrderStatus, StopOrder, Trade, TradeLogEntry

from brokers.ibkr.reports import error_text, fills_of, order_state, trade_report, trade_state, unfinished_fills
from host.trading.states import OrderStatus as S

T0 = datetime(2026, 11, 22, 14, 30, tzinfo=UTC)
Q = Decimal(20000)


def line(status: str, message: str = "", code: int = 0) -> TradeLogEntry:
    return TradeLogEntry(T0, status, message, code)


def err(code: int, text: str) -> TradeLogEntry:
    # As ib_async writes it: the status it sets, and its own prefix before IB's text.
    return TradeLogEntry(T0, "Cancelled", f"Error {code}, reqId 7: {text}", code)


NEW = [line("PendingSubmit")]
WORKING = [*NEW, line("Submitted")]


@pytest.mark.parametrize(
    ("log", "filled", "status", "raw", "answered"),
    [
        (NEW, 0, S.SUBMITTED, "PendingSubmit", False),
        (WORKING, 0, S.ACCEPTED, "Submitted", True),
        ([*NEW, line("PreSubmitted")], 0, S.ACCEPTED, "PreSubmitted", True),
        ([*WORKING, line("Submitted", "Fill 5000.0@1.08")], 5000, S.PARTIALLY_FILLED, "Submitted", True),
        ([*WORKING, line("Filled")], 20000, S.FILLED, "Filled", True),
        (WORKING, 20000, S.FILLED, "Filled", True),
        ([*WORKING, line("PendingCancel"), line("Cancelled")], 0, S.CANCELED, "Cancelled", True),
        ([*WORKING, line("PendingCancel"), line("Cancelled")], 5000, S.CANCELED, "Cancelled", True),
        ([*WORKING, line("ApiCancelled")], 0, S.CANCELED, "ApiCancelled", True),
        ([*WORKING, line("PendingCancel")], 0, S.PENDING_CANCEL, "PendingCancel", False),
        ([*WORKING, err(202, "Order Canceled - reason:")], 0, S.CANCELED, "Cancelled", True),
        ([*NEW, line("Inactive")], 0, S.REJECTED, "Inactive", True),
        ([*WORKING, line("Inactive")], 0, S.CANCELED, "Inactive", True),
        ([*NEW, TradeLogEntry(T0, "ValidationError", "Warning 399, reqId 7: Order message warning", 399), line("Submitted")], 0, S.ACCEPTED, "Submitted", True),
        ([*WORKING, TradeLogEntry(T0, "ValidationError", "Warning 2109, reqId 7: outside RTH", 2109)], 0, S.ACCEPTED, "Submitted", True),
    ],
)
def test_states_from_ordinary_logs(log: list[TradeLogEntry], filled: int, status: S, raw: str, answered: bool) -> None:
    state = order_state(log, Decimal(filled), Q)
    assert (state.status, state.raw_status, state.answered, state.error) == (status, raw, answered, None)


def test_a_201_reject_followed_by_inactive_is_rejected_with_the_reason() -> None:
    state = order_state([*NEW, err(201, "Order rejected - reason:Insufficient available funds"), line("Inactive")], Decimal(0), Q)
    assert (state.status, state.raw_status) == (S.REJECTED, "Inactive (IB error 201)")
    assert state.error is not None
    assert (state.error.code, state.error.broker_code, state.error.broker_message) == (
        "INSUFFICIENT_FUNDS", "201", "Order rejected - reason:Insufficient available funds",
    )  # fmt: skip


def test_a_reject_alone_is_rejected_too() -> None:
    state = order_state([*NEW, err(110, "The price does not conform to the minimum price variation for this contract.")], Decimal(0), Q)
    assert state.status is S.REJECTED and state.error is not None and state.error.code == "INVALID_PRICE"


def test_an_error_that_ends_a_working_order_cancels_it_with_the_reason() -> None:
    state = order_state([*WORKING, err(201, "Order rejected - reason:margin call liquidation")], Decimal(0), Q)
    assert state.status is S.CANCELED and state.error is not None and state.error.code == "INSUFFICIENT_FUNDS"


def test_a_refused_cancel_leaves_the_order_as_it_was() -> None:
    log = [*WORKING, line("PendingCancel"), err(10148, "OrderId 7 that needs to be cancelled cannot be cancelled, state: Filled.")]
    assert order_state(log, Decimal(0), Q).status is S.ACCEPTED
    assert order_state([*log, line("Filled")], Decimal(20000), Q).status is S.FILLED


def test_a_refused_modification_leaves_the_order_working() -> None:
    log = [*WORKING, line("Submitted", "Modify"), err(201, "Order rejected - reason:price too far")]
    state = order_state(log, Decimal(0), Q)
    assert (state.status, state.error, state.answered) == (S.ACCEPTED, None, True)


def test_a_modification_is_answered_by_the_next_status() -> None:
    pending = [*WORKING, line("Submitted", "Modify")]
    assert not order_state(pending, Decimal(0), Q).answered
    assert order_state([*pending, line("Submitted", "Modified")], Decimal(0), Q).answered


UNCLASSIFIED = err(10999, "A message the adapter has never seen")


@pytest.mark.parametrize(
    ("log", "status", "answered"),
    [
        ([*NEW, UNCLASSIFIED], S.SUBMITTED, False),  # no proof either way: the adapter reports an unknown outcome
        ([*NEW, UNCLASSIFIED, line("Submitted")], S.ACCEPTED, True),
        ([*WORKING, UNCLASSIFIED], S.ACCEPTED, True),  # a working order is not ended by it
        ([*WORKING, line("PendingCancel"), UNCLASSIFIED], S.ACCEPTED, True),  # the cancel counts as refused
        ([*WORKING, line("Submitted", "Modify"), UNCLASSIFIED], S.ACCEPTED, True),  # so does the modification
    ],
)
def test_an_unclassified_error_ends_no_order(log: list[TradeLogEntry], status: S, answered: bool) -> None:
    state = order_state(log, Decimal(0), Q)
    assert (state.status, state.answered, state.error) == (status, answered, None)


def test_a_refusal_after_an_unclassified_error_still_rejects() -> None:
    state = order_state([*NEW, UNCLASSIFIED, err(201, "Order rejected - reason:Insufficient available funds"), line("Inactive")], Decimal(0), Q)
    assert state.status is S.REJECTED and state.error is not None and state.error.broker_code == "201"


def test_connectivity_news_changes_nothing() -> None:
    log = [*WORKING, TradeLogEntry(T0, "Cancelled", "Error 1100, reqId 7: lost", 1100)]
    assert order_state(log, Decimal(0), Q).status is S.ACCEPTED


@pytest.mark.parametrize(
    ("message", "text"),
    [("Error 201, reqId 7: Order rejected - reason:x: y", "Order rejected - reason:x: y"), ("Warning 399, reqId 3: careful", "careful"), ("plain", "plain")],
)
def test_error_text(message: str, text: str) -> None:
    assert error_text(message) == text


def ib_fill(exec_id: str, shares: float, price: float, *, commission: float | None = 1.5, at: datetime = T0) -> Fill:
    report = CommissionReport(exec_id, commission, "USD") if commission is not None else CommissionReport()
    execution = Execution(execId=exec_id, time=at, shares=shares, price=price, orderId=7, permId=99, orderRef="c")
    return Fill(Forex("EURUSD"), execution, report, at)


def test_fills_keep_ibs_exec_id_and_commission_and_are_in_utc() -> None:
    eastern = timezone(timedelta(hours=-5))
    fills = fills_of([ib_fill("e1", 5000.0, 1.0851, at=T0.astimezone(eastern)), ib_fill("e2", 15000.0, 1.08515, commission=None)])
    assert [(f.trade_id, f.quantity, f.price, f.commission) for f in fills] == [
        ("e1", Decimal("5000"), Decimal("1.0851"), Decimal("1.5")), ("e2", Decimal("15000"), Decimal("1.08515"), Decimal(0)),
    ]  # fmt: skip
    assert fills[0].at == T0 and fills[0].at.tzinfo == UTC


def trade(order: object, status: str, log: list[TradeLogEntry], fills: list[Fill] | None = None) -> Trade:
    return Trade(Forex("EURUSD"), order, OrderStatus(orderId=7, status=status, permId=99, filled=0.0, remaining=20000.0), fills or [], log)  # type: ignore[arg-type]


def test_a_report_of_a_partly_filled_limit_order() -> None:
    order = LimitOrder("BUY", 20000.0, 1.08, orderId=7, orderRef="sma-1", permId=99)
    t = trade(order, "Submitted", [*WORKING, line("Submitted", "Fill 5000.0@1.08")], [ib_fill("e1", 5000.0, 1.08, commission=None)])
    report = trade_report(t)
    assert (report.client_order_id, report.status, report.broker_order_id) == ("sma-1", S.PARTIALLY_FILLED, "7")
    assert (report.quantity, report.limit_price, report.stop_price) == (Decimal("20000"), Decimal("1.08"), None)
    assert report.raw == {"order_id": 7, "perm_id": 99, "status": "Submitted", "filled": "0", "remaining": "20000"}
    assert unfinished_fills(t) == ["e1"]


def test_a_report_keeps_the_last_errors_in_raw() -> None:
    order = MarketOrder("BUY", 20000.0, orderId=7, orderRef="sma-1")
    report = trade_report(trade(order, "Inactive", [*NEW, err(201, "Order rejected - reason:nope"), line("Inactive")]))
    assert report.raw is not None and report.raw["errors"] == [[201, "Order rejected - reason:nope"]]
    assert report.limit_price is None and report.stop_price is None


def test_a_trade_listed_by_tws_without_a_log_takes_its_listed_status() -> None:
    order = StopOrder("SELL", 20000.0, 1.07, orderRef="sma-1-SL", permId=99)  # a completed order: no order id
    t = trade(order, "Cancelled", [])
    assert trade_state(t).status is S.CANCELED
    report = trade_report(t, parent="sma-1")
    assert (report.broker_order_id, report.stop_price, report.parent_client_order_id) == (None, Decimal("1.07"), "sma-1")


def test_a_completed_status_overrides_a_stale_live_one() -> None:
    order = LimitOrder("BUY", 20000.0, 1.08, orderId=7, orderRef="sma-1")
    assert trade_state(trade(order, "Submitted", WORKING), completed="Cancelled").status is S.CANCELED
