"""The ``credentials`` table: one encrypted value per (broker, field), with the id of its key.

Every function works inside the caller's connection and transaction, so a
change and its audit row commit together. Nothing here logs, and no error
carries a value.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, Connection, Engine, Float, MetaData, String, Table, Text, delete, insert, inspect, select, update

from .crypto import decrypt, encrypt, key_id
from .keys import KeyRing

__all__ = ["StoredCredential", "create_table", "credentials_table", "forget", "has_table", "key_ids", "listing", "put", "read", "reencrypt"]

metadata = MetaData()

credentials_table = Table(
    "credentials",
    metadata,
    Column("broker", String(64), primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("ciphertext", Text, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    sqlite_with_rowid=False,
)


@dataclass(frozen=True)
class StoredCredential:
    """What may be shown about a stored value: never the value."""

    broker: str
    field: str
    key_id: str
    created_at: float
    updated_at: float


def create_table(engine: Engine) -> None:
    metadata.create_all(engine)


def has_table(conn: Connection) -> bool:
    return inspect(conn).has_table(credentials_table.name)


def listing(conn: Connection, broker: str | None = None) -> list[StoredCredential]:
    """Every stored credential (of one broker), ordered by broker and field."""
    c = credentials_table.c
    query = select(c.broker, c.field, c.key_id, c.created_at, c.updated_at).order_by(c.broker, c.field)
    if broker is not None:
        query = query.where(c.broker == broker)
    return [StoredCredential(r.broker, r.field, r.key_id, r.created_at, r.updated_at) for r in conn.execute(query)]


def key_ids(conn: Connection) -> set[str]:
    return {row[0] for row in conn.execute(select(credentials_table.c.key_id).distinct())}


def put(conn: Connection, key: bytes, broker: str, field: str, value: str, now: float) -> StoredCredential:
    """Store ``value`` encrypted under ``key``, replacing what was there; returns the row's description."""
    c = credentials_table.c
    sealed = encrypt(key, broker, field, value)
    kid = key_id(key)
    created = conn.execute(select(c.created_at).where(c.broker == broker, c.field == field)).scalar_one_or_none()
    if created is None:
        conn.execute(insert(credentials_table).values(broker=broker, field=field, ciphertext=sealed, key_id=kid, created_at=now, updated_at=now))
        created = now
    else:
        conn.execute(update(credentials_table).where(c.broker == broker, c.field == field).values(ciphertext=sealed, key_id=kid, updated_at=now))
    return StoredCredential(broker, field, kid, created, now)


def read(conn: Connection, ring: KeyRing, broker: str, field: str) -> tuple[str, str] | None:
    """The decrypted value and its key id, or None if none is stored; CredentialError if it cannot be decrypted."""
    c = credentials_table.c
    row = conn.execute(select(c.ciphertext, c.key_id).where(c.broker == broker, c.field == field)).first()
    if row is None:
        return None
    return decrypt(ring.key(row.key_id, f"credential {broker} {field}"), broker, field, row.ciphertext), row.key_id


def forget(conn: Connection, broker: str, field: str) -> bool:
    """Delete the value; False if there was none."""
    c = credentials_table.c
    return bool(conn.execute(delete(credentials_table).where(c.broker == broker, c.field == field)).rowcount)


def reencrypt(conn: Connection, ring: KeyRing, new: bytes) -> int:
    """Decrypt every value with ``ring`` and store it again under ``new``; returns how many.

    All values are decrypted before any is written: one that cannot be read
    stops the rotation with nothing changed. ``updated_at`` keeps saying when
    the value itself last changed.
    """
    c = credentials_table.c
    rows = conn.execute(select(c.broker, c.field, c.ciphertext, c.key_id)).all()
    plain = [(r.broker, r.field, decrypt(ring.key(r.key_id, f"credential {r.broker} {r.field}"), r.broker, r.field, r.ciphertext)) for r in rows]
    kid = key_id(new)
    for broker, field, value in plain:
        conn.execute(
            update(credentials_table).where(c.broker == broker, c.field == field)
            .values(ciphertext=encrypt(new, broker, field, value), key_id=kid)
        )
    return len(plain)
