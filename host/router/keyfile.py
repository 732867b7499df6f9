"""The run-token key for a router that ``tradehost run`` does not start: one owner-only file both sides read."""

from __future__ import annotations

from pathlib import Path

from host.errors import ConfigError
from host.statedir import create_private_file
from host.trading.tokens import KEY_BYTES, new_key

__all__ = ["key_file_path", "read_or_create_key"]


def key_file_path(state_dir: Path, configured: Path | None) -> Path:
    return configured if configured is not None else state_dir / "router.key"


def read_or_create_key(path: Path) -> bytes:
    """Read the hex key in ``path``, creating it (mode 0600) with a new key if it does not exist."""
    if not path.exists():
        create_private_file(path, new_key().hex() + "\n")
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
