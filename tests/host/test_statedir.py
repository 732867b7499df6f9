"""Tests for host.statedir: permissions, the supervisor lock and private sockets."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from host.errors import ControlError
from host.statedir import SupervisorLock, bind_private, create_private_file, issue_token, prepare_state_dir, read_token, supervisor_pid, token_matches

ROOT = Path(__file__).resolve().parents[2]

TRY_ACQUIRE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from host.statedir import SupervisorLock
    print("acquired" if SupervisorLock(Path(sys.argv[1])).acquire() else "refused", flush=True)
    """
)

HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from host.statedir import SupervisorLock
    assert SupervisorLock(Path(sys.argv[1])).acquire()
    print("held", flush=True)
    time.sleep(30)
    """
)


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def try_acquire_elsewhere(path: Path) -> str:
    result = subprocess.run(python(TRY_ACQUIRE, str(path)), cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ------------------------------------------------------------ prepare_state_dir


def test_prepare_state_dir_creates_owner_only_folders(tmp_path: Path) -> None:
    state = tmp_path / "deep" / "state"
    old = os.umask(0o022)
    try:
        prepare_state_dir(state)
    finally:
        os.umask(old)
    assert mode(state) == 0o700
    assert mode(state / "logs") == 0o700


def test_prepare_state_dir_tightens_existing_folders(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "logs").mkdir(parents=True)
    os.chmod(state, 0o755)
    os.chmod(state / "logs", 0o777)
    (state / "keep.txt").write_text("x")
    prepare_state_dir(state)
    assert mode(state) == 0o700
    assert mode(state / "logs") == 0o700
    assert (state / "keep.txt").read_text() == "x"


# ------------------------------------------------------------ SupervisorLock


def test_lock_is_exclusive_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.lock"
    lock = SupervisorLock(path)
    assert lock.acquire()
    try:
        assert mode(path) == 0o600
        assert try_acquire_elsewhere(path) == "refused"
        assert supervisor_pid(path) == os.getpid()
        assert path.read_text() == f"{os.getpid()}\n"
    finally:
        lock.release()
    assert supervisor_pid(path) is None
    assert try_acquire_elsewhere(path) == "acquired"  # and that process exited, releasing it


def test_second_lock_object_in_the_same_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.lock"
    first, second = SupervisorLock(path), SupervisorLock(path)
    assert first.acquire()
    try:
        assert not second.acquire()
    finally:
        first.release()
    assert second.acquire()
    second.release()
    second.release()  # releasing twice is harmless


def test_supervisor_pid_of_missing_or_unheld_file(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.lock"
    assert supervisor_pid(path) is None
    path.write_text("12345\n")  # a stale file from a dead supervisor
    assert supervisor_pid(path) is None


def test_lock_of_a_killed_holder_is_free(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.lock"
    holder = subprocess.Popen(python(HOLD, str(path)), cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert supervisor_pid(path) == holder.pid
        assert not SupervisorLock(path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        holder.stdout.close()
    assert holder.returncode == -signal.SIGKILL
    assert supervisor_pid(path) is None
    lock = SupervisorLock(path)
    assert lock.acquire()
    try:
        assert supervisor_pid(path) == os.getpid()
    finally:
        lock.release()


# ------------------------------------------------------------ bind_private


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(dir="/tmp", prefix="sd"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_bind_private_replaces_a_leftover_and_is_owner_only(short_dir: Path) -> None:
    path = short_dir / "control.sock"
    path.write_text("left over by a killed supervisor")
    context = zmq.Context()
    sock = context.socket(zmq.REP)
    try:
        bind_private(sock, path)
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert mode(path) == 0o600
    finally:
        sock.close(linger=0)
        context.term()


def test_create_private_file_creates_once_owner_only_and_never_replaces(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    assert create_private_file(path, "first\n") is True
    assert create_private_file(path, "second\n") is False
    assert path.read_text() == "first\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]  # no temporary left behind


def test_a_token_is_new_at_each_issue_owner_only_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "control.token"
    first = issue_token(path)
    assert len(first) == 64 and read_token(path) == first
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    second = issue_token(path)
    assert second != first and read_token(path) == second
    assert [p.name for p in tmp_path.iterdir()] == ["control.token"], "no temporary file is left behind"


def test_an_unreadable_token_is_a_typed_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match=r"cannot read the token .*missing\.token") as caught:
        read_token(tmp_path / "missing.token")
    assert caught.value.code == "UNAUTHORIZED"


@pytest.mark.parametrize(("given", "expected", "matches"), [
    ("abc", "abc", True), ("abd", "abc", False), ("", "abc", False), (None, "abc", False), (7, "abc", False),
    ("abc", None, False), ("", "", False), ("é", "abc", False),
])
def test_token_matches_only_the_expected_string(given: object, expected: str | None, matches: bool) -> None:
    assert token_matches(given, expected) is matches
