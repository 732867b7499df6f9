"""Tests for host.watcher: diff_signatures and FolderWatcher.poll with an injected clock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from host.watcher import Changes, FolderWatcher, diff_signatures, signature

DEBOUNCE = 0.25  # a binary fraction, so that now - then compares exactly
BASE_NS = 1_700_000_000 * 10**9


def write(path: Path, text: str, mtime_s: int) -> None:
    """Write ``text`` in place (same inode if it exists) with an explicit mtime."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    ns = BASE_NS + mtime_s * 10**9
    os.utime(path, ns=(ns, ns))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "strategies"
    path.mkdir()
    return path


def settle(watcher: FolderWatcher, start: float) -> Changes:
    """Poll once at ``start`` and once a debounce later; return the second result."""
    first = watcher.poll(start)
    assert not first, f"reported before the debounce: {first}"
    return watcher.poll(start + DEBOUNCE)


# ------------------------------------------------------------ diff_signatures


def test_diff_signatures() -> None:
    old = {"a": (("a.py", 1, 1, 1),), "b": (("b.py", 1, 1, 1),), "c": (("c.py", 1, 1, 1),)}
    new = {"b": (("b.py", 2, 1, 1),), "c": (("c.py", 1, 1, 1),), "d": (("d.py", 1, 1, 1),)}
    changes = diff_signatures(old, new)
    assert changes == Changes(added=frozenset({"d"}), changed=frozenset({"b"}), removed=frozenset({"a"}))
    assert changes


def test_diff_of_equal_snapshots_is_empty_and_falsy() -> None:
    snap = {"a": (("a.py", 1, 2, 3),)}
    assert diff_signatures(snap, dict(snap)) == Changes()
    assert not Changes()
    assert diff_signatures({}, {}) == Changes()


# ------------------------------------------------------------ signature


def test_signature_of_a_package_covers_all_its_files_but_pycache(folder: Path) -> None:
    write(folder / "pkg" / "__init__.py", "x = 1\n", 1)
    write(folder / "pkg" / "util.py", "y = 2\n", 1)
    write(folder / "pkg" / "sub" / "deep.py", "z = 3\n", 1)
    write(folder / "pkg" / "__pycache__" / "junk.py", "", 1)
    watcher = FolderWatcher(folder)
    sources = watcher.prime()
    paths = {Path(entry[0]).name for entry in signature(sources["pkg"])}
    assert paths == {"__init__.py", "util.py", "deep.py"}


# ------------------------------------------------------------ FolderWatcher.poll


def test_prime_reports_nothing_and_returns_sources(folder: Path) -> None:
    write(folder / "a.py", "def run(): pass\n", 1)
    watcher = FolderWatcher(folder, debounce=DEBOUNCE)
    sources = watcher.prime()
    assert set(sources) == {"a"}
    assert not watcher.poll(0.0)
    assert not watcher.poll(10.0)


def test_new_file_is_reported_only_after_debounce(folder: Path) -> None:
    watcher = FolderWatcher(folder, debounce=DEBOUNCE)
    watcher.prime()
    write(folder / "new.py", "def run(): pass\n", 1)
    assert not watcher.poll(100.0)
    assert not watcher.poll(100.0 + DEBOUNCE - 0.01)
    assert watcher.poll(100.0 + DEBOUNCE) == Changes(added=frozenset({"new"}))
    assert "new" in watcher.sources
    # reported once only
    assert not watcher.poll(200.0)


def test_file_still_being_written_restarts_the_debounce(folder: Path) -> None:
    watcher = FolderWatcher(folder, debounce=DEBOUNCE)
    watcher.prime()
    write(folder / "new.py", "def run(", 1)
    assert not watcher.poll(0.0)
    write(folder / "new.py", "def run(): pass\n", 2)
    assert not watcher.poll(0.125)
    assert not watcher.poll(0.25)  # a debounce after first sight, but not after the last change
    assert watcher.poll(0.375) == Changes(added=frozenset({"new"}))


def test_change_is_reported_after_debounce(folder: Path) -> None:
    write(folder / "a.py", "def run(): pass\n", 1)
    watcher = FolderWatcher(folder, debounce=DEBOUNCE)
    watcher.prime()
    write(folder / "a.py", "def run(): return 1\n", 2)
    assert settle(watcher, 5.0) == Changes(changed=frozenset({"a"}))
    assert not watcher.poll(50.0)


def test_mtime_only_change_counts(folder: Path) -> None:
    write(folder / "a.py", "def run(): pass\n", 1)
    watcher = FolderWatcher(folder, debounce=DEBOUNCE)
    watcher.prime()
    ns = BASE_NS + 5 * 10**9
    os.utime(folder / "a.py", ns=(ns, ns))
    assert settle(watcher, 0.0) == Changes(changed=frozenset({"a"}))


def test_removal_is_reported_after_debounce(folder: Path) -> None:
    write(folder / "a.py", "def run(): pass\n", 1)
    write(folder / "b.py", "def run(): pass\n", 1)
    watcher = FolderWatcher(folder, debounce=DEBOUNCE)
    watcher.prime()
    (folder / "a.py").unlink()
    assert settle(watcher, 0.0) == Changes(removed=frozenset({"a"}))
    assert set(watcher.sources) == {"b"}
    assert not watcher.poll(9.0)


