"""The run-token key for a router that ``tradehost run`` does not start: one owner-only file both sides read."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from host.errors import ConfigError
from host.trading.tokens import KEY_BYTES, new_key

__all__ = ["key_file_path", "read_or_create_key"]


def key_file_path(state_dir: Path, configured: Path | None) -> Path:
    return configured if configured is not None else state_dir / "router.key"


def read_or_create_key(path: Path) -> bytes:
    """Read the hex key in ``path``, creating it (mode 0600) with a new key if it does not exist."""
    if not path.exists():
        # Written under a temporary name and linked into place: a reader never sees a half-written key,
        # and of two processes creating it at once, one key wins and both read it.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".router-key-")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(new_key().hex() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(temporary)
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"{path} is readable by others; run chmod 600 {path}")
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"{path} does not hold a hex key") from None
    if len(key) < KEY_BYTES // 2:
        raise ConfigError(f"{path} holds a key of {len(key)} bytes; at least {KEY_BYTES // 2} are needed")
    return key
