"""Tests for host.router.audit: the hash-chained trail on a real SQLite file, and every way of tampering with it."""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool

from host.router.audit import GENESIS, AuditError, AuditLog, canonical, chain_hash, encode_detail, query, verify
from host.sqlprep import Prepared
from host.store import _sqlite_pragmas


def make_engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    made = make_engine(db_path)
    yield made
    made.dispose()


def fill(log: AuditLog, count: int, *, start_at: float = 1_000.0, batch: int = 4) -> None:
    """Record ``count`` rows (two strategies, a few kinds) and flush them in batches."""
    for i in range(count):
        log.record(
            ("request", "risk", "broker_call", "broker_response")[i % 4],
            {"i": i, "quantity": Decimal("1.50"), "note": "ünïcode ✓"},
            strategy="alpha" if i % 2 == 0 else "beta",
            run_id=7,
            client_order_id=f"alpha-20240501-{i // 4}",
            request_id=f"req-{i}",
            latency_us=100 + i,
            at=start_at + i,
        )
        if log.pending >= batch:
            log.write()
    log.write()


@pytest.fixture
def trail(engine: Engine) -> AuditLog:
    """Ten rows, committed."""
    log = AuditLog(engine)
    fill(log, 10)
    return log


def sql(db_path: Path, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """Tamper with the file directly, as someone with a shell would."""
    connection = sqlite3.connect(db_path)
    try:
        rows = connection.execute(statement, params).fetchall()
        connection.commit()
        return rows
    finally:
        connection.close()


def row(db_path: Path, seq: int) -> tuple[Any, ...]:
    return sql(db_path, "SELECT seq, at, kind, strategy, run_id, client_order_id, request_id, latency_us, detail, prev_hash, hash FROM audit WHERE seq = ?", seq)[0]


# ------------------------------------------------------------ pure functions


def test_encode_detail_is_canonical_json_with_decimals_and_datetimes_as_strings() -> None:
    moment = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    detail = {"b": Decimal("1.10"), "a": moment, "c": ["x", None, 1.5], "é": "ü"}
    text = encode_detail(detail)
    assert text == json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    assert text == '{"a":"2024-05-01 09:30:00+00:00","b":"1.10","c":["x",null,1.5],"é":"ü"}'


def test_encode_detail_takes_any_mapping() -> None:
    assert encode_detail(MappingProxyType({"b": 1, "a": 2})) == '{"a":2,"b":1}'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.decimals(allow_nan=False, allow_infinity=False, places=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6))
def test_encode_detail_equals_json_dumps(detail: dict[str, Any]) -> None:
    assert encode_detail(detail) == json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


@given(st.dictionaries(st.text(max_size=6), st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**80), 2**80), max_size=6))
def test_encode_detail_round_trips_floats_and_big_integers(detail: dict[str, Any]) -> None:
    text = encode_detail(detail)
    assert json.loads(text) == detail
    assert list(json.loads(text)) == sorted(detail)


def test_canonical_is_unambiguous_where_fields_contain_the_separator() -> None:
    one = canonical(1, 1.5, "k", "a|1:b", None, None, None, None, "{}")
    two = canonical(1, 1.5, "k", "a", None, "b", None, None, "{}")
    assert one != two
    assert canonical(1, 1.5, "k", None, None, None, None, None, "{}") != canonical(1, 1.5, "k", "-", None, None, None, None, "{}")
    assert canonical(12, 1.5, "k", None, 3, "c", "r", 40, '{"a":1}') == b'12|1.5|1:k|-|3|1:c|1:r|40|{"a":1}'


def test_chain_hash_is_sha256_of_prev_and_content() -> None:
    import hashlib

    body = canonical(1, 2.0, "request", "s", 1, "o", "r", 5, "{}")
    assert chain_hash(GENESIS, body) == hashlib.sha256(GENESIS.encode() + body).hexdigest()
    assert chain_hash(GENESIS, body) != chain_hash("1" * 64, body)


