"""Finding the key: environment first, else an owner-only key file; interrupted rotations settle."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from host.config import HostConfig
from host.credentials.crypto import CredentialError, format_key, key_id, new_key
from host.credentials.keys import (
    ENV_KEY,
    create_key_file,
    key_file,
    load_keyring,
    promote_staged,
    read_key_file,
    settle_rotation,
    stage_key,
    staged_key_file,
)
from host.systemd import child_environment


def test_the_key_file_is_created_owner_only_once(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # what a careless shell would give every new file
    try:
        ring = load_keyring(tmp_path, {}, create=True)
    finally:
        os.umask(previous)
    assert ring is not None and ring.source == str(key_file(tmp_path))
    assert stat.S_IMODE(key_file(tmp_path).stat().st_mode) == 0o600
    again = load_keyring(tmp_path, {}, create=True)
    assert again is not None and again.current == ring.current
    assert [p.name for p in tmp_path.iterdir()] == ["credentials.key"]  # no temporary file left behind


def test_without_create_there_is_no_ring_and_no_file(tmp_path: Path) -> None:
    assert load_keyring(tmp_path, {}, create=False) is None
    assert not key_file(tmp_path).exists()


def test_racing_creators_all_read_the_one_key_that_won(tmp_path: Path) -> None:
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(create_key_file(key_file(tmp_path)))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and results[0] == read_key_file(key_file(tmp_path))


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_key_file_others_may_read_is_refused_in_one_line(tmp_path: Path, mode: int) -> None:
    path = key_file(tmp_path)
    path.write_text(format_key(new_key()) + "\n")
    path.chmod(mode)
    with pytest.raises(CredentialError) as caught:
        load_keyring(tmp_path, {}, create=False)
    message = str(caught.value)
    assert message == f"{path} may be read by group or others (mode {mode:04o}); run chmod 600 {path}"


def test_the_environment_wins_and_a_bad_value_is_not_echoed(tmp_path: Path) -> None:
    key = new_key()
    ring = load_keyring(tmp_path, {ENV_KEY: format_key(key)}, create=True)
    assert ring is not None and ring.current == key and ring.from_environment
    assert not key_file(tmp_path).exists()  # the environment's key needs no file
    with pytest.raises(CredentialError, match=f"^{ENV_KEY} does not hold a key") as caught:
        load_keyring(tmp_path, {ENV_KEY: "my-password-123"}, create=True)
    assert "my-password-123" not in str(caught.value)


def test_the_key_ring_never_shows_its_keys(tmp_path: Path) -> None:
    _, new = _files(tmp_path)
    ring = load_keyring(tmp_path, {}, create=False)
    assert ring is not None
    shown = repr(ring) + str(ring)
    for key in (ring.current, new):
        assert format_key(key) not in shown and repr(key) not in shown and str(list(key)) not in shown
    assert ring.current_id in shown or ring.source in shown


def test_a_value_under_an_unknown_key_names_both_keys(tmp_path: Path) -> None:
    ring = load_keyring(tmp_path, {}, create=True)
    assert ring is not None
    with pytest.raises(CredentialError, match=f"credential fx token is encrypted under key abc, but the key in use is {ring.current_id}"):
        ring.key("abc", "credential fx token")


def _files(state: Path) -> tuple[bytes, bytes]:
    create_key_file(key_file(state))
    old = read_key_file(key_file(state))
    new = new_key()
    stage_key(state, new)
    return old, new


def test_a_staged_key_is_readable_until_settled(tmp_path: Path) -> None:
    old, new = _files(tmp_path)
    ring = load_keyring(tmp_path, {}, create=False)
    assert ring is not None and ring.current == old and ring.key(key_id(new), "x") == new
    assert stat.S_IMODE(staged_key_file(tmp_path).stat().st_mode) == 0o600


def test_a_rotation_that_committed_is_finished(tmp_path: Path) -> None:
    _, new = _files(tmp_path)
    settle_rotation(tmp_path, {key_id(new)})
    assert read_key_file(key_file(tmp_path)) == new and not staged_key_file(tmp_path).exists()


def test_a_rotation_that_never_committed_is_dropped(tmp_path: Path) -> None:
    old, _ = _files(tmp_path)
    settle_rotation(tmp_path, {key_id(old)})
    assert read_key_file(key_file(tmp_path)) == old and not staged_key_file(tmp_path).exists()


def test_both_keys_in_use_keeps_both(tmp_path: Path) -> None:
    old, new = _files(tmp_path)
    settle_rotation(tmp_path, {key_id(old), key_id(new)})
    assert read_key_file(key_file(tmp_path)) == old and read_key_file(staged_key_file(tmp_path)) == new


def test_promoting_replaces_the_key_file(tmp_path: Path) -> None:
    _, new = _files(tmp_path)
    promote_staged(tmp_path)
    assert read_key_file(key_file(tmp_path)) == new


def test_the_environment_key_never_reaches_a_strategy_run() -> None:
    environ = {ENV_KEY: format_key(new_key()), "HARMLESS": "1"}
    assert child_environment(environ, HostConfig().scrub_patterns) == {"HARMLESS": "1"}
