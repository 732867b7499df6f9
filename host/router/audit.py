"""The audit trail: an append-only, hash-chained log in the state database.

Every row carries ``hash = sha256(prev_hash + canonical(row))`` where
``prev_hash`` is the previous row's hash (:data:`GENESIS` for row 1), and
``audit_head`` holds the newest seq and hash, written in the same
transaction. Editing a row breaks its own hash, inserting or reordering
rows breaks the ``prev_hash`` links, deleting rows leaves a gap in ``seq``
or a head that points past the table's end; :func:`verify` names the first
such row.

The chain has no secret key: someone who can rewrite the database can also
recompute every hash after the row they changed, head included. It proves
the trail was not changed by accident or by a careless edit, not against an
attacker with write access and this source code.

:class:`AuditLog` is the router's hot path. ``record`` hashes in memory;
``flush`` writes every pending row with one executemany inside the caller's
transaction, so one commit (one fsync) covers many records (group commit).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from time import time as _now
from typing import Any

import orjson

from sqlalchemy import Connection, Engine, Row, bindparam, inspect, insert, select, update

from host.errors import TradehostError

from host.sqlprep import Prepared

from .tables import audit_head_table, audit_table

__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "VerifyResult",
    "canonical",
    "chain_hash",
    "encode_detail",
    "query",
    "verify",
]

GENESIS = "0" * 64
"""The ``prev_hash`` of row 1."""

HEAD_ID = 1
"""The id of audit_head's one row."""

_COLUMNS = tuple(column.name for column in audit_table.columns)
# Rows are tuples in this order on the hot path, and canonical() takes the first nine positionally.
assert _COLUMNS == ("seq", "at", "kind", "strategy", "run_id", "client_order_id", "request_id", "latency_us", "detail", "prev_hash", "hash")
_SEQ, _PREV, _HASH = _COLUMNS.index("seq"), _COLUMNS.index("prev_hash"), _COLUMNS.index("hash")


class AuditError(TradehostError):
    """The audit trail in the database cannot be continued: its newest rows and audit_head disagree."""


# ---------------------------------------------------------------- pure: encoding and hashing


