"""Notice strategy files being added, changed or removed, with a settle time.

Polling file signatures (mtime, size, inode) every half second costs a few
hundred ``stat`` calls a second at most, works on every filesystem (inotify
misses changes on network and some container mounts) and needs no library.
A change is reported only after the signature has stayed the same for the
debounce period, so an editor's half-written save is never registered.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .strategy_file import StrategySource, discover

__all__ = ["Changes", "FolderWatcher", "Signature", "diff_signatures", "signature"]

Signature = tuple[tuple[str, int, int, int], ...]


@dataclass(frozen=True)
class Changes:
    added: frozenset[str] = frozenset()
    changed: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def signature(source: StrategySource) -> Signature:
    """Fingerprint a strategy's files: one entry per ``.py`` file (all of a package's)."""
    if source.is_package:
        files = sorted(source.path.parent.rglob("*.py"))
    else:
        files = [source.path]
    if source.conflict is not None:
        files.append(source.conflict)  # removing the duplicate must count as a change
    entries = []
    for path in files:
        if "__pycache__" in path.parts:
            continue
        try:
            st = path.stat()
        except OSError:
            continue
        entries.append((str(path), st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(entries)


def diff_signatures(old: dict[str, Signature], new: dict[str, Signature]) -> Changes:
    """Compare two snapshots of name → signature."""
    return Changes(
        added=frozenset(new.keys() - old.keys()),
        changed=frozenset(name for name in new.keys() & old.keys() if new[name] != old[name]),
        removed=frozenset(old.keys() - new.keys()),
    )


@dataclass
class FolderWatcher:
    """Polls a strategies folder; ``poll`` returns the changes that have settled."""

    folder: Path
    debounce: float = 0.3
    _settled: dict[str, Signature] = field(default_factory=dict)
    _pending: dict[str, tuple[Signature | None, float]] = field(default_factory=dict)
    sources: dict[str, StrategySource] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Signature]:
        self.sources = discover(self.folder) if os.path.isdir(self.folder) else {}
        return {name: signature(source) for name, source in self.sources.items()}

    def prime(self) -> dict[str, StrategySource]:
        """Take the first snapshot without reporting it; return what is there."""
        self._settled = self.snapshot()
        self._pending.clear()
        return dict(self.sources)

    def poll(self, now: float) -> Changes:
        current = self.snapshot()
        raw = diff_signatures(self._settled, current)
        touched = raw.added | raw.changed | raw.removed
        for name in list(self._pending):
            if name not in touched:
                del self._pending[name]  # changed back to the settled version
        ready: set[str] = set()
        for name in touched:
            sig = current.get(name)
            previous = self._pending.get(name)
            if previous is None or previous[0] != sig:
                self._pending[name] = (sig, now)
            elif now - previous[1] >= self.debounce:
                ready.add(name)
        if not ready:
            return Changes()
        settled = dict(self._settled)
        for name in ready:
            del self._pending[name]
            if name in current:
                settled[name] = current[name]
            else:
                settled.pop(name, None)
        changes = diff_signatures({n: self._settled[n] for n in ready if n in self._settled}, {n: settled[n] for n in ready if n in settled})
        self._settled = settled
        return changes