# ------------------------------------------------------------ recording and flushing


def test_record_assigns_seq_and_chains_in_memory_before_anything_is_written(engine: Engine, db_path: Path) -> None:
    log = AuditLog(engine)
    assert log.head == (0, GENESIS)
    assert [log.record("request", {"n": n}, at=10.0 + n) for n in range(3)] == [1, 2, 3]
    assert log.pending == 3 and log.head[0] == 3
    assert sql(db_path, "SELECT count(*) FROM audit") == [(0,)]
    with engine.begin() as conn:
        assert log.flush(conn) == 3
        assert log.flush(conn) == 0
    rows = sql(db_path, "SELECT seq, prev_hash, hash FROM audit ORDER BY seq")
    assert [r[0] for r in rows] == [1, 2, 3]
    assert rows[0][1] == GENESIS and rows[1][1] == rows[0][2] and rows[2][1] == rows[1][2]
    assert sql(db_path, "SELECT id, seq, hash FROM audit_head") == [(1, 3, rows[2][2])]
    assert log.head == (3, rows[2][2]) and log.pending == 0


def test_stored_row_matches_what_was_recorded(engine: Engine, db_path: Path) -> None:
    log = AuditLog(engine)
    log.record("broker_call", {"price": Decimal("1.08345")}, strategy="alpha", run_id=3, client_order_id="alpha-1", request_id="r1", latency_us=153.6, at=1714555800.25)
    log.write()
    stored = row(db_path, 1)
    assert stored[:9] == (1, 1714555800.25, "broker_call", "alpha", 3, "alpha-1", "r1", 154, '{"price":"1.08345"}')
    assert stored[10] == chain_hash(GENESIS, canonical(*stored[:9]))


