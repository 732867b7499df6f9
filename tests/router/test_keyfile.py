"""Tests for host.router.keyfile: the owner-only run-token key file."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from host.errors import ConfigError
from host.router import keyfile
from host.router.keyfile import key_file_path, read_or_create_key
from host.trading.tokens import KEY_BYTES, RunTokens


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_file_path_defaults_to_the_state_dir(tmp_path: Path) -> None:
    assert key_file_path(tmp_path, None) == tmp_path / "router.key"
    assert key_file_path(tmp_path, tmp_path / "elsewhere.key") == tmp_path / "elsewhere.key"


def test_creates_an_owner_only_hex_key_once(tmp_path: Path) -> None:
    path = tmp_path / "router.key"
    key = read_or_create_key(path)
    assert len(key) == KEY_BYTES
    assert mode(path) == 0o600
    assert path.read_text() == key.hex() + "\n"
    assert read_or_create_key(path) == key
    assert mode(path) == 0o600


def test_the_key_is_new_each_time_a_file_is_created(tmp_path: Path) -> None:
    assert read_or_create_key(tmp_path / "a.key") != read_or_create_key(tmp_path / "b.key")


def test_created_owner_only_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        read_or_create_key(tmp_path / "router.key")
    finally:
        os.umask(old)
    assert mode(tmp_path / "router.key") == 0o600


def test_reads_a_key_written_by_someone_else(tmp_path: Path) -> None:
    path = tmp_path / "router.key"
    path.write_text("  " + "ab" * 32 + "\n\n")
    path.chmod(0o600)
    assert read_or_create_key(path) == bytes.fromhex("ab" * 32)
    assert path.read_text() == "  " + "ab" * 32 + "\n\n"  # left as it was


def test_both_sides_mint_and_verify_with_the_key(tmp_path: Path) -> None:
    path = tmp_path / "router.key"
    token = RunTokens(read_or_create_key(path)).mint("sma", 7)
    assert RunTokens(read_or_create_key(path)).verify(token) == ("sma", 7)


@pytest.mark.parametrize("perm", [0o640, 0o604, 0o644, 0o660, 0o610, 0o601])
def test_refuses_a_file_others_can_access(tmp_path: Path, perm: int) -> None:
    path = tmp_path / "router.key"
    path.write_text("ab" * 32)
    path.chmod(perm)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_or_create_key(path)


@pytest.mark.parametrize("text", ["not hex at all", "abc", "zz" * 32, "0x" + "ab" * 32])
def test_refuses_a_file_that_is_not_hex(tmp_path: Path, text: str) -> None:
    path = tmp_path / "router.key"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="hex key"):
        read_or_create_key(path)


@pytest.mark.parametrize("text", ["", "ab" * (KEY_BYTES // 2 - 1)])
def test_refuses_a_key_too_short(tmp_path: Path, text: str) -> None:
    path = tmp_path / "router.key"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="at least"):
        read_or_create_key(path)


def test_a_key_of_half_length_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "router.key"
    path.write_text("cd" * (KEY_BYTES // 2))
    path.chmod(0o600)
    assert read_or_create_key(path) == bytes.fromhex("cd" * (KEY_BYTES // 2))


def test_a_missing_directory_is_an_error_not_a_new_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_or_create_key(tmp_path / "missing" / "router.key")
    assert not (tmp_path / "missing").exists()


def test_a_reader_racing_the_creator_gets_the_same_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "router.key"
    created = threading.Event()
    release = threading.Event()
    real_new_key = keyfile.new_key

    def slow_new_key() -> bytes:
        created.set()  # the file exists (O_EXCL succeeded) but holds nothing yet
        release.wait(5)
        return real_new_key()

    monkeypatch.setattr(keyfile, "new_key", slow_new_key)
    result: dict[str, bytes] = {}
    creator = threading.Thread(target=lambda: result.setdefault("creator", read_or_create_key(path)))
    creator.start()
    reader = threading.Thread(target=lambda: result.setdefault("reader", read_or_create_key(path)))
    try:
        assert created.wait(5)
        reader.start()
        time.sleep(0.2)
        assert "reader" not in result  # it waits for the key rather than reading an empty file
    finally:
        release.set()
        creator.join(5)
        reader.join(5)
    assert result["reader"] == result["creator"]
