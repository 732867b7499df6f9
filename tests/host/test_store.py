"""Tests for host.store against a real SQLite file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from host.store import RunRecord, Store


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def finish(store: Store, run_id: int, *, ended_at: float, outcome: str = "ok", error: str | None = None, exit_code: int | None = 0) -> None:
    store.finish_run(run_id, ended_at=ended_at, entered_at=ended_at - 0.5, pid=4321, exit_code=exit_code, signal=None, peak_rss=1234, outcome=outcome, error=error)


# ------------------------------------------------------------ database setup


def test_wal_journal_mode_and_full_sync(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar_one() == 2  # FULL
        assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == 5000


def test_file_is_created_and_reopening_keeps_the_schema(tmp_path: Path, db_url: str) -> None:
    first = Store(db_url)
    first.ensure_strategy("a", enabled=True, now=1.0)
    first.close()
    assert (tmp_path / "state.db").exists()
    second = Store(db_url)  # create_all must not fail nor wipe
    try:
        assert set(second.strategies()) == {"a"}
    finally:
        second.close()


# ------------------------------------------------------------ desired state


def test_ensure_strategy_creates_once_and_keeps_enabled(store: Store) -> None:
    created = store.ensure_strategy("alpha", enabled=True, now=100.0)
    assert (created.name, created.enabled, created.registered_at, created.last_slot) == ("alpha", True, 100.0, None)
    again = store.ensure_strategy("alpha", enabled=False, now=200.0)
    assert again == created  # the stored flag and registration time win
    store.set_enabled("alpha", False)
    third = store.ensure_strategy("alpha", enabled=True, now=300.0)
    assert third.enabled is False
    assert third.registered_at == 100.0
    assert list(store.strategies()) == ["alpha"]


def test_set_enabled_persists_across_store_instances(db_url: str) -> None:
    first = Store(db_url)
    first.ensure_strategy("a", enabled=True, now=1.0)
    first.ensure_strategy("b", enabled=False, now=1.0)
    first.set_enabled("a", False)
    first.set_enabled("b", True)
    first.close()
    second = Store(db_url)
    try:
        records = second.strategies()
        assert records["a"].enabled is False
        assert records["b"].enabled is True
        assert second.ensure_strategy("a", enabled=True).enabled is False
    finally:
        second.close()


def test_set_enabled_of_unknown_strategy_creates_nothing(store: Store) -> None:
    store.set_enabled("ghost", True)
    assert store.strategies() == {}


# ------------------------------------------------------------ slots


def test_begin_run_consumes_the_slot(store: Store) -> None:
    store.ensure_strategy("s", enabled=True, now=0.0)
    run_id = store.begin_run("s", "schedule", 1000.0, 1000.1)
    assert run_id >= 1
    assert store.strategies()["s"].last_slot == 1000.0
    [run] = store.runs("s")
    assert (run.id, run.trigger, run.scheduled_at, run.started_at, run.ended_at) == (run_id, "schedule", 1000.0, 1000.1, None)


def test_last_slot_never_goes_backwards(store: Store) -> None:
    store.ensure_strategy("s", enabled=True, now=0.0)
    store.begin_run("s", "schedule", 2000.0, 2000.0)
    store.begin_run("s", "schedule", 1000.0, 2001.0)  # an older slot, e.g. a late catch-up
    assert store.strategies()["s"].last_slot == 2000.0
    store.consume_slot("s", 1500.0, "missed")
    assert store.strategies()["s"].last_slot == 2000.0
    store.consume_slot("s", 3000.0, "skipped")
    assert store.strategies()["s"].last_slot == 3000.0


def test_manual_run_does_not_touch_the_slot(store: Store) -> None:
    store.ensure_strategy("s", enabled=True, now=0.0)
    store.begin_run("s", "schedule", 500.0, 500.0)
    store.begin_run("s", "manual", None, 600.0)
    assert store.strategies()["s"].last_slot == 500.0


def test_consume_slot_records_a_skip_event(store: Store) -> None:
    store.ensure_strategy("s", enabled=True, now=0.0)
    store.consume_slot("s", 42.0, "previous run still going")
    assert store.strategies()["s"].last_slot == 42.0
    assert store.runs("s") == []
    [(at, name, kind, detail)] = store.events("s")
    assert (name, kind, detail) == ("s", "skip", "previous run still going")
    assert at > 0


def test_slot_survives_reopening(db_url: str) -> None:
    first = Store(db_url)
    first.ensure_strategy("s", enabled=True, now=0.0)
    first.begin_run("s", "schedule", 77.0, 77.5)
    first.close()
    second = Store(db_url)
    try:
        assert second.ensure_strategy("s", enabled=True).last_slot == 77.0
    finally:
        second.close()


# ------------------------------------------------------------ runs


def test_finish_run_history_last_runs_and_counts(store: Store) -> None:
    for name in ("a", "b"):
        store.ensure_strategy(name, enabled=True, now=0.0)
    a1 = store.begin_run("a", "schedule", 10.0, 10.0)
    finish(store, a1, ended_at=11.0)
    a2 = store.begin_run("a", "manual", None, 20.0)
    finish(store, a2, ended_at=25.0, outcome="failed", error="ValueError: boom", exit_code=1)
    a3 = store.begin_run("a", "schedule", 30.0, 30.0)  # still running
    b1 = store.begin_run("b", "continuous", None, 5.0)

    count, last = store.history("a")
    assert count == 3
    assert last is not None and last.id == a2
    assert (last.outcome, last.error, last.exit_code, last.peak_rss, last.entered_at) == ("failed", "ValueError: boom", 1, 1234, 24.5)
    assert last.duration == 5.0

    assert store.history("b") == (1, None)
    assert store.history("nobody") == (0, None)

    last_runs = store.last_runs()
    assert set(last_runs) == {"a"}  # b has no finished run
    assert last_runs["a"].id == a2
    assert store.run_counts() == {"a": 3, "b": 1}

    runs = store.runs("a")
    assert [r.id for r in runs] == [a3, a2, a1]  # newest first
    assert runs[0].duration is None
    assert [r.id for r in store.runs(limit=2)] == [b1, a3]


def test_finish_run_records_pid_and_begin_runs_shares_one_transaction(store: Store) -> None:
    run_id = store.begin_run("a", "manual", None, 1.0)
    finish(store, run_id, ended_at=2.0)
    assert store.runs("a")[0].pid == 4321
    store.ensure_strategy("b", enabled=True, now=0.0)
    ids = store.begin_runs([("b", "schedule", 10.0, 9.8), ("c", "manual", None, 9.8)])
    assert ids == sorted(ids) and len(ids) == 2
    assert store.strategies()["b"].last_slot == 10.0


def test_close_lost_runs(store: Store) -> None:
    done = store.begin_run("a", "manual", None, 1.0)
    finish(store, done, ended_at=2.0)
    open1 = store.begin_run("a", "schedule", 3.0, 3.0)
    open2 = store.begin_run("b", "continuous", None, 4.0)

    lost = store.close_lost_runs(100.0, "supervisor died")
    assert all(isinstance(r, RunRecord) for r in lost)
    assert sorted(r.id for r in lost) == [open1, open2]

    by_id = {r.id: r for r in store.runs()}
    for run_id in (open1, open2):
        assert (by_id[run_id].ended_at, by_id[run_id].outcome, by_id[run_id].error) == (100.0, "lost", "supervisor died")
    assert by_id[done].outcome == "ok" and by_id[done].ended_at == 2.0
    assert store.close_lost_runs(200.0, "again") == []


# ------------------------------------------------------------ ctx.state


def test_kv_set_items_delete_and_size(store: Store) -> None:
    assert store.kv_items("s") == {}
    assert store.kv_size("s") == 0
    store.kv_set("s", "count", json.dumps(1))
    store.kv_set("s", "list", json.dumps([1, "x", None]))
    store.kv_set("other", "count", json.dumps(99))
    assert store.kv_items("s") == {"count": 1, "list": [1, "x", None]}
    assert store.kv_size("s") == len("count") + len("1") + len("list") + len(json.dumps([1, "x", None]))
    store.kv_set("s", "count", json.dumps(2))  # overwrite
    assert store.kv_items("s")["count"] == 2
    assert store.kv_delete("s", "count") is True
    assert store.kv_delete("s", "count") is False
    assert store.kv_items("s") == {"list": [1, "x", None]}
    assert store.kv_items("other") == {"count": 99}


def test_kv_size_counts_key_and_encoded_value(store: Store) -> None:
    store.kv_set("s", "k", '"abc"')
    store.kv_set("s", "key2", "12345")
    assert store.kv_size("s") == (1 + 5) + (4 + 5)


def test_kv_size_excluding_a_key(store: Store) -> None:
    store.kv_set("s", "a", "123")
    store.kv_set("s", "bb", "4567")
    store.kv_set("t", "a", "999999")
    assert store.kv_size("s") == 4 + 6
    assert store.kv_size("s", excluding="a") == 6
    assert store.kv_size("s", excluding="bb") == 4
    assert store.kv_size("s", excluding="missing") == 10
    assert store.kv_size("t", excluding="a") == 0


def test_kv_survives_reopening(db_url: str) -> None:
    first = Store(db_url)
    first.kv_set("s", "k", '{"a":1}')
    first.close()
    second = Store(db_url)
    try:
        assert second.kv_items("s") == {"k": {"a": 1}}
    finally:
        second.close()


def test_record_event_and_events_filter(store: Store) -> None:
    store.record_event(None, "start", "supervisor started")
    store.record_event("a", "fatal", "gave up")
    assert [e[1:] for e in store.events()] == [("a", "fatal", "gave up"), (None, "start", "supervisor started")]
    assert [e[2] for e in store.events("a")] == ["fatal"]
    assert len(store.events(limit=1)) == 1
