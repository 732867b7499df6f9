"""Moving the SQLite write-ahead log into the database file, off the commit path.

SQLite checkpoints automatically inside whichever commit pushes the WAL past
1,000 pages, so one order in some sixty would wait for a thousand page copies
and an extra fsync. The router turns that off on its own connections and runs
a PASSIVE checkpoint from this thread instead: it copies what no reader still
needs, never blocks the writer, and SQLite leaves the GIL while it works.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Connection, Engine, event

__all__ = ["Checkpointer", "no_autocheckpoint"]

log = logging.getLogger("tradehost.router")


def no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    """Connection hook: this connection's commits never checkpoint."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


class Checkpointer:
    """A daemon thread that checkpoints the WAL every ``interval`` seconds (SQLite only)."""

    def __init__(self, database: Engine, *, interval: float = 0.2) -> None:
        self.database = database
        self.interval = interval
        self.checkpoints = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None

    @staticmethod
    def applies(database: Engine) -> bool:
        return database.dialect.name == "sqlite" and database.url.database not in (None, "", ":memory:")

    def install(self) -> None:
        """Turn automatic checkpoints off on the router's connections and start the thread."""
        if not self.applies(self.database):
            return
        event.listen(self.database, "connect", no_autocheckpoint)
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after one last checkpoint."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self.interval)
            try:
                self._checkpoint()
            except Exception:  # a busy or failing checkpoint only delays the next one; commits are unaffected
                log.warning("WAL checkpoint failed", exc_info=True)
            if stopping:
                return

    def _checkpoint(self) -> None:
        if self._conn is None:
            self._conn = self.database.connect()
        raw = self._conn.connection.dbapi_connection
        assert raw is not None
        raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self.checkpoints += 1
