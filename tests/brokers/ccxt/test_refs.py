"""Order references: kept in memory, written only in the caller's transaction, found again by a restarted adapter."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy

from brokers.ccxt.refs import KEPT_DAYS, OrderRef, OrderRefs, refs_table


def engine(tmp_path: Path) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'state.db'}")


def test_a_remembered_order_is_written_only_by_persist_and_then_found_by_a_new_instance(tmp_path: Path) -> None:
    db = engine(tmp_path)
    refs = OrderRefs(db, "bn")
    refs.start(1000.0)
    refs.remember(OrderRef("s-1", "BTC/USDT", "s-1", None, 1000.0))
    assert refs.get("s-1") is not None and OrderRefs(db, "bn").get("s-1") is None  # no I/O of its own
    with db.begin() as conn:
        refs.persist(conn)
    again = OrderRefs(db, "bn")
    found = again.get("s-1")
    assert found == OrderRef("s-1", "BTC/USDT", "s-1", None, 1000.0)
    assert OrderRefs(db, "other").get("s-1") is None  # per broker
    assert again.get("never-sent") is None


def test_exchange_ids_are_written_inside_the_callers_transaction(tmp_path: Path) -> None:
    db = engine(tmp_path)
    refs = OrderRefs(db, "bn")
    refs.start(1000.0)
    refs.remember(OrderRef("s-1", "BTC/USDT", "s-1", None, 1000.0))
    with db.begin() as conn:
        refs.persist(conn)
    refs.learn("s-1", "777")
    refs.learn("unknown", "888")  # no symbol: nothing to remember
    assert OrderRefs(db, "bn").get("s-1").broker_order_id is None  # type: ignore[union-attr]
    with db.begin() as conn:
        refs.persist(conn)
    assert OrderRefs(db, "bn").get("s-1").broker_order_id == "777"  # type: ignore[union-attr]
    with db.begin() as conn:
        refs.persist(conn)  # nothing left to write


def test_an_order_seen_at_the_exchange_is_learnt_with_its_symbol(tmp_path: Path) -> None:
    db = engine(tmp_path)
    refs = OrderRefs(db, "bn")
    refs.start(0.0)
    refs.learn("ext-1", "9", "ETH/USDT", "ext-1", 5.0)
    with db.begin() as conn:
        refs.persist(conn)
    assert OrderRefs(db, "bn").get("ext-1") == OrderRef("ext-1", "ETH/USDT", "ext-1", "9", 5.0)


def test_the_wire_id_maps_back_to_our_id(tmp_path: Path) -> None:
    db = engine(tmp_path)
    refs = OrderRefs(db, "bn")
    refs.start(0.0)
    refs.remember(OrderRef("a.very.long-client-id", "BTC/USDT", "th-abc", None, 0.0))
    assert refs.client_id_of("th-abc") == "a.very.long-client-id"
    with db.begin() as conn:
        refs.persist(conn)
    assert OrderRefs(db, "bn").client_id_of("th-abc") == "a.very.long-client-id"
    assert refs.client_id_of("someone-else") == "someone-else"


def test_old_references_are_dropped_at_start(tmp_path: Path) -> None:
    db = engine(tmp_path)
    refs = OrderRefs(db, "bn")
    refs.start(0.0)
    refs.remember(OrderRef("old", "BTC/USDT", "old", None, 0.0))
    refs.remember(OrderRef("new", "BTC/USDT", "new", None, KEPT_DAYS * 86400.0))
    with db.begin() as conn:
        refs.persist(conn)
    OrderRefs(db, "bn").start(KEPT_DAYS * 86400.0 + 1)
    with db.connect() as conn:
        assert [r.client_order_id for r in conn.execute(sqlalchemy.select(refs_table))] == ["new"]
