"""Tests for host.router.records: ids, days, fill arithmetic, the wire and model forms, and the orders-table row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, select

from host.router.records import OrderRecord, client_order_id, day_of, record_from_row, record_to_row
from host.router.tables import metadata, orders_table
from host.trading.model import ErrorInfo, Fill, Order, OrderRequest, OrderType, Side, TimeInForce
from host.trading.states import OrderStatus

D = Decimal
T0 = 1_714_521_600.0  # 2024-05-01 00:00:00 UTC


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def make_record(**overrides: Any) -> OrderRecord:
    fields: dict[str, Any] = dict(
        client_order_id="sma-20240501-3", strategy="sma", request_id="r7.12", day="20240501", seq=3, run_id=7,
        broker="paper", instrument="EUR_USD", side=Side.BUY, type=OrderType.LIMIT, quantity=D("1000"),
        limit_price=D("1.08500"), stop_price=None, time_in_force=TimeInForce.GTC, stop_loss=D("1.08000"),
        take_profit=D("1.09500"), tag="entry", status=OrderStatus.ACCEPTED, created_at=T0 + 12.25, updated_at=T0 + 13.5,
    )
    fields.update(overrides)
    return OrderRecord(**fields)


def fill(trade_id: str, quantity: str, price: str, commission: str = "0", ts: float = T0 + 20) -> Fill:
    return Fill(trade_id=trade_id, quantity=D(quantity), price=D(price), commission=D(commission), at=at(ts))


# -- ids and days ---------------------------------------------------------------------


def test_client_order_id_format() -> None:
    assert client_order_id("sma", "20240501", 17) == "sma-20240501-17"
    assert client_order_id("mean-rev.v2", "20231231", 1) == "mean-rev.v2-20231231-1"


def test_day_of_is_the_utc_day() -> None:
    assert day_of(T0) == "20240501"
    assert day_of(T0 - 0.001) == "20240430"
    assert day_of(T0 + 86399.999) == "20240501"
    assert day_of(T0 + 86400) == "20240502"
    assert day_of(0) == "19700101"


def test_day_of_ignores_the_local_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: local date is already the next day
    time.tzset()
    try:
        assert day_of(T0 + 11 * 3600) == "20240501"
    finally:
        monkeypatch.undo()
        time.tzset()


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_day_of_matches_datetime(ts: float) -> None:
    assert day_of(ts) == datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d")


def test_from_request_copies_terms_and_starts_initialized() -> None:
    request = OrderRequest(instrument="EUR_USD", side=Side.SELL, quantity=D("2500"), type=OrderType.STOP_LIMIT,
                           limit_price=D("1.07"), stop_price=D("1.071"), time_in_force=TimeInForce.DAY, tag="x")
    record = OrderRecord.from_request(request, client_order_id="a-20240501-1", strategy="a", request_id="r1.1",
                                      day="20240501", seq=1, run_id=None, broker="paper", now=T0)
    assert (record.side, record.type, record.quantity, record.limit_price, record.stop_price) == (Side.SELL, OrderType.STOP_LIMIT, D("2500"), D("1.07"), D("1.071"))
    assert record.time_in_force == TimeInForce.DAY and record.tag == "x" and record.run_id is None
    assert record.status == OrderStatus.INITIALIZED and record.created_at == record.updated_at == T0
    assert record.filled_quantity == 0 and record.average_price is None and record.fills == []
    assert not record.is_open and not record.is_terminal


def test_from_request_copies_the_trailing_stop_to_the_model_and_the_wire() -> None:
    request = OrderRequest(instrument="EUR_USD", side=Side.BUY, quantity=D("1000"), type=OrderType.MARKET_IF_TOUCHED,
                           stop_price=D("1.07"), trailing_stop=D("0.00500"))
    record = OrderRecord.from_request(request, client_order_id="a-20240501-2", strategy="a", request_id="r1.2",
                                      day="20240501", seq=2, run_id=None, broker="fx", now=T0)
    assert (record.type, record.stop_price, record.trailing_stop) == (OrderType.MARKET_IF_TOUCHED, D("1.07"), D("0.00500"))
    assert record.to_model().trailing_stop == D("0.00500")
    wire = record.to_wire()
    assert wire["trailing_stop"] == "0.00500" and wire["type"] == "MARKET_IF_TOUCHED"
    assert Order.model_validate(wire) == record.to_model()
    assert make_record().to_wire()["trailing_stop"] is None and make_record().to_model().trailing_stop is None


def test_is_open_and_is_terminal() -> None:
    assert make_record(status=OrderStatus.PARTIALLY_FILLED).is_open
    assert make_record(status=OrderStatus.CANCELED).is_terminal
    assert not make_record(status=OrderStatus.CANCELED).is_open


# -- fills ----------------------------------------------------------------------------


def test_add_fill_quantity_average_and_commission() -> None:
    record = make_record()
    record.add_fill(fill("t1", "100", "1.1", "0.25"))
    assert (record.filled_quantity, record.average_price, record.commission) == (D("100"), D("1.1"), D("0.25"))
    record.add_fill(fill("t2", "200", "1.25", "0.5"))
    # (100 * 1.1 + 200 * 1.25) / 300 = 360 / 300
    assert record.filled_quantity == D("300")
    assert record.average_price == D("1.2")
    assert record.commission == D("0.75")
    assert [f.trade_id for f in record.fills] == ["t1", "t2"]


def test_add_fill_average_is_exact_to_the_last_digit() -> None:
    record = make_record(quantity=D("10"))
    for trade_id, q, p in (("a", "1", "1.00001"), ("b", "3", "1.00005"), ("c", "4", "0.99999")):
        record.add_fill(fill(trade_id, q, p))
    # (1.00001 + 3.00015 + 3.99996) / 8 = 8.00012 / 8
    assert record.average_price == D("1.000015")
    assert str(record.average_price) == "1.000015"


def test_add_fill_average_stays_exact_after_a_non_terminating_intermediate_average() -> None:
    record = make_record(quantity=D("14"))
    record.add_fill(fill("a", "6", "1"))
    record.add_fill(fill("b", "7", "2"))  # 20 / 13: does not terminate
    record.add_fill(fill("c", "1", "1"))
    assert record.filled_quantity == D("14")
    assert record.average_price == D("1.5")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10_000), st.integers(1, 300_000)), min_size=1, max_size=8))
def test_add_fill_average_is_the_quantity_weighted_price(fills: list[tuple[int, int]]) -> None:
    """Within Decimal's 28 significant digits of the true weighted average."""
    record = make_record(quantity=D(10**9))
    for i, (q, p) in enumerate(fills):
        record.add_fill(fill(f"t{i}", str(q), str(D(p) / 100_000)))
    qty = sum((D(q) for q, _ in fills), D(0))
    notional = sum((D(q) * D(p) / 100_000 for q, p in fills), D(0))
    assert record.filled_quantity == qty
    assert record.average_price is not None
    assert abs(record.average_price - notional / qty) <= D("1e-24")


