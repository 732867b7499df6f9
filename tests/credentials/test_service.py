"""Changes and reads with their audit rows: the chain stays intact and never holds a value."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from host.config import Config
from host.credentials import keys, service
from host.credentials.crypto import CredentialError, format_key, key_id, new_key
from host.credentials.keys import ENV_KEY, key_file, read_key_file, staged_key_file
from host.credentials.service import CredentialService, check_value
from host.router.audit import AuditLog, query, verify

VALUES = ("alpha-secret-0001", "beta-secret-0002", "gamma-secret-0003")


def make(database: Engine, config: Config, *, running: bool = False, environ: dict[str, str] | None = None) -> CredentialService:
    return CredentialService(database, AuditLog(database), config.host.state_dir, config.brokers, router_running=running, environ=environ or {})


def kinds(database: Engine) -> list[tuple[str, dict[str, Any]]]:
    return [(e.kind, e.detail) for e in reversed(query(database, limit=0))]


def leaked(database: Engine, config: Config, *values: str) -> list[str]:
    database.dispose()
    raw = b"".join(p.read_bytes() for p in Path(config.host.state_dir).glob("tradehost.db*"))
    return [v for v in values if v.encode() in raw]


def test_set_rotate_delete_are_audited_without_values(database: Engine, config: Config) -> None:
    svc = make(database, config)
    first = svc.apply({"action": "set", "broker": "fx", "field": "api_key", "value": VALUES[0]}, "req-1")
    assert first == {"action": "set", "broker": "fx", "field": "api_key", "key_id": first["key_id"], "replaced": False, "router": "not running"}
    svc.apply({"action": "rotate", "broker": "fx", "field": "api_key", "value": VALUES[1]})
    svc.apply({"action": "set", "broker": "fx", "field": "api_secret", "value": VALUES[2]})
    svc.apply({"action": "delete", "broker": "fx", "field": "api_secret"})
    rows = kinds(database)
    assert [k for k, _ in rows] == ["credentials.set", "credentials.rotate", "credentials.set", "credentials.delete"]
    assert rows[1][1] == {"action": "rotate", "broker": "fx", "field": "api_key", "key_id": first["key_id"], "replaced": True, "router": "not running"}
    assert query(database, limit=1)[0].kind == "credentials.delete" and query(database, kind="credentials.set")[-1].request_id == "req-1"
    assert verify(database).ok
    assert leaked(database, config, *VALUES) == []


@pytest.mark.parametrize(("body", "message"), [
    ({"action": "rotate", "broker": "fx", "field": "api_key", "value": "x"}, "broker fx has no api_key to rotate; use `tradehost credentials set fx api_key`"),
    ({"action": "delete", "broker": "fx", "field": "api_key"}, "broker fx has no stored api_key"),
    ({"action": "set", "broker": "nope", "field": "api_key", "value": "x"}, "no broker 'nope' in the configuration; configured: fx, paper"),
    ({"action": "set", "broker": "fx", "field": "pin", "value": "x"}, "broker fx (type vault) takes the credential fields api_key, api_secret; not 'pin'"),
    ({"action": "set", "broker": "paper", "field": "pin", "value": "x"}, "broker paper (type paper) takes no credentials; not 'pin'"),
    ({"action": "set", "broker": "fx", "field": "api_key", "value": ""}, "the value is empty"),
    ({"action": "set", "broker": "fx", "field": "api_key", "value": "nul\x00secret"}, "the value must be text"),
    ({"action": "set", "broker": "fx", "field": "api_key", "value": "bad\ud800surrogate"}, "the value is not valid Unicode text"),
    ({"action": "steal", "broker": "fx", "field": "api_key"}, "unknown credentials action 'steal'"),
])
def test_refusals_are_one_line_audited_and_never_quote_the_value(database: Engine, config: Config, body: dict[str, Any], message: str) -> None:
    svc = make(database, config)
    with pytest.raises(CredentialError) as caught:
        svc.apply(body, "req-9")
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    value = body.get("value") or "never-set"
    assert value not in str(caught.value) or value == "x"
    (kind, detail), = kinds(database)
    assert kind == "credentials.refused" and detail["error"].startswith(message) and detail["router"] == "not running"
    assert "value" not in detail and verify(database).ok


def test_in_the_router_a_refusal_waits_for_the_batch_commit(database: Engine, config: Config) -> None:
    audit = AuditLog(database)
    svc = CredentialService(database, audit, config.host.state_dir, config.brokers, router_running=True, environ={})
    with pytest.raises(CredentialError):
        svc.apply({"action": "delete", "broker": "fx", "field": "api_key"})
    assert audit.pending == 1 and kinds(database) == []
    audit.write()  # the engine's batch commit
    ok = svc.apply({"action": "set", "broker": "fx", "field": "api_key", "value": VALUES[0]})
    assert "router" not in ok
    assert [k for k, _ in kinds(database)] == ["credentials.refused", "credentials.set"] and verify(database).ok


def test_load_secrets_refuses_while_a_field_is_missing_naming_the_command(database: Engine, config: Config) -> None:
    svc = make(database, config)
    svc.apply({"action": "set", "broker": "fx", "field": "api_key", "value": VALUES[0]})
    reader = make(database, config, running=True)
    with pytest.raises(CredentialError, match=r"^broker fx needs the credential 'api_secret': run `tradehost credentials set fx api_secret`$"):
        reader.load_secrets()
    assert reader.audit.pending == 1  # credentials.missing, committed by the router's next commit


def test_load_secrets_reads_each_field_with_an_audit_row(database: Engine, config: Config) -> None:
    svc = make(database, config)
    for field, value in zip(("api_key", "api_secret"), VALUES):
        svc.apply({"action": "set", "broker": "fx", "field": field, "value": value})
    reader = make(database, config, running=True)
    assert reader.load_secrets() == {"paper": {}, "fx": {"api_key": VALUES[0], "api_secret": VALUES[1]}}
    reader.audit.write()
    reads = [d for k, d in kinds(database) if k == "credentials.read"]
    ring_id = key_id(read_key_file(key_file(config.host.state_dir)))
    assert reads == [{"broker": "fx", "field": "api_key", "key_id": ring_id}, {"broker": "fx", "field": "api_secret", "key_id": ring_id}]
    assert leaked(database, config, *VALUES) == []


def test_missing_several_fields_says_how_many(database: Engine, config: Config) -> None:
    with pytest.raises(CredentialError, match=r"run `tradehost credentials set fx api_key` \(also missing: fx api_secret\)$"):
        make(database, config, running=True).load_secrets()


def test_rotating_the_key_keeps_every_value_and_replaces_the_file(database: Engine, config: Config) -> None:
    svc = make(database, config)
    for field, value in zip(("api_key", "api_secret"), VALUES):
        svc.apply({"action": "set", "broker": "fx", "field": field, "value": value})
    old = read_key_file(key_file(config.host.state_dir))
    result = svc.apply({"action": "rotate_key"})
    new = read_key_file(key_file(config.host.state_dir))
    assert result == {"action": "rotate_key", "from": key_id(old), "to": key_id(new), "values": 2, "router": "not running"}
    assert new != old and not staged_key_file(config.host.state_dir).exists()
    assert make(database, config, running=True).load_secrets()["fx"] == {"api_key": VALUES[0], "api_secret": VALUES[1]}
    svc.apply({"action": "set", "broker": "fx", "field": "api_key", "value": VALUES[2]})  # the same service goes on with the new key
    assert {d.get("key_id") for k, d in kinds(database) if k == "credentials.set"} == {key_id(old), key_id(new)}
    assert verify(database).ok


def test_a_crash_after_the_commit_is_finished_at_the_next_start(database: Engine, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    svc = make(database, config)
    svc.apply({"action": "set", "broker": "fx", "field": "api_key", "value": VALUES[0]})
    svc.apply({"action": "set", "broker": "fx", "field": "api_secret", "value": VALUES[1]})

    def power_cut(state_dir: Path) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(service, "promote_staged", power_cut)
    with pytest.raises(CredentialError, match=r"every value is re-encrypted under key [0-9a-f]{16}, but .*credentials.key could not be replaced \(OSError\)"):
        svc.apply({"action": "rotate_key"})
    monkeypatch.setattr(service, "promote_staged", keys.promote_staged)
    assert staged_key_file(config.host.state_dir).exists()  # the values already need it
    assert make(database, config, running=True).load_secrets()["fx"] == {"api_key": VALUES[0], "api_secret": VALUES[1]}
    assert not staged_key_file(config.host.state_dir).exists()
    svc.apply({"action": "set", "broker": "fx", "field": "api_key", "value": VALUES[2]})  # the service that failed re-reads the key
    assert make(database, config, running=True).load_secrets()["fx"]["api_key"] == VALUES[2]


def test_a_commit_that_lands_but_reports_an_error_keeps_the_key_the_values_now_need(
    database: Engine, config: Config, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A COMMIT can fail after it was made durable (a dropped server connection, an fsync error): the new key
    # must stay on disk unless the database shows the values still under the old one.
    svc = make(database, config)
    svc.apply({"action": "set", "broker": "fx", "field": "api_key", "value": VALUES[0]})
    svc.apply({"action": "set", "broker": "fx", "field": "api_secret", "value": VALUES[1]})
    do_commit = database.dialect.do_commit

    def commit_then_fail(dbapi_connection: Any) -> None:
        do_commit(dbapi_connection)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(database.dialect, "do_commit", commit_then_fail)
    with pytest.raises(CredentialError, match="the state database refused the change: disk I/O error"):
        svc.apply({"action": "rotate_key"})
    monkeypatch.undo()
    assert make(database, config, running=True).load_secrets()["fx"] == {"api_key": VALUES[0], "api_secret": VALUES[1]}
    assert not staged_key_file(config.host.state_dir).exists()
    svc.apply({"action": "set", "broker": "fx", "field": "api_key", "value": VALUES[2]})  # the service that failed re-reads the key
    assert make(database, config, running=True).load_secrets()["fx"]["api_key"] == VALUES[2]


def test_a_rotation_that_cannot_read_a_value_changes_nothing(database: Engine, config: Config) -> None:
    svc = make(database, config)
    svc.apply({"action": "set", "broker": "fx", "field": "api_key", "value": VALUES[0]})
    before = read_key_file(key_file(config.host.state_dir))
    from host.credentials import store

    with database.begin() as conn:  # a value under a key that is gone
        store.put(conn, new_key(), "fx", "api_secret", VALUES[1], 1.0)
    with pytest.raises(CredentialError, match="credential fx api_secret is encrypted under key"):
        svc.apply({"action": "rotate_key"})
    assert read_key_file(key_file(config.host.state_dir)) == before and not staged_key_file(config.host.state_dir).exists()
    assert verify(database).ok


def test_with_the_key_in_the_environment_no_file_is_written_and_rotate_key_is_refused(database: Engine, config: Config) -> None:
    env = {ENV_KEY: format_key(new_key())}
    svc = make(database, config, environ=env)
    svc.apply({"action": "set", "broker": "fx", "field": "api_key", "value": VALUES[0]})
    assert not key_file(config.host.state_dir).exists()
    with pytest.raises(CredentialError, match=f"the key comes from {ENV_KEY}"):
        svc.apply({"action": "rotate_key"})
    svc.apply({"action": "set", "broker": "fx", "field": "api_secret", "value": VALUES[1]})
    assert make(database, config, running=True, environ=env).load_secrets()["fx"]["api_key"] == VALUES[0]
    with pytest.raises(CredentialError, match=f"is encrypted under key {key_id(bytes.fromhex(env[ENV_KEY]))}"):
        make(database, config, running=True, environ={ENV_KEY: format_key(new_key())}).load_secrets()


def test_a_lost_key_file_is_not_silently_replaced(database: Engine, config: Config) -> None:
    svc = make(database, config)
    svc.apply({"action": "set", "broker": "fx", "field": "api_key", "value": VALUES[0]})
    key_file(config.host.state_dir).unlink()
    with pytest.raises(CredentialError, match="credentials.key is missing; restore it"):
        make(database, config).apply({"action": "set", "broker": "fx", "field": "api_secret", "value": VALUES[1]})
    assert not key_file(config.host.state_dir).exists()


@pytest.mark.parametrize("value", ["x" * 8193, "", "nul\x00"])
def test_values_are_bounded_non_empty_text(value: str) -> None:
    with pytest.raises(CredentialError):
        check_value(value)


def test_a_multi_line_value_is_kept_as_it_is() -> None:
    assert check_value("-----BEGIN PRIVATE KEY-----\nAAA\n-----END PRIVATE KEY-----") == "-----BEGIN PRIVATE KEY-----\nAAA\n-----END PRIVATE KEY-----"