def test_file_added_and_removed_within_debounce_is_never_reported(folder: Path) -> None:
    watcher = FolderWatcher(folder, debounce=DEBOUNCE)
    watcher.prime()
    write(folder / "tmp.py", "", 1)
    assert not watcher.poll(0.0)
    (folder / "tmp.py").unlink()
    assert not watcher.poll(0.125)
    assert not watcher.poll(1.0)
    assert not watcher.poll(2.0)


def test_package_file_edit_is_a_change_of_the_package(folder: Path) -> None:
    write(folder / "pkg" / "__init__.py", "from .util import helper\ndef run(): helper()\n", 1)
    write(folder / "pkg" / "util.py", "def helper(): pass\n", 1)
    watcher = FolderWatcher(folder, debounce=DEBOUNCE)
    assert set(watcher.prime()) == {"pkg"}
    write(folder / "pkg" / "util.py", "def helper(): return 42\n", 2)
    assert settle(watcher, 0.0) == Changes(changed=frozenset({"pkg"}))


def test_new_module_inside_a_package_is_a_change(folder: Path) -> None:
    write(folder / "pkg" / "__init__.py", "def run(): pass\n", 1)
    watcher = FolderWatcher(folder, debounce=DEBOUNCE)
    watcher.prime()
    write(folder / "pkg" / "extra.py", "", 1)
    assert settle(watcher, 0.0) == Changes(changed=frozenset({"pkg"}))


def test_change_back_to_settled_content_before_debounce_is_not_reported(folder: Path) -> None:
    path = folder / "a.py"
    write(path, "def run(): pass\n", 1)
    watcher = FolderWatcher(folder, debounce=DEBOUNCE)
    watcher.prime()
    inode = path.stat().st_ino
    write(path, "def run(): 1234\n", 2)  # same size, new mtime
    assert not watcher.poll(0.0)
    write(path, "def run(): pass\n", 1)  # back to exactly the settled signature
    assert path.stat().st_ino == inode
    assert not watcher.poll(0.125)
    assert not watcher.poll(0.125 + DEBOUNCE)
    assert not watcher.poll(5.0)


def test_change_back_then_change_again_starts_a_new_debounce(folder: Path) -> None:
    path = folder / "a.py"
    write(path, "def run(): pass\n", 1)
    watcher = FolderWatcher(folder, debounce=DEBOUNCE)
    watcher.prime()
    write(path, "def run(): 1234\n", 2)
    assert not watcher.poll(0.0)
    write(path, "def run(): pass\n", 1)
    assert not watcher.poll(0.125)
    write(path, "def run(): 1234\n", 2)  # same signature as the first edit, but its timer was dropped
    assert not watcher.poll(0.25)
    assert watcher.poll(0.5) == Changes(changed=frozenset({"a"}))


def test_private_and_non_python_files_are_ignored(folder: Path) -> None:
    watcher = FolderWatcher(folder, debounce=DEBOUNCE)
    watcher.prime()
    write(folder / "_private.py", "def run(): pass\n", 1)
    write(folder / ".hidden.py", "", 1)
    write(folder / "notes.txt", "", 1)
    (folder / "nopkg").mkdir()
    write(folder / "nopkg" / "mod.py", "", 1)
    assert not watcher.poll(0.0)
    assert not watcher.poll(1.0)
    assert watcher.sources == {}


def test_several_changes_settle_independently(folder: Path) -> None:
    write(folder / "a.py", "", 1)
    write(folder / "b.py", "", 1)
    watcher = FolderWatcher(folder, debounce=DEBOUNCE)
    watcher.prime()
    write(folder / "a.py", "x", 2)
    assert not watcher.poll(0.0)
    (folder / "b.py").unlink()
    write(folder / "c.py", "", 1)
    assert not watcher.poll(0.125)
    assert watcher.poll(0.25) == Changes(changed=frozenset({"a"}))
    assert not watcher.poll(0.3125)
    assert watcher.poll(0.375) == Changes(added=frozenset({"c"}), removed=frozenset({"b"}))


def test_removing_a_duplicate_definition_counts_as_a_change(folder: Path) -> None:
    write(folder / "dup" / "__init__.py", "def run(): pass\n", 1)
    write(folder / "dup.py", "def run(): pass\n", 1)
    watcher = FolderWatcher(folder, debounce=DEBOUNCE)
    sources = watcher.prime()
    assert sources["dup"].conflict == folder / "dup.py"
    (folder / "dup.py").unlink()
    assert settle(watcher, 0.0) == Changes(changed=frozenset({"dup"}))


def test_missing_folder_is_empty_and_its_removal_removes_everything(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    watcher = FolderWatcher(folder, debounce=DEBOUNCE)
    assert watcher.prime() == {}
    folder.mkdir()
    write(folder / "a.py", "", 1)
    assert settle(watcher, 0.0) == Changes(added=frozenset({"a"}))
    (folder / "a.py").unlink()
    folder.rmdir()
    assert settle(watcher, 1.0) == Changes(removed=frozenset({"a"}))