# -- wire and model ------------------------------------------------------------------------


def filled_record() -> OrderRecord:
    record = make_record(status=OrderStatus.PARTIALLY_FILLED, broker_order_id="B-42", raw_status="PARTIAL")
    record.add_fill(fill("t1", "400", "1.08500", "0.04", T0 + 14.125))
    record.add_fill(fill("t2", "100", "1.08400", "0.01", T0 + 15.5))
    return record


def test_to_wire_uses_strings_for_decimals_and_iso_times() -> None:
    record = filled_record()
    record.error = ErrorInfo(code="DENIED", message="no", rule="max_position")
    wire = record.to_wire()
    json.dumps(wire)  # JSON-ready as it is
    assert wire["quantity"] == "1000" and wire["limit_price"] == "1.08500" and wire["stop_price"] is None
    assert wire["stop_loss"] == "1.08000" and wire["take_profit"] == "1.09500"
    assert wire["filled_quantity"] == "500"
    assert wire["average_price"] == "1.08480" and D(wire["average_price"]) == D("1.0848")  # (434 + 108.4) / 500
    assert wire["commission"] == "0.05"
    assert wire["side"] == "BUY" and wire["type"] == "LIMIT" and wire["time_in_force"] == "GTC"
    assert wire["status"] == "PARTIALLY_FILLED" and wire["raw_status"] == "PARTIAL" and wire["broker_order_id"] == "B-42"
    assert wire["created_at"] == "2024-05-01T00:00:12.250000+00:00"
    assert wire["updated_at"] == "2024-05-01T00:00:13.500000+00:00"
    assert wire["error"] == {"code": "DENIED", "message": "no", "broker_code": None, "broker_message": None, "rule": "max_position"}
    assert wire["fills"] == [
        {"trade_id": "t1", "quantity": "400", "price": "1.08500", "commission": "0.04", "at": "2024-05-01T00:00:14.125000+00:00"},
        {"trade_id": "t2", "quantity": "100", "price": "1.08400", "commission": "0.01", "at": "2024-05-01T00:00:15.500000+00:00"},
    ]
    for key in ("client_order_id", "request_id", "strategy", "run_id", "broker", "instrument", "tag"):
        assert wire[key] == getattr(record, key)