def test_flush_is_one_executemany_and_one_head_update(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    log = AuditLog(engine)
    seen: list[tuple[str, int]] = []
    run = Prepared.run

    def spy(self: Prepared, conn: Any, rows: list[tuple[Any, ...]]) -> Any:
        seen.append((self.sql.split()[0], len(rows)))
        return run(self, conn, rows)

    monkeypatch.setattr(Prepared, "run", spy)
    for n in range(200):
        log.record("request", {"n": n})
    with engine.begin() as conn:
        assert log.flush(conn) == 200
    log.record("request", {"n": 200})
    log.record("request", {"n": 201})
    with engine.begin() as conn:
        assert log.flush(conn) == 2
    # The very first flush also inserts the head row; later ones only move it.
    assert seen == [("UPDATE", 1), ("INSERT", 1), ("INSERT", 200), ("UPDATE", 1), ("INSERT", 2)]


def test_verify_an_intact_trail(trail: AuditLog, engine: Engine) -> None:
    result = verify(engine)
    assert result.ok and result.rows == 10 and result.first_bad_seq is None
    assert result.head == trail.head[1]
    assert result.reason == f"audit trail intact: 10 rows, head {trail.head[1][:12]}…"


def test_verify_without_tables_or_rows_is_ok(tmp_path: Path) -> None:
    bare = make_engine(tmp_path / "bare.db")
    assert verify(bare).ok and verify(bare).rows == 0
    AuditLog(bare)  # creates the two tables
    result = verify(bare)
    assert (result.ok, result.rows, result.reason) == (True, 0, "audit trail intact: 0 rows")
    bare.dispose()


def test_verify_walks_in_chunks(engine: Engine, db_path: Path) -> None:
    log = AuditLog(engine)
    fill(log, 50, batch=50)
    assert verify(engine, chunk_size=7).ok
    sql(db_path, "UPDATE audit SET kind = 'x' WHERE seq = 15")  # the first row of the third chunk
    result = verify(engine, chunk_size=7)
    assert (result.ok, result.first_bad_seq, result.rows) == (False, 15, 15)


def test_reopening_continues_the_chain(trail: AuditLog, db_path: Path) -> None:
    head = trail.head
    trail.engine.dispose()
    restarted = AuditLog(make_engine(db_path))
    assert restarted.head == head
    assert restarted.record("operator", {"action": "stop"}, at=5_000.0) == 11
    restarted.write()
    assert verify(restarted.engine).ok and verify(restarted.engine).rows == 11
    assert row(db_path, 11)[9] == head[1]
    restarted.engine.dispose()


def test_reopening_a_trail_whose_newest_rows_were_deleted_refuses_to_continue(trail: AuditLog, db_path: Path) -> None:
    sql(db_path, "DELETE FROM audit WHERE seq >= 9")
    with pytest.raises(AuditError, match="the newest 2 rows are missing: audit_head says 10, the table ends at 8"):
        AuditLog(make_engine(db_path))


def test_discard_pending_forgets_unflushed_records(trail: AuditLog) -> None:
    head = trail.head
    trail.record("request", {"lost": True})
    trail.record("request", {"lost": True})
    trail.discard_pending()
    assert trail.head == head and trail.pending == 0
    assert trail.record("request", {"kept": True}) == 11
    trail.write()
    assert verify(trail.engine).ok


def test_discard_pending_after_a_failed_transaction_returns_to_the_committed_head(trail: AuditLog, engine: Engine) -> None:
    head = trail.head
    trail.record("request", {"n": 1})
    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            assert trail.flush(conn) == 1
            trail.record("request", {"n": 2})  # recorded after the flush, chained on the lost row
            raise RuntimeError("the caller's transaction failed")
    trail.discard_pending()
    assert trail.head == head and trail.pending == 0
    trail.record("request", {"n": 3})
    trail.write()
    assert verify(engine).ok and verify(engine).rows == 11


def test_a_lost_commit_that_was_not_discarded_is_refused_not_written_with_a_gap(trail: AuditLog, engine: Engine) -> None:
    trail.record("request", {"n": 1})
    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            trail.flush(conn)
            raise RuntimeError("commit failed")
    trail.record("request", {"n": 2})  # the caller forgot discard_pending()
    with pytest.raises(AuditError, match="no longer at row 11"):
        with engine.begin() as conn:
            trail.flush(conn)
    trail.discard_pending()
    assert verify(engine).ok and verify(engine).rows == 10


def test_a_second_writer_cannot_fork_the_chain(trail: AuditLog, db_path: Path) -> None:
    other = AuditLog(make_engine(db_path))
    trail.record("request", {"writer": 1})
    trail.write()
    other.record("request", {"writer": 2})
    with pytest.raises(AuditError):
        other.write()
    assert other.head == trail.head  # write() discarded and re-read the head
    other.record("request", {"writer": 2})
    other.write()
    assert verify(trail.engine).ok and verify(trail.engine).rows == 12
    other.engine.dispose()


def test_a_flush_that_raises_keeps_its_records_pending_for_a_retry(trail: AuditLog, engine: Engine) -> None:
    good = trail._insert_rows
    broken = copy.copy(good)
    broken.sql = "INSERT INTO no_such_table VALUES (?)"
    trail._insert_rows = broken
    trail.record("request", {"n": 1})
    trail.record("request", {"n": 2})
    with pytest.raises(OperationalError):
        with engine.begin() as conn:
            trail.flush(conn)  # the head moved in this transaction, then the insert failed: all rolled back
    assert trail.pending == 2
    trail._insert_rows = good
    trail.record("request", {"n": 3})
    assert trail.write() == 3
    assert verify(engine).ok and verify(engine).rows == 13


def test_records_may_come_from_one_thread_while_another_flushes(trail: AuditLog, engine: Engine) -> None:
    def produce() -> None:
        for n in range(2000):
            trail.record("request", {"n": n})

    producer = threading.Thread(target=produce)
    producer.start()
    written = 0
    while producer.is_alive() or trail.pending:
        written += trail.write()
    producer.join()
    assert written == 2000
    result = verify(engine)
    assert result.ok and result.rows == 2010


def test_a_lone_surrogate_in_a_detail_is_escaped_and_still_verifies(engine: Engine, db_path: Path) -> None:
    log = AuditLog(engine)
    log.record("request", {"tag": "bad \ud800 text"})
    log.write()
    assert row(db_path, 1)[8] == '{"tag":"bad \\ud800 text"}'
    assert verify(engine).ok


# ------------------------------------------------------------ tampering


def test_edited_detail_is_named(trail: AuditLog, db_path: Path) -> None:
    sql(db_path, "UPDATE audit SET detail = replace(detail, '1.50', '9.50') WHERE seq = 4")
    result = verify(trail.engine)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert result.reason == "audit row 4 was edited: its hash does not match its content"


@pytest.mark.parametrize(("column", "value"), [("kind", "risk_ok"), ("at", 999.5), ("strategy", "gamma"), ("strategy", None), ("latency_us", 1), ("run_id", 8), ("hash", "f" * 64)])
def test_edited_columns_are_named(trail: AuditLog, db_path: Path, column: str, value: Any) -> None:
    sql(db_path, f"UPDATE audit SET {column} = ? WHERE seq = 6", value)
    result = verify(trail.engine)
    assert (result.ok, result.first_bad_seq, result.rows) == (False, 6, 6)
    assert "audit row 6 was edited" in result.reason


def test_an_edit_with_a_recomputed_hash_is_caught_at_the_next_row(trail: AuditLog, db_path: Path) -> None:
    stored = list(row(db_path, 5))
    stored[2] = "forged"
    sql(db_path, "UPDATE audit SET kind = ?, hash = ? WHERE seq = 5", "forged", chain_hash(stored[9], canonical(*stored[:9])))
    result = verify(trail.engine)
    assert (result.ok, result.first_bad_seq) == (False, 6)
    assert result.reason == "audit row 6 does not follow row 5 (inserted or reordered)"


def _make_room(db_path: Path, at: int) -> None:
    """Renumber rows at..end one up, newest first (seq is the primary key), and the head with them."""
    for seq in sorted((r[0] for r in sql(db_path, "SELECT seq FROM audit WHERE seq >= ?", at)), reverse=True):
        sql(db_path, "UPDATE audit SET seq = seq + 1 WHERE seq = ?", seq)
    sql(db_path, "UPDATE audit_head SET seq = seq + 1")


def test_an_inserted_row_with_a_valid_hash_is_caught_where_the_chain_breaks(trail: AuditLog, db_path: Path) -> None:
    prev = row(db_path, 4)[10]
    _make_room(db_path, 5)
    content = (5, 1004.5, "broker_response", "alpha", 7, "alpha-20240501-1", "req-x", 90, '{"filled":"1000"}')
    sql(db_path, "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", *content, prev, chain_hash(prev, canonical(*content)))
    result = verify(trail.engine)
    assert (result.ok, result.first_bad_seq) == (False, 6)
    assert result.reason == "audit row 6 does not follow row 5 (inserted or reordered)"


def test_an_inserted_row_with_a_made_up_hash_is_named(trail: AuditLog, db_path: Path) -> None:
    prev = row(db_path, 4)[10]
    _make_room(db_path, 5)
    sql(db_path, "INSERT INTO audit VALUES (5, 1004.5, 'request', 'alpha', 7, 'x', 'y', 1, '{}', ?, ?)", prev, "ab" * 32)
    result = verify(trail.engine)
    assert (result.ok, result.first_bad_seq) == (False, 5)
    assert "audit row 5 was edited" in result.reason


def test_a_deleted_middle_row_is_named(trail: AuditLog, db_path: Path) -> None:
    sql(db_path, "DELETE FROM audit WHERE seq = 5")
    result = verify(trail.engine)
    assert (result.ok, result.first_bad_seq) == (False, 5)
    assert result.reason == "audit row 5 is missing (deleted)"


def test_deleted_middle_rows_are_named_as_a_range(trail: AuditLog, db_path: Path) -> None:
    sql(db_path, "DELETE FROM audit WHERE seq BETWEEN 3 AND 6")
    result = verify(trail.engine)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 3, "audit rows 3–6 are missing (deleted)")


