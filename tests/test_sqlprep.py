"""Tests for host.sqlprep: statements compiled once and run against a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, bindparam, create_engine, select
from sqlalchemy.dialects import mysql, postgresql

from host.sqlprep import Delete, Prepared, Upsert

metadata = MetaData()

items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(40), nullable=False),
    Column("price", String(40), nullable=True),
)

# A composite key whose columns are not the first ones of the table.
quotes = Table(
    "quotes",
    metadata,
    Column("bid", String(40), nullable=False),
    Column("broker", String(20), primary_key=True),
    Column("instrument", String(20), primary_key=True),
    Column("ask", String(40), nullable=False),
)

tags = Table(
    "tags",
    metadata,
    Column("owner", String(20), primary_key=True),
    Column("tag", String(20), primary_key=True),
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = create_engine(f"sqlite:///{tmp_path}/t.db")
    metadata.create_all(made)
    yield made
    made.dispose()


def rows_of(engine: Engine, table: Table) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns.values()))]


# -- Prepared ---------------------------------------------------------------------


def test_prepared_insert_many_rows_in_one_run(engine: Engine) -> None:
    names = ("id", "name", "price")
    prepared = Prepared(items.insert(), names, engine.dialect)
    rows: list[tuple[Any, ...]] = [(i, f"n{i}", None if i % 3 == 0 else f"{i}.50") for i in range(1, 201)]
    with engine.begin() as conn:
        result = prepared.run(conn, rows)
        assert result.rowcount == 200
    assert rows_of(engine, items) == rows


def test_prepared_single_row(engine: Engine) -> None:
    prepared = Prepared(items.insert(), ("id", "name", "price"), engine.dialect)
    with engine.begin() as conn:
        prepared.run(conn, [(7, "seven", "7.00")])
    assert rows_of(engine, items) == [(7, "seven", "7.00")]


def test_prepared_rows_follow_names_not_table_order(engine: Engine) -> None:
    prepared = Prepared(items.insert(), ("price", "name", "id"), engine.dialect)
    with engine.begin() as conn:
        prepared.run(conn, [("1.5", "a", 1), (None, "b", 2)])
    assert rows_of(engine, items) == [(1, "a", "1.5"), (2, "b", None)]


def test_prepared_reorders_rows_to_placeholder_order(engine: Engine) -> None:
    """UPDATE … SET name=? WHERE id=?: the key comes first in ``names`` but last in the SQL."""
    stmt = items.update().where(items.c.id == bindparam("b_id")).values(name=bindparam("name"))
    prepared = Prepared(stmt, ("b_id", "name"), engine.dialect)
    assert prepared.positional
    assert prepared.order == (1, 0)
    assert prepared.params([(5, "x")]) == [("x", 5)]
    insert = Prepared(items.insert(), ("id", "name", "price"), engine.dialect)
    with engine.begin() as conn:
        insert.run(conn, [(1, "a", None), (2, "b", None), (3, "c", None)])
        prepared.run(conn, [(1, "A"), (3, "C")])
    assert rows_of(engine, items) == [(1, "A", None), (2, "b", None), (3, "C", None)]


def test_prepared_in_natural_order_passes_rows_through() -> None:
    prepared = Prepared(items.insert(), ("id", "name", "price"), create_engine("sqlite://").dialect)
    assert prepared.order is None
    rows: list[tuple[Any, ...]] = [(1, "a", None)]
    assert prepared.params(rows) is rows


def test_prepared_for_a_named_paramstyle_dialect_gives_dicts() -> None:
    stmt = items.update().where(items.c.id == bindparam("b_id")).values(name=bindparam("name"))
    prepared = Prepared(stmt, ("b_id", "name"), postgresql.dialect())
    assert not prepared.positional
    assert prepared.params([(5, "x"), (6, "y")]) == [{"b_id": 5, "name": "x"}, {"b_id": 6, "name": "y"}]
    assert "%(b_id)s" in prepared.sql and "%(name)s" in prepared.sql


# -- Upsert -----------------------------------------------------------------------------


def test_upsert_inserts_then_replaces_non_key_columns_and_adds_new_keys(engine: Engine) -> None:
    upsert = Upsert(items, engine.dialect)
    assert upsert.prepared is not None and "ON CONFLICT" in upsert.prepared.sql
    with engine.begin() as conn:
        upsert(conn, [(1, "a", "1.0"), (2, "b", "2.0")])
    with engine.begin() as conn:
        upsert(conn, [(2, "B", None), (3, "c", "3.0")])
    assert rows_of(engine, items) == [(1, "a", "1.0"), (2, "B", None), (3, "c", "3.0")]


def test_upsert_single_row_twice(engine: Engine) -> None:
    upsert = Upsert(items, engine.dialect)
    with engine.begin() as conn:
        upsert(conn, [(9, "first", "1")])
        upsert(conn, [(9, "second", "2")])
    assert rows_of(engine, items) == [(9, "second", "2")]


def test_upsert_of_no_rows_does_nothing(engine: Engine) -> None:
    upsert = Upsert(items, engine.dialect)
    with engine.begin() as conn:
        upsert(conn, [])
    assert rows_of(engine, items) == []


def test_upsert_composite_key(engine: Engine) -> None:
    upsert = Upsert(quotes, engine.dialect)
    assert upsert.names == ("bid", "broker", "instrument", "ask")
    with engine.begin() as conn:
        upsert(conn, [("1.1", "paper", "EUR_USD", "1.2"), ("2.1", "paper", "GBP_USD", "2.2"), ("1.0", "oanda", "EUR_USD", "1.3")])
    with engine.begin() as conn:
        # Same instrument, other broker is a different key; the same (broker, instrument) is replaced.
        upsert(conn, [("1.15", "paper", "EUR_USD", "1.25"), ("9", "ib", "EUR_USD", "10")])
    assert sorted(rows_of(engine, quotes), key=lambda r: (r[1], r[2])) == [
        ("9", "ib", "EUR_USD", "10"),
        ("1.0", "oanda", "EUR_USD", "1.3"),
        ("1.15", "paper", "EUR_USD", "1.25"),
        ("2.1", "paper", "GBP_USD", "2.2"),
    ]


def test_upsert_in_the_same_batch_keeps_the_last_row_for_a_key(engine: Engine) -> None:
    upsert = Upsert(items, engine.dialect)
    with engine.begin() as conn:
        upsert(conn, [(1, "a", "1"), (1, "b", "2")])
    assert rows_of(engine, items) == [(1, "b", "2")]


def test_upsert_fallback_for_another_dialect_updates_then_inserts(engine: Engine) -> None:
    """A dialect without ON CONFLICT goes row by row through Core; run it on the SQLite connection."""
    upsert = Upsert(quotes, mysql.dialect())
    assert upsert.prepared is None
    with engine.begin() as conn:
        upsert(conn, [("1", "paper", "EUR_USD", "2")])
        upsert(conn, [("3", "paper", "EUR_USD", "4"), ("5", "paper", "USD_JPY", "6")])
    assert sorted(rows_of(engine, quotes), key=lambda r: r[2]) == [("3", "paper", "EUR_USD", "4"), ("5", "paper", "USD_JPY", "6")]


def test_upsert_table_with_only_key_columns(engine: Engine) -> None:
    upsert = Upsert(tags, engine.dialect)
    with engine.begin() as conn:
        upsert(conn, [("alice", "x"), ("alice", "y")])
        upsert(conn, [("alice", "x")])
    assert rows_of(engine, tags) == [("alice", "x"), ("alice", "y")]


# -- Delete ---------------------------------------------------------------------------------


def test_delete_by_key_single_and_many(engine: Engine) -> None:
    insert = Prepared(items.insert(), ("id", "name", "price"), engine.dialect)
    delete = Delete(items, engine.dialect)
    with engine.begin() as conn:
        insert.run(conn, [(i, f"n{i}", None) for i in range(1, 7)])
        delete(conn, [(2,)])
    assert [r[0] for r in rows_of(engine, items)] == [1, 3, 4, 5, 6]
    with engine.begin() as conn:
        delete(conn, [(1,), (5,), (99,)])
    assert [r[0] for r in rows_of(engine, items)] == [3, 4, 6]


def test_delete_nothing(engine: Engine) -> None:
    insert = Prepared(items.insert(), ("id", "name", "price"), engine.dialect)
    with engine.begin() as conn:
        insert.run(conn, [(1, "a", None)])
        Delete(items, engine.dialect)(conn, [])
    assert len(rows_of(engine, items)) == 1


def test_delete_composite_key_in_key_order(engine: Engine) -> None:
    upsert = Upsert(quotes, engine.dialect)
    delete = Delete(quotes, engine.dialect)
    assert delete.prepared.names == ("broker", "instrument")
    with engine.begin() as conn:
        upsert(conn, [("1", "paper", "EUR_USD", "2"), ("1", "paper", "GBP_USD", "2"), ("1", "ib", "EUR_USD", "2")])
        delete(conn, [("paper", "EUR_USD")])
    assert sorted((r[1], r[2]) for r in rows_of(engine, quotes)) == [("ib", "EUR_USD"), ("paper", "GBP_USD")]
    with engine.begin() as conn:
        delete(conn, [("ib", "EUR_USD"), ("paper", "GBP_USD")])
    assert rows_of(engine, quotes) == []


def test_rows_written_in_a_rolled_back_transaction_are_gone(engine: Engine) -> None:
    upsert = Upsert(items, engine.dialect)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        upsert(conn, [(1, "a", None)])
        raise RuntimeError("abort")
    assert rows_of(engine, items) == []