_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def _json_dumps(detail: dict[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def _encode(detail: dict[str, Any]) -> str:
    # orjson is several times faster than json on the hot path; where it refuses (an integer past
    # 64 bits, a lone surrogate, a non-string key) json gives the same canonical text.
    try:
        return orjson.dumps(detail, default=str, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return _json_dumps(detail)


def encode_detail(detail: Mapping[str, Any]) -> str:
    """Return ``detail`` as canonical JSON text: sorted keys, no spaces, Decimal and datetime as strings.

    Without floats it equals ``json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str,
    ensure_ascii=False)``; a float is written in its shortest round-trip form (``1e-07`` as ``1e-7``).
    The hash covers the stored text, so verifying never depends on encoding the same way again.
    """
    return _encode(detail if type(detail) is dict else dict(detail))


def _text(value: str | None) -> str:
    return "-" if value is None else f"{len(value)}:{value}"


def canonical(
    seq: int,
    at: float,
    kind: str,
    strategy: str | None,
    run_id: int | None,
    client_order_id: str | None,
    request_id: str | None,
    latency_us: int | None,
    detail: str,
) -> bytes:
    """Return the bytes a row's hash covers (every column but prev_hash and hash).

    UTF-8 of ``seq|at|kind|strategy|run_id|client_order_id|request_id|latency_us|detail``:
    integers in decimal, ``at`` as Python's ``repr`` of the float, each text
    ``LENGTH:TEXT`` (length in characters), NULL as ``-``, and ``detail`` (the
    JSON text, last) as it is. The length prefixes make it unambiguous.
    """
    return (
        f"{seq}|{at!r}|{_text(kind)}|{_text(strategy)}|{'-' if run_id is None else run_id}|{_text(client_order_id)}"
        f"|{_text(request_id)}|{'-' if latency_us is None else latency_us}|{detail}"
    ).encode()


def chain_hash(prev_hash: str, canonical_bytes: bytes) -> str:
    """Return sha256(prev_hash + canonical_bytes) as 64 hex digits."""
    return sha256(prev_hash.encode("ascii") + canonical_bytes).hexdigest()


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify` found; ``reason`` is one line."""

    ok: bool
    rows: int
    """Rows checked (all of them when ok)."""
    first_bad_seq: int | None
    reason: str
    head: str | None = None
    """The newest row's hash when ok (None for an empty trail)."""


@dataclass(frozen=True)
class AuditEntry:
    """One audit row, ``detail`` parsed."""

    seq: int
    at: float
    kind: str
    strategy: str | None
    run_id: int | None
    client_order_id: str | None
    request_id: str | None
    latency_us: int | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


# ---------------------------------------------------------------- writing


class AuditLog:
    """The writer: assigns seq and hash as records come, writes them when the caller flushes.

    Thread-safe: the loop may record while another thread flushes and commits.
    Two writers on one database cannot fork the chain: the second one's
    flush raises AuditError, and it must :meth:`discard_pending`.
    """

    def __init__(self, engine: Engine) -> None:
        """Load the head; raise AuditError if the newest rows and audit_head disagree (a damaged trail)."""
        self.engine = engine
        audit_table.metadata.create_all(engine, tables=[audit_table, audit_head_table])
        head = audit_head_table.c
        self._insert_rows = Prepared(insert(audit_table), _COLUMNS, engine.dialect)
        self._move_head = Prepared(
            update(audit_head_table)
            .where(head.id == bindparam("head_id"), head.seq == bindparam("base_seq"), head.hash == bindparam("base_hash"))
            .values(seq=bindparam("head_seq"), hash=bindparam("head_hash")),
            ("head_seq", "head_hash", "head_id", "base_seq", "base_hash"),
            engine.dialect,
        )
        self._insert_head = Prepared(insert(audit_head_table), ("seq", "hash", "id"), engine.dialect)
        self._lock = threading.Lock()
        self._pending: list[tuple[Any, ...]] = []
        self._seq, self._hash = self._read_head()

    @property
    def head(self) -> tuple[int, str]:
        """The newest recorded (not necessarily flushed) seq and hash."""
        return self._seq, self._hash

    @property
    def pending(self) -> int:
        """Records not yet flushed."""
        return len(self._pending)

    def record(
        self,
        kind: str,
        detail: Mapping[str, Any],
        *,
        strategy: str | None = None,
        run_id: int | None = None,
        client_order_id: str | None = None,
        request_id: str | None = None,
        latency_us: float | None = None,
        at: float | None = None,
    ) -> int:
        """Append a record to the pending list and return its seq; nothing is written until :meth:`flush`.

        ``at`` defaults to now (epoch seconds); ``latency_us`` is rounded to whole microseconds.
        """
        at = _now() if at is None else float(at)
        micros = latency_us if latency_us is None or type(latency_us) is int else round(latency_us)
        text = _encode(detail if type(detail) is dict else dict(detail))
        with self._lock:
            seq = self._seq + 1
            try:
                body = canonical(seq, at, kind, strategy, run_id, client_order_id, request_id, micros, text)
            except UnicodeEncodeError:
                # A lone surrogate (from a strategy's JSON) cannot be stored as UTF-8: escape the detail instead.
                text = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
                body = canonical(seq, at, kind, strategy, run_id, client_order_id, request_id, micros, text)
            prev = self._hash
            digest = sha256(prev.encode() + body).hexdigest()
            self._pending.append((seq, at, kind, strategy, run_id, client_order_id, request_id, micros, text, prev, digest))
            self._seq, self._hash = seq, digest
        return seq

    def flush(self, conn: Connection) -> int:
        """Write every pending record, and the head, in ``conn``'s transaction; return how many.

        The caller commits, and acknowledges nothing to a strategy before that
        commit returned. If flush raises, the records stay pending (flush again
        in a new transaction, or discard them); if the commit fails after flush
        returned, the caller must call :meth:`discard_pending` before flushing
        again. The head is moved with a compare-and-set, so a lost commit that
        was not discarded, or a second writer, raises AuditError here instead of
        leaving a gap in the chain.
        """
        with self._lock:
            rows, self._pending = self._pending, []
        if not rows:
            return 0
        try:
            self._write_rows(conn, rows)
        except BaseException:
            with self._lock:
                self._pending[:0] = rows
            raise
        return len(rows)

    def _write_rows(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        base_seq, base_hash = rows[0][_SEQ] - 1, rows[0][_PREV]
        head = (rows[-1][_SEQ], rows[-1][_HASH], HEAD_ID, base_seq, base_hash)
        if not self._move_head.run(conn, [head]).rowcount:
            if base_seq != 0:
                raise AuditError(
                    f"audit_head is no longer at row {base_seq}: another writer appended, or a failed commit was not discarded"
                )
            self._insert_head.run(conn, [head])  # the first rows ever
        self._insert_rows.run(conn, rows)

    def write(self) -> int:
        """Flush in a transaction of its own and commit it; discard the records if that fails."""
        try:
            with self.engine.begin() as conn:
                return self.flush(conn)
        except BaseException:
            self.discard_pending()
            raise

    def discard_pending(self) -> None:
        """Forget every record that is not committed: the pending ones and those of a failed flush.

        The head is read back from the database, which knows what was committed.
        """
        with self._lock:
            self._pending = []
            self._seq, self._hash = self._read_head()

    def _read_head(self) -> tuple[int, str]:
        with self.engine.connect() as conn:
            head = _read_head_row(conn)
            last = conn.execute(select(audit_table.c.seq, audit_table.c.hash).order_by(audit_table.c.seq.desc()).limit(1)).first()
        table = (0, GENESIS) if last is None else (int(last.seq), str(last.hash))
        problem = _head_problem(head, *table)
        if problem is not None:
            raise AuditError(f"cannot continue the audit trail: {problem[1]} (run `tradehost audit verify`)")
        return table


# ---------------------------------------------------------------- verifying


def _read_head_row(conn: Connection) -> tuple[int, str] | None:
    row = conn.execute(select(audit_head_table.c.seq, audit_head_table.c.hash).where(audit_head_table.c.id == HEAD_ID)).first()
    return None if row is None else (row.seq, row.hash)


def _missing(first: int, last: int) -> str:
    if first == last:
        return f"audit row {first} is missing (deleted)"
    return f"audit rows {first}–{last} are missing (deleted)"


def _row_problem(row: Sequence[Any], expected_seq: int, prev_hash: str) -> tuple[int, str] | None:
    """Check one row against its predecessor: return (first bad seq, reason), or None if it is sound."""
    seq = row[_SEQ]
    if seq != expected_seq:
        if isinstance(seq, int) and seq > expected_seq:
            return expected_seq, _missing(expected_seq, seq - 1)
        return seq, f"audit row {seq} is out of sequence (expected row {expected_seq})"
    if row[_PREV] != prev_hash:
        if seq == 1:
            return seq, "audit row 1 does not start the trail: its prev_hash is not the genesis hash (inserted or reordered)"
        return seq, f"audit row {seq} does not follow row {seq - 1} (inserted or reordered)"
    try:
        digest: str | None = chain_hash(prev_hash, canonical(*row[:_PREV]))
    except (UnicodeError, TypeError, ValueError, AttributeError):
        digest = None  # a value of the wrong type was written into the row
    if digest != row[_HASH]:
        return seq, f"audit row {seq} was edited: its hash does not match its content"
    return None


def _head_problem(head: tuple[int, str] | None, last_seq: int, last_hash: str) -> tuple[int | None, str] | None:
    """Compare audit_head with the table's newest row (seq 0: an empty table); return (first bad seq, reason) or None."""
    if head is None:
        if last_seq == 0:
            return None
        return None, f"audit_head is missing, the table ends at row {last_seq} (head deleted or rows forged)"
    head_seq, head_hash = head
    if head_seq > last_seq:
        missing = head_seq - last_seq
        rows = "row is" if missing == 1 else f"{missing} rows are"
        where = "the table is empty" if last_seq == 0 else f"the table ends at {last_seq}"
        return last_seq + 1, f"the newest {rows} missing: audit_head says {head_seq}, {where}"
    if head_seq < last_seq:
        return head_seq + 1, f"audit rows {head_seq + 1}… were added without updating audit_head: it says {head_seq}, the table ends at {last_seq}"
    if head_hash != last_hash:
        return head_seq, f"audit_head does not match row {head_seq}: the head was forged or the row rewritten"
    return None


def _chunks(conn: Connection, size: int) -> Iterator[Sequence[Row[Any]]]:
    """Every audit row in seq order, ``size`` at a time (keyset paging: memory stays bounded)."""
    statement = select(*(audit_table.c[name] for name in _COLUMNS)).order_by(audit_table.c.seq).limit(size)
    batch = conn.execute(statement).all()
    while batch:
        yield batch
        if len(batch) < size:
            return
        batch = conn.execute(statement.where(audit_table.c.seq > batch[-1][_SEQ])).all()


@dataclass
class _Walk:
    """Where the walk through the chain is: rows seen, the newest seq and hash."""

    rows: int = 0
    seq: int = 0
    hash: str = GENESIS


def _walk(conn: Connection, head: tuple[int, str] | None, walk: _Walk, chunk_size: int) -> tuple[int | None, str] | None:
    """Check every row in order, and the head where the walk passes it; stop at the first problem."""
    for batch in _chunks(conn, chunk_size):
        for row in batch:
            walk.rows += 1
            problem: tuple[int | None, str] | None = _row_problem(row, walk.seq + 1, walk.hash)
            if problem is None and head is not None and row[_SEQ] == head[0] and row[_HASH] != head[1]:
                problem = _head_problem(head, head[0], row[_HASH])
            if problem is not None:
                return problem
            walk.seq, walk.hash = row[_SEQ], row[_HASH]
    return None


def verify(engine: Engine, *, chunk_size: int = 5000) -> VerifyResult:
    """Walk the whole trail in seq order and report the first edited, inserted or deleted row."""
    tables = set(inspect(engine).get_table_names())
    if audit_table.name not in tables:
        return VerifyResult(True, 0, None, "audit trail intact: 0 rows (no audit table yet)")
    walk = _Walk()
    with engine.connect() as conn:
        read_head = (lambda: _read_head_row(conn)) if audit_head_table.name in tables else (lambda: None)
        # Rows and head are committed together, and the head is read first: every row up to it is
        # there already. Rows a writer appends during the walk are walked too.
        head = read_head()
        problem = _walk(conn, head, walk, chunk_size)
        if problem is None and head is not None and head[0] > walk.seq:
            problem = _head_problem(head, walk.seq, walk.hash)
        if problem is None:
            # Read again: it now covers every row the walk saw, unless rows were added without it.
            after = read_head()
            if after is None or after[0] <= walk.seq:
                problem = _head_problem(after, walk.seq, walk.hash)
    if problem is not None:
        return VerifyResult(False, walk.rows, problem[0], problem[1])
    if walk.rows == 0:
        return VerifyResult(True, 0, None, "audit trail intact: 0 rows")
    return VerifyResult(True, walk.rows, None, f"audit trail intact: {walk.rows} rows, head {walk.hash[:12]}…", head=walk.hash)


# ---------------------------------------------------------------- reading


def _entry(row: Row[Any]) -> AuditEntry:
    try:
        detail = json.loads(row.detail)
    except ValueError:
        detail = None
    if not isinstance(detail, dict):
        detail = {"unparsed": row.detail}
    values = dict(row._mapping)
    values["detail"] = detail
    return AuditEntry(**values)


def query(
    engine: Engine,
    *,
    strategy: str | None = None,
    since: float | None = None,
    until: float | None = None,
    kind: str | None = None,
    client_order_id: str | None = None,
    limit: int | None = None,
) -> list[AuditEntry]:
    """Audit rows, newest first; ``since`` ≤ at < ``until`` (epoch seconds); ``limit`` None or 0 means all."""
    statement = select(audit_table).order_by(audit_table.c.seq.desc())
    if strategy is not None:
        statement = statement.where(audit_table.c.strategy == strategy)
    if since is not None:
        statement = statement.where(audit_table.c.at >= since)
    if until is not None:
        statement = statement.where(audit_table.c.at < until)
    if kind is not None:
        statement = statement.where(audit_table.c.kind == kind)
    if client_order_id is not None:
        statement = statement.where(audit_table.c.client_order_id == client_order_id)
    if limit:
        statement = statement.limit(limit)
    with engine.connect() as conn:
        return [_entry(row) for row in conn.execute(statement)]
