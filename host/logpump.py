"""Collect every run's stdout and stderr into one size-rotated log file per strategy.

A single daemon thread (:class:`LogPump`) multiplexes all run pipes with
``selectors`` and is the only writer of every ``state/logs/NAME.log``, so lines
from concurrent processes never interleave inside a line. Each record is one
line::

    2026-11-21T20:33:00.123Z run=42 out | text

Streams are ``out`` (stdout), ``err`` (stderr, which also carries the child's
``logging`` records) and ``sys`` (lines the supervisor adds with
:meth:`LogPump.note`).

Lines longer than ``max_line`` bytes (UTF-8, before decoding) are cut into
pieces of at most ``max_line`` bytes, never inside a character; every piece
that is continued on the next record ends with :data:`CONTINUED` (``" …"``).
"""

from __future__ import annotations

import collections
import logging
import os
import re
import selectors
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

__all__ = ["CONTINUED", "LogPump", "RotatingLog", "format_line"]

_log = logging.getLogger("tradehost.logpump")

CONTINUED = " …"
"""Suffix of a piece of an over-long line that continues in the next record."""

_CHUNK = 64 * 1024
_FLUSH_INTERVAL = 0.1  # seconds; bounds how stale `tail -f` can be under a flood
_CLOSE_READ_LIMIT = 16 * _CHUNK  # per pipe: what close() still drains from a live writer
_FINISHED_KEPT = 4096  # drained runs remembered for wait_drained()

