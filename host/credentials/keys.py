"""Where the credential key comes from: ``TRADEHOST_CREDENTIALS_KEY``, else ``state/credentials.key``.

The key file is created owner-only (0600) under a temporary name and linked
into place, so nobody ever reads a half-written key and of two processes
creating it at once one key wins. A key file that group or others may read is
refused. A key rotation first writes the new key beside the old one
(``credentials.key.next``), re-encrypts every value in one transaction, and
only then renames the new file over the old: whatever the moment a crash
comes, each stored value's key is still on disk (:func:`settle_rotation`
finishes or abandons an interrupted rotation).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from host.statedir import create_private_file, fsync_dir, write_private_temporary

from .crypto import CredentialError, format_key, key_id, new_key, parse_key

__all__ = [
    "ENV_KEY",
    "KeyRing",
    "create_key_file",
    "key_file",
    "load_keyring",
    "promote_staged",
    "read_key_file",
    "settle_rotation",
    "stage_key",
    "staged_key_file",
]

ENV_KEY = "TRADEHOST_CREDENTIALS_KEY"
KEY_FILE_NAME = "credentials.key"


@dataclass(frozen=True)
class KeyRing:
    """The key new values are encrypted under, and every key a stored value may need, by key id."""

    current: bytes = field(repr=False)
    source: str
    """Where the current key came from: ENV_KEY or the key file's path."""
    extra: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    """Keys are kept out of the repr: a traceback or a debugger printing the ring would show them."""

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    @property
    def from_environment(self) -> bool:
        return self.source == ENV_KEY

    def key(self, wanted: str, what: str) -> bytes:
        """The key with id ``wanted``; CredentialError naming ``what`` needs it and which key is at hand."""
        if wanted == self.current_id:
            return self.current
        if wanted in self.extra:
            return self.extra[wanted]
        raise CredentialError(
            f"{what} is encrypted under key {wanted}, but the key in use is {self.current_id} (from {self.source}); "
            "restore the key it was stored with, or set the value again"
        )


def key_file(state_dir: Path) -> Path:
    return state_dir / KEY_FILE_NAME


def staged_key_file(state_dir: Path) -> Path:
    return state_dir / (KEY_FILE_NAME + ".next")


def read_key_file(path: Path) -> bytes:
    """The key in ``path``; CredentialError if group or others may read it, or it holds no key."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise CredentialError(f"{path} may be read by group or others (mode {mode:04o}); run chmod 600 {path}")
    return parse_key(path.read_text(), str(path))


def create_key_file(path: Path) -> bytes:
    """Create ``path`` with a new key unless it exists; return the key it holds afterwards."""
    create_private_file(path, format_key(new_key()) + "\n")  # never replaces: a key someone else just created wins
    return read_key_file(path)


def stage_key(state_dir: Path, key: bytes) -> None:
    """Write ``key`` as the staged next key (replacing a stale staged one)."""
    temporary = write_private_temporary(state_dir, format_key(key) + "\n", ".credentials-key-")
    os.replace(temporary, staged_key_file(state_dir))
    fsync_dir(state_dir)


def promote_staged(state_dir: Path) -> None:
    """Make the staged key the key file, atomically."""
    os.replace(staged_key_file(state_dir), key_file(state_dir))
    fsync_dir(state_dir)


def discard_staged(state_dir: Path) -> None:
    staged_key_file(state_dir).unlink(missing_ok=True)


def settle_rotation(state_dir: Path, ids_in_use: set[str]) -> None:
    """Finish a rotation whose values were re-encrypted, or drop one that never committed (under the router lock)."""
    staged = staged_key_file(state_dir)
    if not staged.exists():
        return
    staged_id = key_id(read_key_file(staged))
    current = key_file(state_dir)
    current_id = key_id(read_key_file(current)) if current.exists() else None
    if staged_id not in ids_in_use:
        discard_staged(state_dir)
    elif current_id not in ids_in_use:
        promote_staged(state_dir)
    # Both in use cannot come from a rotation (it re-encrypts all values at once); keep both keys readable.


def load_keyring(state_dir: Path, environ: Mapping[str, str], *, create: bool) -> KeyRing | None:
    """The key ring from the environment or the key file; None if there is no key and ``create`` is False."""
    text = environ.get(ENV_KEY)
    if text is not None:
        return KeyRing(parse_key(text, ENV_KEY), ENV_KEY)
    path = key_file(state_dir)
    if path.exists():
        current = read_key_file(path)
    elif create:
        current = create_key_file(path)
    else:
        return None
    staged = staged_key_file(state_dir)
    extra = {}
    if staged.exists():
        key = read_key_file(staged)
        extra[key_id(key)] = key
    return KeyRing(current, str(path), extra)
