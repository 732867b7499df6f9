"""Tests for host.logview: tail across rotation, follow across rotation and truncation."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from host.logpump import RotatingLog
from host.logview import follow, tail


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def deadline(seconds: float) -> Callable[[], bool]:
    end = time.monotonic() + seconds
    return lambda: time.monotonic() > end


def take(lines: Iterator[str], count: int) -> list[str]:
    return [next(lines) for _ in range(count)]


# -- tail -------------------------------------------------------------------------------


def test_tail_current_file_only(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    write_lines(log, [f"line {i}" for i in range(10)])
    write_lines(tmp_path / "s.log.1", ["older"])
    assert tail(log, 3) == ["line 7", "line 8", "line 9"]
    assert tail(log, 10) == [f"line {i}" for i in range(10)]
    assert tail(log, 0) == []


def test_tail_continues_into_backups_oldest_first(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    write_lines(tmp_path / "s.log.2", ["b2 0", "b2 1"])
    write_lines(tmp_path / "s.log.1", [f"b1 {i}" for i in range(4)])
    write_lines(log, ["cur 0", "cur 1"])
    assert tail(log, 4) == ["b1 2", "b1 3", "cur 0", "cur 1"]
    assert tail(log, 7) == ["b2 1", "b1 0", "b1 1", "b1 2", "b1 3", "cur 0", "cur 1"]
    assert tail(log, 100) == ["b2 0", "b2 1", "b1 0", "b1 1", "b1 2", "b1 3", "cur 0", "cur 1"]


def test_tail_across_real_rotation(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    writer = RotatingLog(log, max_bytes=200, backups=3)
    for i in range(30):
        writer.write(f"line {i:02d}\n")  # 8 bytes: 25 per file
    writer.close()
    assert len(log.read_text().splitlines()) == 5
    assert tail(log, 12) == [f"line {i:02d}" for i in range(18, 30)]


def test_tail_of_a_large_file_reads_blocks_from_the_end(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    with open(log, "w", encoding="utf-8") as file:
        for i in range(300_000):  # ~12 MB, several 64 KiB blocks per request below
            file.write(f"{i:08d} {'é' * 16}\n")
    started = time.monotonic()
    got = tail(log, 5000)
    assert time.monotonic() - started < 1.0
    assert got == [f"{i:08d} {'é' * 16}" for i in range(295_000, 300_000)]


def test_tail_keeps_a_final_line_without_newline(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    log.write_bytes(b"a\nb\npartial")
    assert tail(log, 2) == ["b", "partial"]


def test_tail_missing_log_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        tail(tmp_path / "nope.log", 10)


def test_tail_missing_current_file_next_to_a_backup_counts_as_empty(tmp_path: Path) -> None:
    write_lines(tmp_path / "s.log.1", ["x", "y"])
    assert tail(tmp_path / "s.log", 5) == ["x", "y"]


# -- follow -----------------------------------------------------------------------------


def test_follow_starts_at_the_end_when_called(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    write_lines(log, ["old"])
    lines = follow(log, poll=0.01, stop=deadline(3))
    with open(log, "a") as file:
        file.write("new 1\nnew ")
        file.flush()
        file.write("2\n")
    assert take(lines, 2) == ["new 1", "new 2"]


def test_follow_survives_rotation(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    writer = RotatingLog(log, max_bytes=100, backups=2)
    writer.write("before\n")
    writer.flush()
    lines = follow(log, poll=0.01, stop=deadline(5))
    writer.write("a" * 60 + "\n")
    writer.flush()
    assert next(lines) == "a" * 60
    # A line still unread when its file is rotated away is delivered before the new file's.
    writer.write("b" * 20 + "\n")
    writer.flush()
    writer.write("c" * 60 + "\n")  # rotates: s.log becomes s.log.1
    writer.flush()
    assert (tmp_path / "s.log.1").exists()
    assert take(lines, 2) == ["b" * 20, "c" * 60]
    writer.write("d" * 60 + "\n")  # rotates again
    writer.flush()
    assert next(lines) == "d" * 60
    assert (tmp_path / "s.log.2").exists()
    writer.close()


def test_follow_after_truncation_reads_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    write_lines(log, ["x" * 50])
    lines = follow(log, poll=0.01, stop=deadline(3))
    with open(log, "a") as file:
        file.write("appended\n")
    assert next(lines) == "appended"
    with open(log, "r+") as file:
        file.truncate(0)
        file.write("fresh\n")
    assert next(lines) == "fresh"


def test_follow_waits_for_a_missing_file(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    lines = follow(log, poll=0.01, stop=deadline(3))
    write_lines(log, ["first", "second"])
    assert take(lines, 2) == ["first", "second"]


def test_follow_stops_when_told(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    write_lines(log, ["old"])
    started = time.monotonic()
    assert list(follow(log, poll=0.01, stop=deadline(0.2))) == []
    assert time.monotonic() - started < 1.0


def test_follow_closes_its_file_when_closed(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    write_lines(log, ["old"])
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    lines = follow(log, poll=0.01, stop=deadline(2))
    with open(log, "a") as file:
        file.write("x\n")
    assert next(lines) == "x"
    lines.close()  # type: ignore[attr-defined]
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before
