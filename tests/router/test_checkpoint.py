from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import create_engine, event, text

from host.router.checkpoint import Checkpointer
from host.store import _sqlite_pragmas


def _engine(path: Path):  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _frames(engine) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    # A PASSIVE checkpoint of nothing new reports (busy, frames in the WAL, frames already checkpointed).
    with engine.connect() as conn:
        busy, log, done = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    return log, done


def test_commits_never_checkpoint_and_the_thread_moves_the_wal(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "state.db")
    checkpointer = Checkpointer(engine, interval=3600)  # the thread only checkpoints when stopped, below
    checkpointer.install()
    try:
        with engine.begin() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
            conn.exec_driver_sql("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        for n in range(40):  # about 1,500 pages of 1 KiB: past SQLite's automatic checkpoint at 1,000
            with engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO t (v) VALUES (?)", (("x" * 900 + str(n)) * 40,))
        wal = tmp_path / "state.db-wal"
        assert wal.stat().st_size > 1000 * 1024  # nothing was copied back inside a commit
    finally:
        checkpointer.stop()  # one last checkpoint on the way out
    assert checkpointer.checkpoints == 1
    other = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    with other.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 40
    log, done = _frames(other)
    assert log == done  # every frame is in the database file


def test_checkpoints_run_on_their_interval(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "state.db")
    checkpointer = Checkpointer(engine, interval=0.02)
    checkpointer.install()
    try:
        deadline = time.monotonic() + 5
        while checkpointer.checkpoints < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert checkpointer.checkpoints >= 3
    finally:
        checkpointer.stop()


def test_in_memory_and_other_databases_are_left_alone() -> None:
    engine = create_engine("sqlite://")
    assert not Checkpointer.applies(engine)
    checkpointer = Checkpointer(engine)
    checkpointer.install()
    checkpointer.stop()
    assert checkpointer.checkpoints == 0
