"""The state database: desired state, run history, ctx.state and host events.

SQLAlchemy Core over any URL; the default is an SQLite file in ``state/``,
opened in WAL mode with ``synchronous=FULL`` so that a recorded cron slot or
stop survives a power cut, not only a crash. The supervisor is the only writer.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)

__all__ = ["RunRecord", "Store", "StrategyRecord"]

metadata = MetaData()

strategies_table = Table(
    "strategies",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("registered_at", Float, nullable=False),
    # The newest cron slot that was consumed (run or skipped); never fired again.
    Column("last_slot", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
)

runs_table = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("strategy", String(200), nullable=False, index=True),
    Column("trigger", String(20), nullable=False),
    Column("scheduled_at", Float, nullable=True),
    Column("started_at", Float, nullable=False),
    Column("entered_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    Column("pid", Integer, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("signal", Integer, nullable=True),
    Column("peak_rss", Integer, nullable=True),
    Column("outcome", String(20), nullable=True),
    Column("error", Text, nullable=True),
)

kv_table = Table(
    "kv",
    metadata,
    Column("strategy", String(200), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

events_table = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("strategy", String(200), nullable=True, index=True),
    Column("kind", String(40), nullable=False),
    Column("detail", Text, nullable=False),
)


@dataclass(frozen=True)
class StrategyRecord:
    name: str
    enabled: bool
    registered_at: float
    last_slot: float | None


@dataclass(frozen=True)
class RunRecord:
    id: int
    strategy: str
    trigger: str
    scheduled_at: float | None
    started_at: float
    entered_at: float | None
    ended_at: float | None
    pid: int | None
    exit_code: int | None
    signal: int | None
    peak_rss: int | None
    outcome: str | None
    error: str | None

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA page_size=1024")  # only takes effect on a new database; see the comment below
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Store:
    """All reads and writes of the state database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- desired state -------------------------------------------------------

    def ensure_strategy(self, name: str, *, enabled: bool, now: float | None = None) -> StrategyRecord:
        """Return the strategy's record, creating it on first sight."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            row = conn.execute(select(strategies_table).where(strategies_table.c.name == name)).first()
            if row is None:
                conn.execute(insert(strategies_table).values(name=name, enabled=enabled, registered_at=now, last_slot=None, updated_at=now))
                return StrategyRecord(name, enabled, now, None)
        return StrategyRecord(row.name, bool(row.enabled), row.registered_at, row.last_slot)

    def set_enabled(self, name: str, enabled: bool) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(strategies_table).where(strategies_table.c.name == name).values(enabled=enabled, updated_at=time.time()))

    def consume_slot(self, name: str, slot: float, reason: str) -> None:
        """Mark a cron slot as used without running it (skipped or missed)."""
        with self.engine.begin() as conn:
            self._advance_slot(conn, name, slot)
            self._event(conn, name, "skip", reason)

    # -- runs ----------------------------------------------------------------

    def begin_run(self, name: str, trigger: str, scheduled_at: float | None, started_at: float) -> int:
        """Record a run before its process exists; a scheduled slot is consumed in the same transaction."""
        return self.begin_runs([(name, trigger, scheduled_at, started_at)])[0]

    def begin_runs(self, runs: list[tuple[str, str, float | None, float]]) -> list[int]:
        """Record several runs in one transaction (one fsync for a burst); return their ids in order."""
        ids = []
        with self.engine.begin() as conn:
            for name, trigger, scheduled_at, started_at in runs:
                if scheduled_at is not None:
                    self._advance_slot(conn, name, scheduled_at)
                result = conn.execute(insert(runs_table).values(strategy=name, trigger=trigger, scheduled_at=scheduled_at, started_at=started_at))
                key = result.inserted_primary_key
                assert key is not None
                ids.append(int(key[0]))
        return ids

    def finish_run(
        self,
        run_id: int,
        *,
        ended_at: float,
        entered_at: float | None,
        pid: int | None,
        exit_code: int | None,
        signal: int | None,
        peak_rss: int | None,
        outcome: str,
        error: str | None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(runs_table)
                .where(runs_table.c.id == run_id)
                .values(ended_at=ended_at, entered_at=entered_at, pid=pid, exit_code=exit_code, signal=signal, peak_rss=peak_rss, outcome=outcome, error=error)
            )

    def close_lost_runs(self, now: float, reason: str) -> list[RunRecord]:
        """End every run left open by a supervisor that died; return them."""
        with self.engine.begin() as conn:
            rows = conn.execute(select(runs_table).where(runs_table.c.ended_at.is_(None))).all()
            if rows:
                conn.execute(update(runs_table).where(runs_table.c.ended_at.is_(None)).values(ended_at=now, outcome="lost", error=reason))
        return [RunRecord(**row._mapping) for row in rows]

    def run_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(runs_table.c.strategy, func.count()).group_by(runs_table.c.strategy)).all()
        return {name: int(count) for name, count in rows}

    def last_runs(self) -> dict[str, RunRecord]:
        """The newest finished run of every strategy."""
        newest = (
            select(func.max(runs_table.c.id))
            .where(runs_table.c.ended_at.is_not(None))
            .group_by(runs_table.c.strategy)
            .scalar_subquery()
        )
        with self.engine.connect() as conn:
            rows = conn.execute(select(runs_table).where(runs_table.c.id.in_(newest))).all()
        return {row.strategy: RunRecord(**row._mapping) for row in rows}

    def history(self, name: str) -> tuple[int, RunRecord | None]:
        """How many runs ``name`` has had, and its newest finished one."""
        with self.engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(runs_table).where(runs_table.c.strategy == name)).scalar_one()
            row = conn.execute(
                select(runs_table).where(runs_table.c.strategy == name, runs_table.c.ended_at.is_not(None)).order_by(runs_table.c.id.desc()).limit(1)
            ).first()
        return int(count), None if row is None else RunRecord(**row._mapping)

    def runs(self, name: str | None = None, limit: int = 100) -> list[RunRecord]:
        query = select(runs_table).order_by(runs_table.c.id.desc()).limit(limit)
        if name is not None:
            query = query.where(runs_table.c.strategy == name)
        with self.engine.connect() as conn:
            return [RunRecord(**row._mapping) for row in conn.execute(query)]

    def strategy(self, name: str) -> StrategyRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(strategies_table).where(strategies_table.c.name == name)).first()
        return None if row is None else StrategyRecord(row.name, bool(row.enabled), row.registered_at, row.last_slot)

    def strategies(self) -> dict[str, StrategyRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(strategies_table)).all()
        return {row.name: StrategyRecord(row.name, bool(row.enabled), row.registered_at, row.last_slot) for row in rows}

    def prune(self, before: float) -> int:
        """Delete finished runs and events older than ``before``; return how many rows went."""
        with self.engine.begin() as conn:
            runs = conn.execute(delete(runs_table).where(runs_table.c.ended_at.is_not(None), runs_table.c.ended_at < before)).rowcount
            events = conn.execute(delete(events_table).where(events_table.c.at < before)).rowcount
        return int(runs) + int(events)

    # -- ctx.state -----------------------------------------------------------

    def kv_items(self, name: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(kv_table.c.key, kv_table.c.value).where(kv_table.c.strategy == name)).all()
        return {key: json.loads(value) for key, value in rows}

    def kv_set(self, name: str, key: str, encoded: str) -> None:
        """Store an already JSON-encoded value."""
        now = time.time()
        with self.engine.begin() as conn:
            found = conn.execute(
                update(kv_table).where(kv_table.c.strategy == name, kv_table.c.key == key).values(value=encoded, updated_at=now)
            ).rowcount
            if not found:
                conn.execute(insert(kv_table).values(strategy=name, key=key, value=encoded, updated_at=now))

    def kv_delete(self, name: str, key: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(kv_table).where(kv_table.c.strategy == name, kv_table.c.key == key)).rowcount)

    def kv_size(self, name: str, excluding: str | None = None) -> int:
        """Characters of keys and JSON values stored for ``name`` (leaving out key ``excluding``)."""
        query = select(func.coalesce(func.sum(func.length(kv_table.c.value) + func.length(kv_table.c.key)), 0)).where(kv_table.c.strategy == name)
        if excluding is not None:
            query = query.where(kv_table.c.key != excluding)
        with self.engine.connect() as conn:
            total = conn.execute(query).scalar_one()
        return int(total)

    # -- events --------------------------------------------------------------

    def record_event(self, name: str | None, kind: str, detail: str) -> None:
        with self.engine.begin() as conn:
            self._event(conn, name, kind, detail)

    def events(self, name: str | None = None, limit: int = 100) -> list[tuple[float, str | None, str, str]]:
        query = select(events_table).order_by(events_table.c.id.desc()).limit(limit)
        if name is not None:
            query = query.where(events_table.c.strategy == name)
        with self.engine.connect() as conn:
            return [(row.at, row.strategy, row.kind, row.detail) for row in conn.execute(query)]

    # -- private -------------------------------------------------------------

    @staticmethod
    def _event(conn: Any, name: str | None, kind: str, detail: str) -> None:
        conn.execute(insert(events_table).values(at=time.time(), strategy=name, kind=kind, detail=detail))

    @staticmethod
    def _advance_slot(conn: Any, name: str, slot: float) -> None:
        conn.execute(
            update(strategies_table)
            .where(strategies_table.c.name == name)
            .where((strategies_table.c.last_slot.is_(None)) | (strategies_table.c.last_slot < slot))
            .values(last_slot=slot, updated_at=time.time())
        )
