"""Tests for host.router.tables' migration: columns added in code reach state databases an older version created."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, MetaData, String, Table, create_engine, inspect, select

from host.router import queries
from host.router.records import record_from_row, record_to_row
from host.router.journal import Journal, StrategyPosition
from host.router.tables import create_tables, metadata, orders_table, strategy_positions_table
from host.schema import add_missing_columns
from host.trading.model import OrderType

from .test_records import make_record

D = Decimal


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = create_engine(f"sqlite:///{tmp_path}/state.db")
    yield made
    made.dispose()


def table_without(table: Table, column: str) -> tuple[MetaData, Table]:
    """``table`` as a release before ``column`` was added created it."""
    old = MetaData()
    columns = [Column(c.name, c.type, nullable=c.nullable, primary_key=c.primary_key) for c in table.columns if c.name != column]
    return old, Table(table.name, old, *columns, sqlite_with_rowid=False)


def test_an_old_orders_table_gains_the_trailing_stop_column_and_keeps_its_rows(engine: Engine) -> None:
    old, table = table_without(orders_table, "trailing_stop")
    old.create_all(engine)
    row = {k: v for k, v in record_to_row(make_record()).items() if k != "trailing_stop"}
    with engine.begin() as conn:
        conn.execute(table.insert().values(**row))
    assert "trailing_stop" not in {c["name"] for c in inspect(engine).get_columns("orders")}
    # Before the router has migrated it, a reader still lists the orders (the missing column reads as None).
    (listed,) = queries.orders(engine)
    assert listed["client_order_id"] == row["client_order_id"] and listed["trailing_stop"] is None

    create_tables(engine)  # what the router does at start

    assert "trailing_stop" in {c["name"] for c in inspect(engine).get_columns("orders")}
    with engine.connect() as conn:
        (kept,) = conn.execute(select(orders_table)).all()
    assert kept.trailing_stop is None
    record = record_from_row(kept, [])
    assert record.trailing_stop is None and record_to_row(record) == {**row, "trailing_stop": None}

    newer = make_record(client_order_id="sma-20240501-9", request_id="r7.99", seq=9, type=OrderType.MARKET_IF_TOUCHED,
                        limit_price=None, stop_price=D("1.08"), trailing_stop=D("0.0025"))
    with engine.begin() as conn:
        conn.execute(orders_table.insert().values(**record_to_row(newer)))
        stored = conn.execute(select(orders_table.c.trailing_stop).where(orders_table.c.client_order_id == "sma-20240501-9")).scalar_one()
    assert stored == "0.0025"
    assert add_missing_columns(engine, metadata) == []  # nothing left to add; running again is harmless


def test_an_old_positions_table_gains_the_cost_column_and_old_rows_derive_it_from_the_average(engine: Engine) -> None:
    old, table = table_without(strategy_positions_table, "cost")  # the releases that kept an average price
    old.create_all(engine)
    rows = [
        {"strategy": "sma", "broker": "paper", "instrument": "EUR_USD", "quantity": "-4", "average_price": "1.0825", "realised_pnl": "1.5", "updated_at": 1.0},
        {"strategy": "sma", "broker": "paper", "instrument": "USD_JPY", "quantity": "0", "average_price": "0", "realised_pnl": "-2", "updated_at": 2.0},
    ]
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    # Before the router has migrated it, a reader still lists the positions, as before.
    assert [{k: v for k, v in r.items() if k != "updated_at"} for r in queries.positions(engine, include_flat=True)] == [
        {k: v for k, v in r.items() if k != "updated_at"} for r in rows
    ]

    create_tables(engine)  # what the router does at start

    assert "cost" in {c["name"] for c in inspect(engine).get_columns("strategy_positions")}
    journal = Journal(engine)
    journal.load(10.0)
    assert journal.positions == {
        ("sma", "paper", "EUR_USD"): StrategyPosition(D(-4), D("-4.3300"), D("1.5")),
        ("sma", "paper", "USD_JPY"): StrategyPosition(D(0), D(0), D(-2)),
    }
    assert journal.positions[("sma", "paper", "EUR_USD")].average_price == D("1.0825")
    journal.set_position("sma", "paper", "EUR_USD", D(-4), D("1.0825"))  # marks it changed: written back with its cost
    with engine.begin() as conn:
        journal.flush(conn, 20.0)
    with engine.connect() as conn:
        stored = {r.instrument: (r.quantity, r.average_price, r.realised_pnl, r.cost) for r in conn.execute(select(strategy_positions_table))}
    assert stored == {"EUR_USD": ("-4", "1.0825", "1.5", "-4.3300"), "USD_JPY": ("0", "0", "-2", None)}
    assert [r["average_price"] for r in queries.positions(engine)] == ["1.0825"]
    assert "cost" not in queries.positions(engine)[0]  # readers see the same columns as before
    assert add_missing_columns(engine, metadata) == []


def test_a_new_database_needs_nothing_added(engine: Engine) -> None:
    create_tables(engine)
    assert add_missing_columns(engine, metadata) == []
    assert "trailing_stop" in {c["name"] for c in inspect(engine).get_columns("orders")}


def test_a_missing_not_null_column_is_an_error_not_a_guess(engine: Engine) -> None:
    old = MetaData()
    Table("things", old, Column("id", String(10), primary_key=True)).create(engine)
    new = MetaData()
    Table("things", new, Column("id", String(10), primary_key=True), Column("note", String(10), nullable=True))
    assert add_missing_columns(engine, new) == ["things.note"]
    newer = MetaData()
    Table("things", newer, Column("id", String(10), primary_key=True), Column("note", String(10)), Column("size", String(10), nullable=False))
    with pytest.raises(RuntimeError, match="NOT NULL column size"):
        add_missing_columns(engine, newer)
