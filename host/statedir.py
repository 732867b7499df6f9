"""The state directory: owner-only permissions and the one-supervisor lock."""

from __future__ import annotations

import fcntl
import hmac
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import zmq

from host.errors import ControlError

__all__ = [
    "SupervisorLock", "bind_private", "create_private_file", "fsync_dir", "issue_token", "prepare_state_dir", "read_token", "supervisor_pid",
    "token_matches", "write_private_temporary",
]


def prepare_state_dir(state_dir: Path) -> None:
    """Create ``state/`` and ``state/logs`` readable and writable by the owner only."""
    for folder in (state_dir, state_dir / "logs"):
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)


class SupervisorLock:
    """An exclusive ``flock`` on ``state/supervisor.lock`` held for the supervisor's lifetime.

    The kernel drops it when the process dies, even by SIGKILL, so a stale
    lock file never blocks a restart.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, attempts: int = 20) -> bool:
        """Take the lock; False if another supervisor holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        for attempt in range(attempts):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # `supervisor_pid` in a CLI process holds a shared lock for a
                # few microseconds; only a lock that persists means a supervisor.
                if attempt == attempts - 1:
                    os.close(fd)
                    return False
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def supervisor_pid(path: Path) -> int | None:
    """Return the pid of the live supervisor holding ``path``, or None if nobody holds it.

    -1 means a supervisor holds the lock but has not written its pid yet.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 64).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def bind_private(sock: zmq.Socket[Any], path: Path) -> None:
    """Bind an ``ipc://`` socket that only the owner can connect to."""
    try:
        path.unlink()  # left over from a supervisor that was killed; we hold the lock
    except FileNotFoundError:
        pass
    sock.bind(f"ipc://{path}")
    os.chmod(path, 0o600)


def fsync_dir(folder: Path) -> None:
    """Make the folder's entries (a new or renamed file) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private_temporary(folder: Path, text: str, prefix: str) -> str:
    """A new owner-only (0600) file in ``folder`` holding ``text``, flushed to disk; returns its path."""
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=prefix)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(temporary)
        raise
    return temporary


def create_private_file(path: Path, text: str) -> bool:
    """Create ``path`` (0600) holding ``text`` unless it exists; True if this call created it.

    Written under a temporary name and linked into place: a reader never sees a
    half-written file, and of two processes creating it at once one wins and
    neither replaces the other's.
    """
    temporary = write_private_temporary(path.parent, text, f".{path.name}-")
    try:
        os.link(temporary, path)
        created = True
    except FileExistsError:
        created = False
    finally:
        os.unlink(temporary)
    fsync_dir(path.parent)
    return created



def issue_token(path: Path) -> str:
    """A new random token written owner-only to ``path`` (replacing the last one); returns it.

    The sockets in state/ take any process of the host's user; a request that
    carries a token only the operator can read (the run sandbox keeps strategies
    out of state/) is the operator's.
    """
    token = secrets.token_hex(32)
    os.replace(write_private_temporary(path.parent, token, f".{path.name}-"), path)
    return token


def read_token(path: Path) -> str:
    """The token in ``path``; ControlError (UNAUTHORIZED) if it cannot be read."""
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ControlError(f"cannot read the token {path}: {exc.strerror or exc}", code="UNAUTHORIZED") from None


def token_matches(given: object, expected: str | None) -> bool:
    """Whether a request's token is the expected one (constant time; never for a missing or non-string token)."""
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())  # type: ignore[union-attr]