def test_a_deleted_first_row_is_named(trail: AuditLog, db_path: Path) -> None:
    sql(db_path, "DELETE FROM audit WHERE seq = 1")
    assert verify(trail.engine).first_bad_seq == 1


def test_deleted_newest_rows_are_found_through_the_head(trail: AuditLog, db_path: Path) -> None:
    sql(db_path, "DELETE FROM audit WHERE seq > 7")
    result = verify(trail.engine)
    assert (result.ok, result.first_bad_seq, result.rows) == (False, 8, 7)
    assert result.reason == "the newest 3 rows are missing: audit_head says 10, the table ends at 7"


def test_every_row_deleted_is_found_through_the_head(trail: AuditLog, db_path: Path) -> None:
    sql(db_path, "DELETE FROM audit")
    result = verify(trail.engine)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 1, "the newest 10 rows are missing: audit_head says 10, the table is empty")


def test_two_reordered_rows_are_named(trail: AuditLog, db_path: Path) -> None:
    four, five = row(db_path, 4), row(db_path, 5)
    sql(db_path, "UPDATE audit SET seq = -4 WHERE seq = 4")
    sql(db_path, "UPDATE audit SET seq = 4 WHERE seq = 5")
    sql(db_path, "UPDATE audit SET seq = 5 WHERE seq = -4")
    assert row(db_path, 4)[2] == five[2] and row(db_path, 5)[2] == four[2]
    result = verify(trail.engine)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert result.reason == "audit row 4 does not follow row 3 (inserted or reordered)"


