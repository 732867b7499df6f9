"""The CLI's own parts: reading a value, the list rows, the result lines, no value on the command line."""

from __future__ import annotations

import io

import pytest

from host import cli
from host.config import Config
from host.credentials.cli import credential_rows, read_value, render_result, render_rows
from host.credentials.crypto import CredentialError
from host.credentials.store import StoredCredential


@pytest.mark.parametrize(("given", "value"), [("tok-123\n", "tok-123"), ("tok-123\r\n", "tok-123"), ("tok-123", "tok-123"), (" spaced \n", " spaced ")])
def test_stdin_gives_the_value_without_its_newline(given: str, value: str) -> None:
    assert read_value("fx", "api_key", io.StringIO(given)) == value


def test_a_piped_pem_key_keeps_its_lines() -> None:
    pem = "-----BEGIN EC PRIVATE KEY-----\r\nMHcCAQEEIB\r\n-----END EC PRIVATE KEY-----\r\n"
    assert read_value("fx", "api_key", io.StringIO(pem)) == "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----"


@pytest.mark.parametrize(("given", "message"), [("", "the value is empty"), ("\n", "the value is empty"), ("\x00\n", "NUL"), ("x" * 9000, "at most 8192")])
def test_stdin_that_cannot_be_stored_is_refused_without_truncating(given: str, message: str) -> None:
    with pytest.raises(CredentialError, match=message):
        read_value("fx", "api_key", io.StringIO(given))


def test_a_value_on_the_command_line_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["credentials", "set", "fx", "api_key", "secret-on-argv"])
    assert caught.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


def test_rows_show_set_missing_and_unused_fields_in_configuration_order(config: Config) -> None:
    stored = [StoredCredential("fx", "api_secret", "k1", 10.0, 20.0), StoredCredential("gone", "token", "k1", 1.0, 1.0)]
    rows = credential_rows(config.brokers, stored)
    assert [(r["broker"], r["field"], r["status"], r["key_id"]) for r in rows] == [
        ("fx", "api_key", "missing", None), ("fx", "api_secret", "set", "k1"), ("gone", "token", "unused", "k1"),
    ]
    assert rows[1]["updated_at"] == "1970-01-01T00:00:20+00:00"
    assert credential_rows(config.brokers, stored, "paper") == []
    table = render_rows(rows).splitlines()
    assert table[0].split() == ["BROKER", "FIELD", "STATUS", "UPDATED", "(UTC)", "KEY"]
    assert table[2].split() == ["fx", "api_secret", "set", "1970-01-01", "00:00:20", "k1"]
    assert render_rows([]) == "no broker needs credentials"


def test_result_lines_say_when_the_router_reads_the_change() -> None:
    offline = {"action": "set", "broker": "fx", "field": "api_key", "key_id": "k1", "replaced": False, "router": "not running"}
    assert render_result(offline) == "fx api_key stored (key k1); the router reads it when it starts"
    running = {"action": "rotate", "broker": "fx", "field": "api_key", "key_id": "k1", "replaced": True}
    assert render_result(running) == "fx api_key replaced (key k1); the router uses it from its next start"
    assert render_result({"action": "delete", "broker": "fx", "field": "api_key"}) == "fx api_key deleted; the running router keeps it until it restarts"
    assert render_result({"action": "rotate_key", "from": "k1", "to": "k2", "values": 3}) == "3 value(s) re-encrypted under key k2 (was k1); the key file is replaced"


@pytest.mark.parametrize(("argv", "message"), [
    (["credentials", "rotate"], "credentials rotate needs BROKER and FIELD (or rotate --key)"),
    (["credentials", "rotate", "--key", "fx", "api_key"], "rotate --key re-encrypts every value; it takes no BROKER or FIELD"),
])
def test_incomplete_arguments_are_usage_errors(config: Config, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*argv, "--config", str(config.path)]) == 2
    assert capsys.readouterr().err.startswith(f"tradehost: error: {message}")
    assert not (config.host.state_dir / "router.lock").exists()  # nothing was attempted