def test_to_wire_without_fills_or_prices() -> None:
    wire = make_record(type=OrderType.MARKET, limit_price=None, stop_loss=None, take_profit=None, tag=None).to_wire()
    assert wire["average_price"] is None and wire["limit_price"] is None and wire["fills"] == []
    assert wire["filled_quantity"] == "0" and wire["commission"] == "0" and wire["error"] is None


def test_to_model_is_a_valid_order_equal_to_the_validated_wire_form() -> None:
    record = filled_record()
    record.error = ErrorInfo(code="REJECTED", message="x", broker_code="E1", broker_message="bad")
    model = record.to_model()
    validated = Order.model_validate(record.to_wire())
    assert isinstance(model, Order)
    assert validated.model_dump() == model.model_dump()
    assert validated == model
    assert model.fills == tuple(record.fills)
    assert model.created_at == at(record.created_at) and model.created_at.tzinfo is not None
    assert model.remaining_quantity == D("500")
    assert model.is_open


def test_to_model_reflects_later_changes_and_is_a_snapshot() -> None:
    record = make_record()
    first = record.to_model()
    record.add_fill(fill("t1", "1000", "1.085"))
    record.status = OrderStatus.FILLED
    assert first.status == OrderStatus.ACCEPTED and first.fills == ()
    second = record.to_model()
    assert second.status == OrderStatus.FILLED and second.filled_quantity == D("1000") and len(second.fills) == 1


@given(
    st.sampled_from(list(OrderStatus)),
    st.sampled_from(list(OrderType)),
    st.decimals(min_value=D("0.0001"), max_value=D("1000000"), places=4),
    st.lists(st.tuples(st.integers(1, 1000), st.decimals(min_value=D("0.00001"), max_value=D("100000"), places=5)), max_size=4),
    st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False),
)
@settings(max_examples=60, deadline=None)
def test_wire_validates_to_the_same_order(status: OrderStatus, type_: OrderType, quantity: Decimal,
                                          fills: list[tuple[int, Decimal]], created: float) -> None:
    record = make_record(status=status, type=type_, quantity=quantity, created_at=created, updated_at=created + 1)
    for i, (q, p) in enumerate(fills):
        record.add_fill(fill(f"t{i}", str(q), str(p), "0.01", created + i))
    assert Order.model_validate(record.to_wire()) == record.to_model()


# -- the orders table ------------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = create_engine(f"sqlite:///{tmp_path}/t.db")
    metadata.create_all(made)
    yield made
    made.dispose()


@pytest.fixture(scope="module")
def shared_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    made = create_engine(f"sqlite:///{tmp_path_factory.mktemp('records')}/t.db")
    metadata.create_all(made)
    yield made
    made.dispose()