def test_a_forged_head_hash_is_named(trail: AuditLog, db_path: Path) -> None:
    sql(db_path, "UPDATE audit_head SET hash = ?", "0" * 63 + "1")
    result = verify(trail.engine)
    assert (result.ok, result.first_bad_seq) == (False, 10)
    assert result.reason == "audit_head does not match row 10: the head was forged or the row rewritten"


def test_a_head_moved_back_is_found(trail: AuditLog, db_path: Path) -> None:
    sql(db_path, "UPDATE audit_head SET seq = 8, hash = (SELECT hash FROM audit WHERE seq = 8)")
    result = verify(trail.engine)
    assert (result.ok, result.first_bad_seq) == (False, 9)
    assert result.reason == "audit rows 9… were added without updating audit_head: it says 8, the table ends at 10"


def test_a_deleted_head_is_found(trail: AuditLog, db_path: Path) -> None:
    sql(db_path, "DELETE FROM audit_head")
    result = verify(trail.engine)
    assert not result.ok and result.first_bad_seq is None
    assert result.reason.startswith("audit_head is missing")
    with pytest.raises(AuditError, match="audit_head is missing"):
        AuditLog(make_engine(db_path))


def test_a_forged_genesis_link_is_named(trail: AuditLog, db_path: Path) -> None:
    sql(db_path, "UPDATE audit SET prev_hash = ? WHERE seq = 1", "1" * 64)
    result = verify(trail.engine)
    assert (result.ok, result.first_bad_seq) == (False, 1)
    assert "does not start the trail" in result.reason


def test_a_row_before_the_first_is_named(trail: AuditLog, db_path: Path) -> None:
    sql(db_path, "INSERT INTO audit VALUES (0, 1.0, 'request', NULL, NULL, NULL, NULL, NULL, '{}', ?, ?)", GENESIS, GENESIS)
    result = verify(trail.engine)
    assert (result.ok, result.first_bad_seq) == (False, 0)
    assert result.reason == "audit row 0 is out of sequence (expected row 1)"


# ------------------------------------------------------------ any single mutation is named


