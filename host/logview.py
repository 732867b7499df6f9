"""Read strategy logs written by :mod:`host.logpump` (``tradehost logs NAME [-f] [-n N]``).

Lines are returned without their trailing newline, decoded as UTF-8 with
invalid bytes replaced.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

__all__ = ["follow", "tail"]

_BLOCK = 64 * 1024


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace")


def _last_lines(path: Path, count: int) -> list[bytes]:
    """The last ``count`` lines of one file, reading backwards in blocks."""
    with open(path, "rb") as file:
        pos = file.seek(0, os.SEEK_END)
        blocks: list[bytes] = []
        newlines = 0
        # count + 1 newlines guarantee `count` whole lines even when the file ends with "\n".
        while pos > 0 and newlines <= count:
            size = min(_BLOCK, pos)
            pos -= size
            file.seek(pos)
            block = file.read(size)
            blocks.append(block)
            newlines += block.count(b"\n")
    lines = b"".join(reversed(blocks)).split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if pos > 0:
        lines.pop(0)  # starts mid-line
    return lines[-count:]


def tail(path: Path, lines: int) -> list[str]:
    """Return the last ``lines`` lines of NAME.log, oldest first.

    If NAME.log has fewer lines, the rest come from NAME.log.1, NAME.log.2 … in
    turn. Raises FileNotFoundError when neither NAME.log nor NAME.log.1 exists;
    a missing NAME.log next to a NAME.log.1 (the instant of a rotation) counts
    as empty.
    """
    path = Path(path)
    if not path.exists() and not path.with_name(f"{path.name}.1").exists():
        raise FileNotFoundError(f"no log file {path}")
    result: list[bytes] = []
    index = 0
    current = path
    while len(result) < lines:
        try:
            result[:0] = _last_lines(current, lines - len(result))
        except FileNotFoundError:
            if index > 0:
                break
        index += 1
        current = path.with_name(f"{path.name}.{index}")
    return [_decode(line) for line in result]


def follow(
    path: Path,
    *,
    poll: float = 0.2,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[str]:
    """Yield lines appended to ``path`` from now on, until ``stop()`` is true.

    The starting point is the end of the file when follow() is called (not at
    the first next()); no file is held open until iteration starts. A rotation
    (new inode) or truncation (size shrinks) is followed: the rest of the old
    file is read, then the new file from its start. A file that does not exist
    yet is waited for and read from its start. Checks happen every ``poll``
    seconds, so a file rotated twice within one poll is skipped, as with
    ``tail -F``.
    """
    path = Path(path)
    try:
        st = os.stat(path)
        start: tuple[int, int, int] | None = (st.st_dev, st.st_ino, st.st_size)
    except FileNotFoundError:
        start = None
    return _follow(path, start, poll, stop)


def _follow(path: Path, start: tuple[int, int, int] | None, poll: float, stop: Callable[[], bool]) -> Iterator[str]:
    file: BinaryIO | None = None
    partial = b""
    try:
        while not stop():
            if file is None:
                try:
                    file = open(path, "rb")
                except FileNotFoundError:
                    time.sleep(poll)
                    continue
                st = os.fstat(file.fileno())
                if start is not None and (st.st_dev, st.st_ino) == start[:2] and st.st_size >= start[2]:
                    file.seek(start[2])  # the file follow() was called on: skip what was there then
                start = None
            data = file.read(_BLOCK)
            if data:
                *complete, partial = (partial + data).split(b"\n")
                for line in complete:
                    yield _decode(line)
                continue
            change = _change(path, file)
            if change is None:
                time.sleep(poll)
                continue
            # The writer is done with the old contents: finish them, then start over.
            if change == "rotated":
                while data := file.read(_BLOCK):
                    *complete, partial = (partial + data).split(b"\n")
                    for line in complete:
                        yield _decode(line)
            if partial:
                yield _decode(partial)
                partial = b""
            if change == "rotated":
                file.close()
                file = None
            else:
                file.seek(0)
    finally:
        if file is not None:
            file.close()


def _change(path: Path, file: BinaryIO) -> str | None:
    """Return "rotated" if path is now another file, "truncated" if it shrank, else None."""
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return None  # mid-rotation; the new file appears shortly
    mine = os.fstat(file.fileno())
    if (current.st_dev, current.st_ino) != (mine.st_dev, mine.st_ino):
        return "rotated"
    if current.st_size < file.tell():
        return "truncated"
    return None
