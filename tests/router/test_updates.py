"""Tests for host.router.updates: execution reports folded into order records under the state table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brokers.base import ExecutionReport
from host.router.records import OrderRecord
from host.router.updates import apply_report, transition
from host.trading.model import ErrorInfo, Fill, OrderType, Side, TimeInForce
from host.trading.states import TRANSITIONS, OrderStatus

S = OrderStatus
D = Decimal
T0 = 1_714_521_600.0


def make_record(status: OrderStatus = S.SUBMITTED, quantity: str = "10", **overrides: Any) -> OrderRecord:
    fields: dict[str, Any] = dict(
        client_order_id="sma-20240501-1", strategy="sma", request_id="r1.1", day="20240501", seq=1, run_id=1,
        broker="paper", instrument="EUR_USD", side=Side.BUY, type=OrderType.LIMIT, quantity=D(quantity),
        limit_price=D("1.1"), stop_price=None, time_in_force=TimeInForce.GTC, stop_loss=None, take_profit=None,
        tag=None, status=status, created_at=T0, updated_at=T0,
    )
    fields.update(overrides)
    return OrderRecord(**fields)


def fill(trade_id: str, quantity: str, price: str = "1.1", commission: str = "0") -> Fill:
    return Fill(trade_id=trade_id, quantity=D(quantity), price=D(price), commission=D(commission), at=datetime.fromtimestamp(T0 + 5, UTC))


def report(status: OrderStatus, *fills: Fill, raw: str = "raw", **extra: Any) -> ExecutionReport:
    return ExecutionReport(client_order_id="sma-20240501-1", status=status, raw_status=raw, fills=tuple(fills), **extra)


def never(_trade_id: str) -> bool:
    return False


# -- transition ---------------------------------------------------------------------------


def test_transition_allowed_moves() -> None:
    record = make_record(S.SUBMITTED)
    assert transition(record, S.ACCEPTED) and record.status == S.ACCEPTED


def test_transition_to_the_same_state_is_fine_even_from_a_final_one() -> None:
    record = make_record(S.FILLED)
    assert transition(record, S.FILLED) and record.status == S.FILLED


def test_transition_refused_keeps_the_state_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    record = make_record(S.FILLED)
    with caplog.at_level("WARNING", logger="tradehost.router"):
        assert not transition(record, S.ACCEPTED)
    assert record.status == S.FILLED
    assert "refused transition" in caplog.text and "sma-20240501-1" in caplog.text


@pytest.mark.parametrize(("before", "after"), [(b, a) for b in S for a in S if a != b])
def test_transition_follows_the_table(before: OrderStatus, after: OrderStatus) -> None:
    record = make_record(before)
    assert transition(record, after) == (after in TRANSITIONS[before])
    assert record.status == (after if after in TRANSITIONS[before] else before)


# -- apply_report ------------------------------------------------------------------------------


def test_accepted_report_sets_status_raw_status_and_broker_order_id() -> None:
    record = make_record(S.SUBMITTED)
    applied = apply_report(record, report(S.ACCEPTED, raw="NEW", broker_order_id="B-1"), never, T0 + 1)
    assert (applied.before, applied.after, applied.refused, applied.fills) == (S.SUBMITTED, S.ACCEPTED, None, [])
    assert applied.changed
    assert record.status == S.ACCEPTED and record.raw_status == "NEW" and record.broker_order_id == "B-1"
    assert record.updated_at == T0 + 1


def test_broker_order_id_is_kept_once_known() -> None:
    record = make_record(S.ACCEPTED, broker_order_id="B-1")
    apply_report(record, report(S.ACCEPTED, raw="STILL_NEW", broker_order_id="B-2"), never, T0 + 1)
    assert record.broker_order_id == "B-1"
    apply_report(record, report(S.ACCEPTED, raw="LATEST"), never, T0 + 2)
    assert record.broker_order_id == "B-1" and record.raw_status == "LATEST"


def test_a_report_that_changes_nothing_is_not_a_change_but_touches_updated_at() -> None:
    record = make_record(S.ACCEPTED)
    applied = apply_report(record, report(S.ACCEPTED), never, T0 + 3)
    assert not applied.changed and applied.refused is None
    assert record.updated_at == T0 + 3


def test_a_fill_seen_twice_is_applied_once() -> None:
    record = make_record(S.ACCEPTED)
    first = apply_report(record, report(S.PARTIALLY_FILLED, fill("t1", "4")), never, T0 + 1)
    again = apply_report(record, report(S.PARTIALLY_FILLED, fill("t1", "4")), never, T0 + 2)
    assert [f.trade_id for f in first.fills] == ["t1"] and again.fills == []
    assert record.filled_quantity == D("4") and len(record.fills) == 1


def test_a_fill_the_journal_has_seen_is_skipped() -> None:
    record = make_record(S.ACCEPTED)
    applied = apply_report(record, report(S.PARTIALLY_FILLED, fill("old", "3"), fill("new", "2")), lambda t: t == "old", T0 + 1)
    assert [f.trade_id for f in applied.fills] == ["new"]
    assert record.filled_quantity == D("2")


def test_a_duplicate_inside_one_report_counts_once() -> None:
    record = make_record(S.ACCEPTED)
    apply_report(record, report(S.PARTIALLY_FILLED, fill("t1", "3"), fill("t1", "3")), never, T0 + 1)
    assert record.filled_quantity == D("3")


def test_fills_completing_the_quantity_make_it_filled_whatever_the_report_says() -> None:
    record = make_record(S.SUBMITTED)
    applied = apply_report(record, report(S.ACCEPTED, fill("t1", "6", "1.1"), fill("t2", "4", "1.2")), never, T0 + 1)
    assert applied.after == S.FILLED and record.status == S.FILLED and applied.refused is None
    assert record.filled_quantity == D("10") and record.average_price == D("1.14")


def test_a_partial_fill_on_an_accepted_report_is_partially_filled() -> None:
    record = make_record(S.ACCEPTED)
    applied = apply_report(record, report(S.ACCEPTED, fill("t1", "3")), never, T0 + 1)
    assert applied.after == S.PARTIALLY_FILLED and record.filled_quantity == D("3")


def test_a_partial_fill_on_a_submitted_report_is_partially_filled() -> None:
    record = make_record(S.SUBMITTED)
    assert apply_report(record, report(S.SUBMITTED, fill("t1", "3")), never, T0 + 1).after == S.PARTIALLY_FILLED


def test_a_partial_fill_while_a_cancel_is_pending_stays_pending() -> None:
    record = make_record(S.PENDING_CANCEL)
    applied = apply_report(record, report(S.PENDING_CANCEL, fill("t1", "3")), never, T0 + 1)
    assert applied.after == S.PENDING_CANCEL and record.filled_quantity == D("3")


def test_a_late_partial_fill_on_a_canceled_order_counts_but_it_stays_canceled() -> None:
    record = make_record(S.CANCELED)
    for status in (S.PARTIALLY_FILLED, S.ACCEPTED, S.CANCELED):
        record.status = S.CANCELED
        applied = apply_report(record, report(status, fill(f"late-{status}", "1")), never, T0 + 1)
        assert applied.after == S.CANCELED and applied.refused is None, status
    assert record.filled_quantity == D("3")


def test_a_late_fill_completing_a_canceled_order_fills_it() -> None:
    record = make_record(S.CANCELED)
    record.add_fill(fill("t1", "7"))
    applied = apply_report(record, report(S.CANCELED, fill("t2", "3")), never, T0 + 1)
    assert (applied.before, applied.after) == (S.CANCELED, S.FILLED)
    assert record.status == S.FILLED and record.filled_quantity == D("10")


@pytest.mark.parametrize("final", [S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED])
def test_an_illegal_report_is_refused_and_the_status_kept(final: OrderStatus) -> None:
    record = make_record(final, raw_status=str(final))
    applied = apply_report(record, report(S.ACCEPTED, raw="OPEN"), never, T0 + 9)
    assert applied.refused == S.ACCEPTED
    assert record.status == final and applied.after == final and not applied.changed
    assert record.updated_at == T0  # nothing changed
    assert record.raw_status == "OPEN"  # the broker's word is still recorded


def test_a_stale_accepted_report_on_a_completely_filled_order_is_not_a_refusal() -> None:
    record = make_record(S.FILLED)
    record.add_fill(fill("t1", "10"))
    applied = apply_report(record, report(S.ACCEPTED, fill("t1", "10")), never, T0 + 9)
    assert applied.refused is None and applied.after == S.FILLED and applied.fills == []
    assert record.filled_quantity == D("10")


def test_new_fills_of_a_refused_report_are_still_applied() -> None:
    record = make_record(S.EXPIRED)
    applied = apply_report(record, report(S.ACCEPTED, fill("t1", "2", "1.3", "0.1")), never, T0 + 9)
    assert applied.refused == S.PARTIALLY_FILLED
    assert record.status == S.EXPIRED
    assert [f.trade_id for f in applied.fills] == ["t1"] and applied.changed
    assert record.filled_quantity == D("2") and record.average_price == D("1.3") and record.commission == D("0.1")
    assert record.updated_at == T0 + 9


def test_rejected_report_keeps_the_error() -> None:
    record = make_record(S.SUBMITTED)
    error = ErrorInfo(code="INSUFFICIENT_FUNDS", message="margin", broker_code="E7")
    applied = apply_report(record, report(S.REJECTED, raw="REJECTED", error=error), never, T0 + 1)
    assert applied.after == S.REJECTED and record.error == error


def test_modified_terms_are_taken_from_the_report() -> None:
    record = make_record(S.PENDING_UPDATE)
    apply_report(record, report(S.ACCEPTED, quantity=D("12"), limit_price=D("1.05")), never, T0 + 1)
    assert (record.status, record.quantity, record.limit_price, record.stop_price) == (S.ACCEPTED, D("12"), D("1.05"), None)


def test_a_reduced_quantity_already_filled_makes_it_filled() -> None:
    record = make_record(S.PENDING_UPDATE)
    record.add_fill(fill("t1", "6"))
    applied = apply_report(record, report(S.ACCEPTED, quantity=D("6")), never, T0 + 1)
    assert applied.after == S.FILLED


# -- the property --------------------------------------------------------------------------------

POOL = {f"t{i}": D(q) for i, q in enumerate(["1", "2", "3", "0.5", "4", "1.5"])}

reports = st.lists(
    st.tuples(st.sampled_from(list(S)), st.lists(st.sampled_from(sorted(POOL)), max_size=3), st.booleans()),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([S.INITIALIZED, S.SUBMITTED, S.ACCEPTED, S.PENDING_CANCEL]), reports)
def test_any_report_sequence_moves_along_the_table_and_counts_each_trade_once(
    start: OrderStatus, sequence: list[tuple[OrderStatus, list[str], bool]]
) -> None:
    record = make_record(start)
    journal: set[str] = set()
    delivered: set[str] = set()
    for i, (status, trade_ids, use_journal) in enumerate(sequence):
        before = record.status
        seen: Callable[[str], bool] = journal.__contains__ if use_journal else never
        applied = apply_report(record, report(status, *(fill(t, str(POOL[t])) for t in trade_ids)), seen, T0 + i)
        journal.update(f.trade_id for f in applied.fills)
        delivered.update(trade_ids)
        assert applied.before == before and applied.after == record.status
        assert record.status == before or record.status in TRANSITIONS[before], (before, record.status)
        if applied.refused is not None:
            assert record.status == before
        assert record.filled_quantity == sum((POOL[t] for t in delivered), D(0))
        assert sorted(f.trade_id for f in record.fills) == sorted(delivered)
        if record.filled_quantity >= record.quantity and (before == S.FILLED or S.FILLED in TRANSITIONS[before]):
            assert record.status == S.FILLED
        if before == S.CANCELED:
            assert record.status in (S.CANCELED, S.FILLED)
