"""The credentials table: values stored encrypted, bound to their row, readable after a key rotation."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from host.config import Config
from host.credentials import store
from host.credentials.crypto import CredentialError, new_key
from host.credentials.keys import KeyRing, load_keyring


@pytest.fixture
def ring(config: Config) -> KeyRing:
    ring = load_keyring(config.host.state_dir, {}, create=True)
    assert ring is not None
    return ring


@pytest.fixture
def engine(database: Engine) -> Engine:
    store.create_table(database)
    return database


def test_put_read_list_and_forget(engine: Engine, ring: KeyRing) -> None:
    with engine.begin() as conn:
        first = store.put(conn, ring.current, "fx", "api_key", "k-value", 100.0)
        store.put(conn, ring.current, "fx", "api_secret", "s-value", 101.0)
        again = store.put(conn, ring.current, "fx", "api_key", "k-value-2", 102.0)
    assert (first.created_at, again.created_at, again.updated_at) == (100.0, 100.0, 102.0)
    with engine.connect() as conn:
        assert store.read(conn, ring, "fx", "api_key") == ("k-value-2", ring.current_id)
        assert store.read(conn, ring, "fx", "missing") is None
        assert [(s.broker, s.field, s.key_id) for s in store.listing(conn)] == [("fx", "api_key", ring.current_id), ("fx", "api_secret", ring.current_id)]
        assert store.key_ids(conn) == {ring.current_id}
    with engine.begin() as conn:
        assert store.forget(conn, "fx", "api_secret") and not store.forget(conn, "fx", "api_secret")
        assert [s.field for s in store.listing(conn, "fx")] == ["api_key"]


def test_the_table_never_holds_the_value(engine: Engine, ring: KeyRing, config: Config) -> None:
    with engine.begin() as conn:
        store.put(conn, ring.current, "fx", "api_key", "plain-text-secret-1234", 1.0)
    engine.dispose()
    raw = b"".join(p.read_bytes() for p in Path(config.host.state_dir).glob("tradehost.db*"))
    assert b"plain-text-secret-1234" not in raw and b"credentials" in raw


def test_a_ciphertext_copied_to_another_row_does_not_decrypt(engine: Engine, ring: KeyRing) -> None:
    with engine.begin() as conn:
        store.put(conn, ring.current, "fx", "api_key", "the-key", 1.0)
        store.put(conn, ring.current, "fx", "api_secret", "the-secret", 1.0)
        conn.execute(text("UPDATE credentials SET ciphertext = (SELECT ciphertext FROM credentials WHERE field = 'api_key') WHERE field = 'api_secret'"))
    with engine.connect() as conn, pytest.raises(CredentialError, match="credential fx api_secret does not decrypt"):
        store.read(conn, ring, "fx", "api_secret")


def test_an_edited_ciphertext_does_not_decrypt(engine: Engine, ring: KeyRing) -> None:
    with engine.begin() as conn:
        store.put(conn, ring.current, "fx", "api_key", "the-key", 1.0)
        conn.execute(text("UPDATE credentials SET ciphertext = substr(ciphertext, 1, 20) || CASE substr(ciphertext, 21, 1) WHEN 'A' THEN 'B' ELSE 'A' END || substr(ciphertext, 22)"))
    with engine.connect() as conn, pytest.raises(CredentialError, match="credential fx api_key"):
        store.read(conn, ring, "fx", "api_key")


def test_a_value_stored_under_another_key_names_it(engine: Engine, ring: KeyRing) -> None:
    other = new_key()
    with engine.begin() as conn:
        store.put(conn, other, "fx", "api_key", "the-key", 1.0)
    with engine.connect() as conn, pytest.raises(CredentialError, match="is encrypted under key [0-9a-f]{16}, but the key in use is"):
        store.read(conn, ring, "fx", "api_key")


def test_reencrypting_keeps_every_value_and_drops_the_old_key(engine: Engine, ring: KeyRing) -> None:
    values = {("fx", f"field{i}"): f"value-{i}" for i in range(5)} | {("other", "token"): "tok"}
    with engine.begin() as conn:
        for (broker, field), value in values.items():
            store.put(conn, ring.current, broker, field, value, 5.0)
    new = new_key()
    with engine.begin() as conn:
        assert store.reencrypt(conn, ring, new) == len(values)
    rotated = KeyRing(new, "test")
    with engine.connect() as conn:
        assert {(b, f): store.read(conn, rotated, b, f) for b, f in values} == {k: (v, rotated.current_id) for k, v in values.items()}
        assert all(s.updated_at == 5.0 for s in store.listing(conn))  # the values themselves did not change
        with pytest.raises(CredentialError, match="encrypted under key"):
            store.read(conn, ring, "fx", "field0")


def test_reencrypting_changes_nothing_when_one_value_cannot_be_read(engine: Engine, ring: KeyRing) -> None:
    with engine.begin() as conn:
        store.put(conn, ring.current, "fx", "a", "one", 1.0)
        store.put(conn, new_key(), "fx", "b", "two", 1.0)
    with pytest.raises(CredentialError, match="credential fx b"), engine.begin() as conn:
        store.reencrypt(conn, ring, new_key())
    with engine.connect() as conn:
        assert store.read(conn, ring, "fx", "a") == ("one", ring.current_id)
