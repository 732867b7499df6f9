"""Tests for host.router.queries: orders and positions read back from a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, insert

from host.router import queries
from host.router.tables import metadata, orders_table, strategy_positions_table
from host.store import _sqlite_pragmas

MAY_1 = 1714521600.0  # 2024-05-01T00:00:00Z


def order_row(number: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "client_order_id": f"alpha-20240501-{number}",
        "strategy": "alpha",
        "request_id": f"req-{number}",
        "day": "20240501",
        "seq": number,
        "run_id": 3,
        "broker": "paper",
        "broker_order_id": f"B{number}",
        "instrument": "EURUSD",
        "side": "BUY",
        "type": "LIMIT",
        "quantity": "1000",
        "limit_price": "1.08000",
        "stop_price": None,
        "time_in_force": "GTC",
        "stop_loss": None,
        "take_profit": None,
        "tag": None,
        "status": "FILLED",
        "raw_status": "filled",
        "filled_quantity": "1000",
        "average_price": "1.07995",
        "commission": "0.10",
        "error": None,
        "created_at": MAY_1 + number * 60,
        "updated_at": MAY_1 + number * 60 + 1.5,
    }
    row.update(values)
    return row


def position_row(strategy: str, instrument: str, quantity: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "strategy": strategy,
        "broker": "paper",
        "instrument": instrument,
        "quantity": quantity,
        "average_price": "1.10",
        "realised_pnl": "0",
        "updated_at": MAY_1,
    }
    row.update(values)
    return row


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    event.listen(made, "connect", _sqlite_pragmas)
    metadata.create_all(made)
    yield made
    made.dispose()


@pytest.fixture
def filled(engine: Engine) -> Engine:
    rejected = json.dumps({"code": "BROKER_REJECTED", "message": "insufficient margin", "broker_code": "MARGIN"})
    with engine.begin() as conn:
        conn.execute(insert(orders_table), [
            order_row(1),
            order_row(2, strategy="beta", client_order_id="beta-20240501-2", status="ACCEPTED", filled_quantity="0", average_price=None),
            order_row(3, status="REJECTED", error=rejected, quantity="0.10000000"),
            order_row(4, status="INITIALIZED", filled_quantity="0", average_price=None),
            order_row(5, strategy="beta", client_order_id="beta-20240501-5", status="CANCELED"),
        ])
        conn.execute(insert(strategy_positions_table), [
            position_row("alpha", "EURUSD", "1000", updated_at=MAY_1 + 100),
            position_row("alpha", "GBPUSD", "0.000"),
            position_row("beta", "EURUSD", "-250.5", realised_pnl="-12.30"),
            position_row("beta", "USDJPY", "-0"),
        ])
    return engine


def test_iso_time_is_utc() -> None:
    assert queries.iso_time(MAY_1 + 0.25) == "2024-05-01T00:00:00.250000+00:00"
    assert queries.iso_time(None) is None


def test_orders_newest_first_with_strings_kept_and_times_in_iso(filled: Engine) -> None:
    rows = queries.orders(filled)
    assert [r["seq"] for r in rows] == [5, 4, 3, 2, 1]
    third = rows[2]
    assert third["quantity"] == "0.10000000" and third["limit_price"] == "1.08000" and third["commission"] == "0.10"
    assert third["created_at"] == "2024-05-01T00:03:00+00:00"
    assert third["updated_at"] == "2024-05-01T00:03:01.500000+00:00"
    assert third["error"] == {"code": "BROKER_REJECTED", "message": "insufficient margin", "broker_code": "MARGIN"}
    assert rows[0]["error"] is None
    assert set(third) == {column.name for column in orders_table.columns}
    json.dumps(rows)  # JSON-ready as it is


def test_orders_filters(filled: Engine) -> None:
    def seqs(**filters: Any) -> list[int]:
        return [r["seq"] for r in queries.orders(filled, **filters)]

    assert seqs(strategy="beta") == [5, 2]
    assert seqs(since=MAY_1 + 120, until=MAY_1 + 240) == [3, 2]  # since inclusive, until exclusive
    assert seqs(status="filled") == [1]
    assert seqs(status="open") == [4, 2]
    assert seqs(status="terminal") == [5, 3, 1]
    assert seqs(status=["REJECTED", "CANCELED"]) == [5, 3]
    assert seqs(limit=2) == [5, 4]
    assert seqs(limit=0) == [5, 4, 3, 2, 1]
    assert seqs(strategy="alpha", status="open", limit=1) == [4]


def test_an_error_that_is_not_json_is_shown_as_written(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(orders_table), [order_row(1, error="plain words")])
    assert queries.orders(engine)[0]["error"] == "plain words"


def test_positions_hide_flat_ones_unless_asked(filled: Engine) -> None:
    rows = queries.positions(filled)
    assert [(r["strategy"], r["instrument"], r["quantity"]) for r in rows] == [("alpha", "EURUSD", "1000"), ("beta", "EURUSD", "-250.5")]
    assert rows[0]["updated_at"] == "2024-05-01T00:01:40+00:00"
    assert rows[1]["realised_pnl"] == "-12.30"
    everything = queries.positions(filled, include_flat=True)
    assert [(r["strategy"], r["instrument"]) for r in everything] == [("alpha", "EURUSD"), ("alpha", "GBPUSD"), ("beta", "EURUSD"), ("beta", "USDJPY")]
    assert [r["instrument"] for r in queries.positions(filled, strategy="beta", include_flat=True)] == ["EURUSD", "USDJPY"]
    assert [r["instrument"] for r in queries.positions(filled, since=MAY_1 + 1)] == ["EURUSD"]
    assert queries.positions(filled, until=MAY_1 + 1) == [rows[1]]


def test_open_readonly_does_not_create_a_missing_database(tmp_path: Path) -> None:
    path = tmp_path / "state" / "tradehost.db"
    assert queries.open_readonly(f"sqlite:///{path}") is None
    assert queries.open_readonly("sqlite://") is None
    assert not path.parent.exists()


def test_open_readonly_reads_but_cannot_write(filled: Engine, tmp_path: Path) -> None:
    reader = queries.open_readonly(f"sqlite:///{tmp_path / 'state.db'}")
    assert reader is not None
    try:
        assert queries.has_tables(reader, "orders", "strategy_positions")
        assert not queries.has_tables(reader, "orders", "no_such_table")
        assert len(queries.orders(reader)) == 5
        with pytest.raises(Exception, match="readonly"):
            with reader.begin() as conn:
                conn.execute(insert(orders_table), [order_row(9)])
    finally:
        reader.dispose()


def test_open_readonly_handles_awkward_paths(tmp_path: Path) -> None:
    folder = tmp_path / "a dir #1%"
    folder.mkdir()
    sqlite3.connect(folder / "state.db").execute("CREATE TABLE orders (x)").connection.close()
    reader = queries.open_readonly(f"sqlite:///{folder / 'state.db'}")
    assert reader is not None
    try:
        assert queries.has_tables(reader, "orders")
    finally:
        reader.dispose()