COLUMNS = ("at", "kind", "strategy", "run_id", "client_order_id", "request_id", "latency_us", "detail", "prev_hash", "hash")
texts = st.text(st.characters(codec="utf-8"), max_size=12)
NEW_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "at": st.floats(allow_nan=False, allow_infinity=False),
    "kind": texts,
    "strategy": st.none() | texts,
    "run_id": st.none() | st.integers(-(2**63), 2**63 - 1),
    "client_order_id": st.none() | texts,
    "request_id": st.none() | texts,
    "latency_us": st.none() | st.integers(-(2**63), 2**63 - 1),
    "detail": texts,
    "prev_hash": st.text("0123456789abcdef", min_size=64, max_size=64),
    "hash": st.text("0123456789abcdef", min_size=64, max_size=64),
}
records = st.lists(
    st.tuples(
        st.sampled_from(["request", "risk", "broker_call"]),
        st.dictionaries(st.text(max_size=4), st.integers() | st.text(max_size=4) | st.decimals(allow_nan=False, allow_infinity=False), max_size=3),
        st.none() | st.sampled_from(["alpha", "beta"]),
        st.none() | st.integers(0, 100),
        st.floats(0, 2e9),
    ),
    min_size=1,
    max_size=25,
)


@st.composite
def mutations(draw: st.DrawFn, size: int) -> tuple[str, int, Any]:
    target = draw(st.integers(1, size))
    what = draw(st.sampled_from(["delete", "seq", *COLUMNS]))
    if what == "delete":
        return what, target, None
    if what == "seq":
        return what, target, draw(st.integers(-5, 0) | st.integers(size + 1, size + 1000))
    return what, target, draw(NEW_VALUES[what])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records, st.data())
def test_any_single_row_mutation_is_detected_and_names_that_row(entries: list[tuple[Any, ...]], data: st.DataObject) -> None:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    log = AuditLog(engine)
    for kind, detail, strategy, run_id, at in entries:
        log.record(kind, detail, strategy=strategy, run_id=run_id, client_order_id=None, request_id="r", latency_us=5, at=at)
    log.write()
    assert verify(engine, chunk_size=4).ok
    what, target, value = data.draw(mutations(len(entries)))
    raw = engine.raw_connection()
    try:
        if what == "delete":
            raw.execute("DELETE FROM audit WHERE seq = ?", (target,))
        elif what == "seq":
            raw.execute("UPDATE audit SET seq = ? WHERE seq = ?", (value, target))
        else:
            old = raw.execute(f"SELECT {what} FROM audit WHERE seq = ?", (target,)).fetchone()[0]
            assume(old != value and not (isinstance(old, float) and float(value) == old))
            raw.execute(f"UPDATE audit SET {what} = ? WHERE seq = ?", (value, target))
        raw.commit()
    finally:
        raw.close()
    result = verify(engine, chunk_size=4)
    assert not result.ok
    assert result.first_bad_seq in (target, value if what == "seq" else target), result.reason
    engine.dispose()


# ------------------------------------------------------------ reading


def test_query_filters_and_parses_detail(trail: AuditLog, engine: Engine) -> None:
    everything = query(engine)
    assert [e.seq for e in everything] == list(range(10, 0, -1))
    newest = everything[0]
    assert newest.detail == {"i": 9, "quantity": "1.50", "note": "ünïcode ✓"}
    assert (newest.kind, newest.strategy, newest.run_id, newest.latency_us, newest.at) == ("risk", "beta", 7, 109, 1009.0)
    assert newest.prev_hash == everything[1].hash
    assert [e.seq for e in query(engine, strategy="alpha")] == [9, 7, 5, 3, 1]
    assert [e.seq for e in query(engine, since=1003.0, until=1006.0)] == [6, 5, 4]
    assert [e.seq for e in query(engine, kind="risk")] == [10, 6, 2]
    assert [e.seq for e in query(engine, client_order_id="alpha-20240501-1")] == [8, 7, 6, 5]
    assert [e.seq for e in query(engine, limit=3)] == [10, 9, 8]
    assert len(query(engine, limit=0)) == 10
    assert query(engine, strategy="nobody") == []