def round_trip(engine: Engine, record: OrderRecord) -> OrderRecord:
    with engine.begin() as conn:
        conn.execute(orders_table.insert().values(**record_to_row(record)))
    with engine.connect() as conn:
        row = conn.execute(select(orders_table).where(orders_table.c.client_order_id == record.client_order_id)).one()
    return record_from_row(row, list(record.fills))


def fields(record: OrderRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items()}


def test_row_round_trip_through_sqlite(engine: Engine) -> None:
    record = filled_record()
    record.error = ErrorInfo(code="REJECTED", message="insufficient margin", broker_code="MARGIN", broker_message="needs 12.5")
    back = round_trip(engine, record)
    assert fields(back) == fields(record)
    assert back.error == record.error
    assert str(back.limit_price) == "1.08500"  # trailing zeros kept: stored as text, not float
    assert type(back.side) is Side and type(back.status) is OrderStatus


def test_row_round_trip_keeps_a_bracket_parent(engine: Engine) -> None:
    record = make_record(client_order_id="sma-20240501-4", request_id="r7.13", seq=4, parent="sma-20240501-3")
    back = round_trip(engine, record)
    assert back.parent == "sma-20240501-3" and fields(back) == fields(record)


def test_row_round_trip_keeps_a_trailing_stop_and_a_market_if_touched(engine: Engine) -> None:
    record = make_record(type=OrderType.MARKET_IF_TOUCHED, limit_price=None, stop_price=D("1.08000"), trailing_stop=D("0.00250"))
    assert record_to_row(record)["trailing_stop"] == "0.00250"
    back = round_trip(engine, record)
    assert fields(back) == fields(record)
    assert str(back.trailing_stop) == "0.00250" and back.type is OrderType.MARKET_IF_TOUCHED


def test_row_round_trip_with_nulls(engine: Engine) -> None:
    record = make_record(type=OrderType.MARKET, limit_price=None, stop_price=None, stop_loss=None, take_profit=None,
                         tag=None, run_id=None, status=OrderStatus.INITIALIZED)
    back = round_trip(engine, record)
    assert fields(back) == fields(record)
    assert back.average_price is None and back.error is None and back.broker_order_id is None


def test_row_holds_text_for_decimals(engine: Engine) -> None:
    row = record_to_row(filled_record())
    assert set(row) == {c.name for c in orders_table.columns}
    assert list(row) == [c.name for c in orders_table.columns]
    assert row["quantity"] == "1000" and row["filled_quantity"] == "500" and row["commission"] == "0.05"
    assert row["side"] == "BUY" and row["status"] == "PARTIALLY_FILLED" and row["error"] is None


@given(
    st.decimals(min_value=D("0.00000001"), max_value=D("99999999999"), places=8),
    st.one_of(st.none(), st.decimals(min_value=D("0.00001"), max_value=D("99999"), places=5)),
    st.sampled_from(list(OrderStatus)),
    st.sampled_from(list(Side)),
    st.sampled_from(list(TimeInForce)),
)
@settings(max_examples=40, deadline=None)
def test_row_round_trip_property(shared_engine: Engine, quantity: Decimal, price: Decimal | None,
                                 status: OrderStatus, side: Side, tif: TimeInForce) -> None:
    record = make_record(quantity=quantity, limit_price=price, type=OrderType.LIMIT if price is not None else OrderType.MARKET,
                         status=status, side=side, time_in_force=tif)
    with shared_engine.begin() as conn:
        conn.execute(orders_table.delete())
    assert fields(round_trip(shared_engine, record)) == fields(record)


@given(st.lists(st.floats(min_value=0, max_value=4e9, allow_nan=False), min_size=1, max_size=50))
def test_day_of_is_the_utc_calendar_day_whatever_the_order_of_questions(moments: list[float]) -> None:
    for moment in moments:  # the cached day must never answer for a moment outside it
        assert day_of(moment) == datetime.fromtimestamp(moment, UTC).strftime("%Y%m%d")