# Everything str.splitlines() breaks on, plus the other C0/C1 controls; tab is kept.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def _prefix(when: float, run_id: int, stream: str) -> str:
    secs, millis = divmod(round(when * 1000), 1000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    return f"{stamp}.{millis:03d}Z run={run_id} {stream} | "


def format_line(when: float, run_id: int, stream: str, text: str) -> str:
    """Return one log record: UTC timestamp (ms), run id, stream, text and a newline.

    Control characters other than tab are written as escapes (``\\r``, ``\\x1b``,
    ``\\u2028`` …) so that one record is always exactly one line.
    """
    return _prefix(when, run_id, stream) + _CONTROL.sub(_escape, text) + "\n"


class RotatingLog:
    """One strategy's log file, rotated by size: NAME.log, NAME.log.1 … NAME.log.N.

    The file is opened (mode 0o600, parent directories created) on the first
    write and written through a buffer; call :meth:`flush` to make data visible.
    Not thread-safe: the pump thread is its only user.
    """

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        if backups < 0:
            raise ValueError(f"backups must be >= 0, got {backups}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._file: BinaryIO | None = None
        self._size = 0

    def write(self, data: str) -> None:
        """Append ``data``; rotate first if it would push the file past max_bytes."""
        raw = data.encode("utf-8", errors="replace")
        if self._file is None:
            self._open()
        # A write larger than max_bytes goes whole into a fresh file rather than being split.
        if self._size > 0 and self._size + len(raw) > self.max_bytes:
            self._rotate()
            self._open()
        assert self._file is not None
        self._file.write(raw)
        self._size += len(raw)

    def flush(self) -> None:
        """Push buffered data to the file."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Flush and close the file; a later write reopens it."""
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            try:
                os.fchmod(fd, 0o600)  # an existing file may predate us; logs can hold secrets
            except OSError:
                pass
            self._size = os.fstat(fd).st_size
            self._file = os.fdopen(fd, "ab", buffering=_CHUNK)
        except BaseException:
            os.close(fd)
            raise

    def _rotate(self) -> None:
        self.close()
        if self.backups == 0:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        else:
            for index in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._size = 0


@dataclass(eq=False)
class _Run:
    name: str
    run_id: int
    open_pipes: int = 2
    cut: bool = False  # a pipe was closed by us rather than at EOF
    drained: bool = False
    done: threading.Event = field(default_factory=threading.Event)


@dataclass(eq=False)
class _Pipe:
    fd: int
    run: _Run
    stream: str
    partial: bytearray = field(default_factory=bytearray)
    closed: bool = False


class LogPump:
    """A daemon thread that reads run pipes and writes whole lines to each strategy's RotatingLog.

    All public methods are thread-safe; they queue work for the thread. Commands
    given before :meth:`start` are carried out once it runs.
    """

    def __init__(
        self,
        logs_dir: Path,
        *,
        max_bytes: int = 10 * 1024 * 1024,
        backups: int = 5,
        max_line: int = 64 * 1024,
    ) -> None:
        if max_bytes <= 0 or backups < 0 or max_line <= 0:
            raise ValueError("max_bytes and max_line must be positive and backups >= 0")
        self.logs_dir = Path(logs_dir)
        self.max_bytes = max_bytes
        self.backups = backups
        self.max_line = max_line
        self._lock = threading.Lock()
        self._commands: collections.deque[Callable[[], None]] = collections.deque()
        self._runs: dict[int, _Run] = {}  # added and not yet drained
        self._finished: collections.OrderedDict[int, _Run] = collections.OrderedDict()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stopping = False
        # Owned by the pump thread (or by close() when the thread never started).
        self._selector = selectors.DefaultSelector()
        self._logs: dict[str, RotatingLog] = {}
        self._dirty: set[str] = set()
        self._failing: set[str] = set()
        self._last_flush = time.monotonic()
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
            os.set_inheritable(fd, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)

    # -- public API --------------------------------------------------------------------

    def start(self) -> None:
        """Start the pump thread."""
        with self._lock:
            if self._closed:
                raise RuntimeError("LogPump is closed")
            if self._thread is not None:
                raise RuntimeError("LogPump already started")
            self._thread = threading.Thread(target=self._main, name="tradehost-logpump", daemon=True)
            self._thread.start()

    def add(self, name: str, run_id: int, stdout_fd: int, stderr_fd: int) -> None:
        """Take ownership of a run's pipe read ends and log them until EOF.

        The fds are made non-blocking and closed at EOF (or by :meth:`close`).
        If this raises, the fds were not taken and still belong to the caller.
        """
        _check_name(name)
        if stdout_fd == stderr_fd:
            raise ValueError("stdout_fd and stderr_fd must be different pipes")
        with self._lock:
            if self._closed:
                raise RuntimeError("LogPump is closed")
            if run_id in self._runs:
                raise ValueError(f"run {run_id} is already being pumped")
            for fd in (stdout_fd, stderr_fd):
                os.set_blocking(fd, False)
                os.set_inheritable(fd, False)
            run = _Run(name, run_id)
            self._runs[run_id] = run
            self._finished.pop(run_id, None)
            pipes = (_Pipe(stdout_fd, run, "out"), _Pipe(stderr_fd, run, "err"))
            self._commands.append(lambda: self._register(pipes))
            self._wake()

    def note(self, name: str, run_id: int, text: str) -> None:
        """Queue a supervisor-side line (stream ``sys``) for the strategy's log; ignored after close()."""
        _check_name(name)
        when = time.time()
        with self._lock:
            if self._closed:
                _log.debug("note for %s after close dropped: %s", name, text)
                return
            self._commands.append(lambda: self._emit(name, format_line(when, run_id, "sys", text)))
            self._wake()

    def close_strategy(self, name: str) -> None:
        """Flush and close the strategy's log file (reopened if it is written again)."""
        with self._lock:
            if self._closed:
                return
            self._commands.append(lambda: self._close_log(name))
            self._wake()

    def wait_drained(self, run_id: int, timeout: float) -> bool:
        """Block until both pipes of ``run_id`` hit EOF and their lines were flushed to the file.

        Returns True if drained within ``timeout`` seconds. A run id that was never
        added (or drained long ago) counts as drained.
        """
        with self._lock:
            run = self._runs.get(run_id) or self._finished.get(run_id)
        if run is None:
            return True
        run.done.wait(timeout)
        return run.drained

    def close(self) -> None:
        """Stop the thread, write out what the pipes still hold and partial lines, close everything."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._commands.append(self._request_stop)
            self._wake()
        if thread is not None:
            thread.join()
        else:
            self._run_commands()
            self._shutdown()

    # -- pump thread ---------------------------------------------------------------------

    def _wake(self) -> None:
        # Called with the lock held, so _shutdown cannot close (and the OS reuse) the fd meanwhile.
        if self._wake_w < 0:
            return
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # a full wake pipe already guarantees a wake-up

    def _main(self) -> None:
        try:
            while not self._stopping:
                try:
                    self._iterate()
                except Exception:
                    _log.exception("log pump iteration failed; continuing")
                    time.sleep(_FLUSH_INTERVAL)  # don't spin if the failure repeats
        finally:
            try:
                self._shutdown()
            except Exception:
                _log.exception("log pump shutdown failed")

    def _iterate(self) -> None:
        events = self._selector.select(0 if self._dirty else None)
        if not events and self._dirty:
            # Idle: make everything visible, then block until there is work.
            self._flush_all()
            return
        woken = False
        ready: list[_Pipe] = []
        for key, _ in events:
            if key.data is None:
                woken = True
            else:
                ready.append(key.data)
        if woken:
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
            self._run_commands()
            if self._stopping:
                return
        # One chunk per ready pipe per iteration, so a flooding run cannot starve the others.
        for pipe in ready:
            if not pipe.closed:
                self._read_once(pipe)
        if self._dirty and time.monotonic() - self._last_flush >= _FLUSH_INTERVAL:
            self._flush_all()

    def _run_commands(self) -> None:
        while True:
            with self._lock:
                if not self._commands:
                    return
                command = self._commands.popleft()
            try:
                command()
            except Exception:
                _log.exception("log pump command failed")

    def _request_stop(self) -> None:
        self._stopping = True

    def _register(self, pipes: tuple[_Pipe, ...]) -> None:
        for pipe in pipes:
            try:
                self._selector.register(pipe.fd, selectors.EVENT_READ, pipe)
            except (OSError, ValueError, KeyError) as exc:
                _log.error("cannot watch %s pipe of run %d (%s): %s", pipe.stream, pipe.run.run_id, pipe.run.name, exc)
                self._close_pipe(pipe, eof=False, unregister=False)

    def _read_once(self, pipe: _Pipe) -> bool:
        """Read one chunk; return False when nothing more is available now."""
        try:
            chunk = os.read(pipe.fd, _CHUNK)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            _log.error("reading %s of run %d (%s) failed: %s", pipe.stream, pipe.run.run_id, pipe.run.name, exc)
            chunk = b""
        if not chunk:
            self._close_pipe(pipe)
            return False
        self._consume(pipe, chunk, final=False)
        return True

    def _consume(self, pipe: _Pipe, chunk: bytes, *, final: bool) -> None:
        buf = pipe.partial
        buf += chunk
        limit = self.max_line
        pieces: list[str] = []
        start = 0
        end = buf.find(b"\n")
        while end >= 0:
            self._split(buf[start:end], pieces, limit)
            start = end + 1
            end = buf.find(b"\n", start)
        # Bound the partial line: emit full pieces of it now, they are known to continue.
        while len(buf) - start > limit:
            cut = _char_boundary(buf, start + limit, start)
            pieces.append(buf[start:cut].decode("utf-8", errors="replace") + CONTINUED)
            start = cut
        if final and start < len(buf):
            self._split(buf[start:], pieces, limit)
            start = len(buf)
        del buf[:start]
        if pieces:
            prefix = _prefix(time.time(), pipe.run.run_id, pipe.stream)
            name = pipe.run.name
            for text in pieces:
                self._emit(name, prefix + _CONTROL.sub(_escape, text) + "\n")

    @staticmethod
    def _split(line: bytes | bytearray, pieces: list[str], limit: int) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]  # CRLF line ending
        start = 0
        while len(line) - start > limit:
            cut = _char_boundary(line, start + limit, start)
            pieces.append(line[start:cut].decode("utf-8", errors="replace") + CONTINUED)
            start = cut
        pieces.append(line[start:].decode("utf-8", errors="replace"))

    def _close_pipe(self, pipe: _Pipe, *, eof: bool = True, unregister: bool = True) -> None:
        if pipe.closed:
            return
        pipe.closed = True
        if not eof:
            pipe.run.cut = True
        if pipe.partial:
            self._consume(pipe, b"", final=True)
        if unregister:
            try:
                self._selector.unregister(pipe.fd)
            except (KeyError, ValueError):
                pass
        try:
            os.close(pipe.fd)
        except OSError:
            pass
        run = pipe.run
        run.open_pipes -= 1
        if run.open_pipes == 0:
            self._flush_log(run.name)
            self._finish(run, drained=not run.cut)

    def _finish(self, run: _Run, *, drained: bool) -> None:
        with self._lock:
            if self._runs.get(run.run_id) is run:
                del self._runs[run.run_id]
                self._finished[run.run_id] = run
                while len(self._finished) > _FINISHED_KEPT:
                    self._finished.popitem(last=False)
        run.drained = drained
        run.done.set()

    def _emit(self, name: str, line: str) -> None:
        log = self._logs.get(name)
        if log is None:
            log = self._logs[name] = RotatingLog(self.logs_dir / f"{name}.log", self.max_bytes, self.backups)
        try:
            log.write(line)
        except OSError as exc:
            self._report(name, exc)
        else:
            self._failing.discard(name)
        self._dirty.add(name)

    def _report(self, name: str, exc: OSError) -> None:
        # Once per failure streak, so a full disk does not flood the supervisor's own log.
        if name not in self._failing:
            self._failing.add(name)
            _log.error("writing log of %s failed: %s", name, exc)

    def _flush_log(self, name: str) -> None:
        log = self._logs.get(name)
        self._dirty.discard(name)
        if log is not None:
            try:
                log.flush()
            except OSError as exc:
                self._report(name, exc)

    def _flush_all(self) -> None:
        for name in list(self._dirty):
            self._flush_log(name)
        self._last_flush = time.monotonic()

    def _close_log(self, name: str) -> None:
        log = self._logs.pop(name, None)
        self._dirty.discard(name)
        self._failing.discard(name)
        if log is not None:
            try:
                log.close()
            except OSError as exc:
                _log.error("closing log of %s failed: %s", name, exc)

    def _shutdown(self) -> None:
        pipes = [key.data for key in list(self._selector.get_map().values()) if key.data is not None]
        for pipe in pipes:
            # Take what a still-running writer already put in the pipe, but not forever.
            taken = 0
            while not pipe.closed and taken < _CLOSE_READ_LIMIT and self._read_once(pipe):
                taken += _CHUNK
            self._close_pipe(pipe, eof=False)
        with self._lock:
            unfinished = list(self._runs.values())
        for run in unfinished:
            self._finish(run, drained=False)
        for name in list(self._logs):
            self._close_log(name)
        self._selector.close()
        with self._lock:
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._wake_r = self._wake_w = -1


def _char_boundary(data: bytes | bytearray, cut: int, start: int) -> int:
    """Move ``cut`` back (at most 3 bytes) so it does not split a UTF-8 character."""
    for candidate in range(cut, max(start, cut - 4), -1):
        if data[candidate] & 0xC0 != 0x80:
            return candidate
    return cut


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"invalid strategy name for a log file: {name!r}")
