"""Tests for host.logpump: real pipes, real child processes, rotation, flood fairness."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from host.logpump import CONTINUED, LogPump, RotatingLog, format_line

LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) run=(\d+) (out|err|sys) \| (.*)$")


def records(log: Path) -> list[tuple[int, str, str]]:
    """(run_id, stream, text) of every line in log and its backups, oldest first."""
    files = sorted(log.parent.glob(log.name + ".*"), key=lambda p: -int(p.suffix[1:]))
    if log.exists():
        files.append(log)
    result = []
    for file in files:
        for line in file.read_text(encoding="utf-8").split("\n")[:-1]:
            match = LINE.match(line)
            assert match, f"malformed line {line[:200]!r}"
            result.append((int(match[2]), match[3], match[4]))
    return result


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@pytest.fixture
def pump(tmp_path: Path) -> Iterator[LogPump]:
    pump = LogPump(tmp_path / "logs")
    pump.start()
    yield pump
    pump.close()


def make_pipes() -> tuple[int, int, int, int]:
    """(stdout_r, stdout_w, stderr_r, stderr_w)"""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    return out_r, out_w, err_r, err_w


# -- format_line ------------------------------------------------------------------------


def test_format_line_utc_millis_run_and_stream() -> None:
    when = dt.datetime(2026, 11, 21, 20, 33, 0, 123000, tzinfo=dt.timezone.utc).timestamp()
    assert format_line(when, 42, "out", "hello world") == "2026-11-21T20:33:00.123Z run=42 out | hello world\n"
    assert format_line(when + 0.0004, 7, "err", "x").startswith("2026-11-21T20:33:00.123Z run=7 err | ")


def test_format_line_escapes_control_characters_but_keeps_tabs() -> None:
    line = format_line(0.0, 1, "out", "a\tb\rc\nd\x1b[0m\x00\u2028\x85e")
    assert line == "1970-01-01T00:00:00.000Z run=1 out | a\tb\\rc\\nd\\x1b[0m\\x00\\u2028\\x85e\n"
    assert len(line.splitlines()) == 1


# -- RotatingLog ------------------------------------------------------------------------


def test_rotating_log_rotates_before_exceeding_and_keeps_backups(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "s.log"
    log = RotatingLog(path, max_bytes=100, backups=2)
    for i in range(50):
        log.write(f"line {i:03d}\n")  # 9 bytes
    log.close()
    names = sorted(p.name for p in path.parent.iterdir())
    assert names == ["s.log", "s.log.1", "s.log.2"]
    for p in path.parent.iterdir():
        assert p.stat().st_size <= 100
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    kept = "".join((path.parent / n).read_text() for n in ["s.log.2", "s.log.1", "s.log"]).splitlines()
    assert kept == [f"line {i:03d}" for i in range(50 - len(kept), 50)]
    assert (path.parent / "s.log.2").stat().st_size == 99  # 11 lines fit, the 12th rotates


def test_rotating_log_single_huge_write_goes_to_one_file(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    log = RotatingLog(path, max_bytes=100, backups=1)
    log.write("small\n")
    log.write("x" * 500 + "\n")
    log.write("after\n")
    log.close()
    assert (tmp_path / "s.log.1").read_text() == "x" * 500 + "\n"
    assert path.read_text() == "after\n"


def test_rotating_log_appends_to_existing_file_and_counts_its_size(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    path.write_text("o" * 95 + "\n")
    log = RotatingLog(path, max_bytes=100, backups=1)
    log.write("new line\n")
    log.close()
    assert (tmp_path / "s.log.1").read_text() == "o" * 95 + "\n"
    assert path.read_text() == "new line\n"


def test_rotating_log_without_backups_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    log = RotatingLog(path, max_bytes=10, backups=0)
    for word in ["aaaa\n", "bbbb\n", "cccc\n"]:
        log.write(word)
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["s.log"]
    assert path.read_text() == "cccc\n"


# -- LogPump with os.pipe() -------------------------------------------------------------


def test_lines_split_across_reads_arrive_whole_with_run_and_stream(pump: LogPump) -> None:
    out_r, out_w, err_r, err_w = make_pipes()
    pump.add("alpha", 42, out_r, err_r)
    for piece in [b"hel", b"lo\nwor", b"ld\r\n", b"caf\xc3\xa9 \xff\n"]:
        os.write(out_w, piece)
        time.sleep(0.01)
    os.write(err_w, b"Traceback (most recent call last):\nValueError: boom\n")
    os.close(out_w)
    os.close(err_w)
    assert pump.wait_drained(42, 5)
    got = records(pump.logs_dir / "alpha.log")
    assert [r for r in got if r[1] == "out"] == [(42, "out", "hello"), (42, "out", "world"), (42, "out", "caf\u00e9 \ufffd")]
    assert [r for r in got if r[1] == "err"] == [
        (42, "err", "Traceback (most recent call last):"),
        (42, "err", "ValueError: boom"),
    ]


def test_note_goes_to_the_strategy_log_after_drained_output(pump: LogPump) -> None:
    out_r, out_w, err_r, err_w = make_pipes()
    pump.add("alpha", 7, out_r, err_r)
    os.write(out_w, b"working\n")
    os.close(out_w)
    os.close(err_w)
    assert pump.wait_drained(7, 5)
    pump.note("alpha", 7, "run 7 ended: exit code 1 (ValueError: boom)")
    log = pump.logs_dir / "alpha.log"
    assert wait_until(lambda: len(records(log)) == 2, 2)
    assert records(log) == [(7, "out", "working"), (7, "sys", "run 7 ended: exit code 1 (ValueError: boom)")]


def test_wait_drained_needs_eof_on_both_pipes(pump: LogPump) -> None:
    out_r, out_w, err_r, err_w = make_pipes()
    pump.add("alpha", 3, out_r, err_r)
    os.close(out_w)
    started = time.monotonic()
    assert not pump.wait_drained(3, 0.2)
    assert time.monotonic() - started >= 0.19
    os.write(err_w, b"last words\n")
    os.close(err_w)
    assert pump.wait_drained(3, 5)
    # Drained means written to the file, not only read from the pipe.
    assert records(pump.logs_dir / "alpha.log") == [(3, "err", "last words")]
    assert pump.wait_drained(999, 0)  # never added: nothing to wait for


def test_close_flushes_partial_last_line_and_reads_what_is_left(tmp_path: Path) -> None:
    pump = LogPump(tmp_path)
    pump.start()
    out_r, out_w, err_r, err_w = make_pipes()
    pump.add("alpha", 1, out_r, err_r)
    os.write(out_w, b"complete\nno newline yet")
    os.write(err_w, b"err partial")
    pump.close()
    got = records(tmp_path / "alpha.log")
    assert [r for r in got if r[1] == "out"] == [(1, "out", "complete"), (1, "out", "no newline yet")]
    assert [r for r in got if r[1] == "err"] == [(1, "err", "err partial")]
    assert not pump.wait_drained(1, 0)  # cut off by close(), not at EOF
    with pytest.raises(OSError):
        os.fstat(out_r)  # the pump owned and closed the read end
    os.close(out_w)
    os.close(err_w)


def test_close_without_start_still_writes_queued_work(tmp_path: Path) -> None:
    pump = LogPump(tmp_path)
    out_r, out_w, err_r, err_w = make_pipes()
    pump.add("alpha", 1, out_r, err_r)
    os.write(out_w, b"a\nb")
    os.close(out_w)
    os.close(err_w)
    pump.note("alpha", 1, "noted")
    pump.close()
    assert sorted(records(tmp_path / "alpha.log")) == [(1, "out", "a"), (1, "out", "b"), (1, "sys", "noted")]
    assert pump.wait_drained(1, 0)


def test_add_validates_and_refuses_after_close(tmp_path: Path) -> None:
    pump = LogPump(tmp_path)
    out_r, out_w, err_r, err_w = make_pipes()
    try:
        with pytest.raises(ValueError):
            pump.add("../escape", 1, out_r, err_r)
        with pytest.raises(ValueError):
            pump.add("alpha", 1, out_r, out_r)
        pump.close()
        with pytest.raises(RuntimeError):
            pump.add("alpha", 1, out_r, err_r)
        pump.note("alpha", 1, "ignored after close")  # must not raise
        os.fstat(out_r)  # a refused add leaves the fds with the caller
    finally:
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)


def test_long_line_is_cut_at_max_line_with_continuation_marks(tmp_path: Path) -> None:
    max_line = 64 * 1024
    pump = LogPump(tmp_path, max_line=max_line)
    pump.start()
    out_r, out_w, err_r, err_w = make_pipes()
    pump.add("big", 1, out_r, err_r)
    huge = (b"0123456789" * 500_000)  # 5 MB, no newline until the end
    writer = threading.Thread(target=lambda: (write_all(out_w, huge + b"\nafter\n"), os.close(out_w)))
    writer.start()
    os.close(err_w)
    writer.join(10)
    assert pump.wait_drained(1, 10)
    pump.close()
    texts = [text for _, _, text in records(tmp_path / "big.log")]
    assert texts[-1] == "after"
    pieces = texts[:-1]
    assert len(pieces) == -(-len(huge) // max_line)
    assert all(p.endswith(CONTINUED) and len(p) == max_line + len(CONTINUED) for p in pieces[:-1])
    assert not pieces[-1].endswith(CONTINUED)
    assert "".join(p.removesuffix(CONTINUED) for p in pieces) == huge.decode()


def test_cut_never_splits_a_utf8_character(tmp_path: Path) -> None:
    pump = LogPump(tmp_path, max_line=10)
    out_r, out_w, err_r, err_w = make_pipes()
    pump.add("utf", 1, out_r, err_r)
    os.write(out_w, ("é" * 12 + "\n" + "x" * 10 + "\n").encode())
    os.close(out_w)
    os.close(err_w)
    pump.start()
    assert pump.wait_drained(1, 5)
    pump.close()
    texts = [text for _, _, text in records(tmp_path / "utf.log")]
    assert texts == ["ééééé" + CONTINUED, "ééééé" + CONTINUED, "éé", "x" * 10]


def test_pump_rotation_keeps_backups_files(tmp_path: Path) -> None:
    pump = LogPump(tmp_path, max_bytes=10_000, backups=3)
    pump.start()
    out_r, out_w, err_r, err_w = make_pipes()
    pump.add("rot", 5, out_r, err_r)
    write_all(out_w, b"".join(b"line %05d\n" % i for i in range(3000)))
    os.close(out_w)
    os.close(err_w)
    assert pump.wait_drained(5, 5)
    pump.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rot.log", "rot.log.1", "rot.log.2", "rot.log.3"]
    assert all(p.stat().st_size <= 10_000 for p in tmp_path.iterdir())
    texts = [text for _, _, text in records(tmp_path / "rot.log")]
    first = int(texts[0].split()[1])
    assert texts == [f"line {i:05d}" for i in range(first, 3000)]


def test_many_runs_at_once(pump: LogPump) -> None:
    writers = []
    for run_id in range(150):
        out_r, out_w, err_r, err_w = make_pipes()
        pump.add(f"s{run_id % 10}", run_id, out_r, err_r)
        writers.append((run_id, out_w, err_w))
    for run_id, out_w, err_w in writers:
        os.write(out_w, b"hello from %d\n" % run_id)
        os.write(err_w, b"warning from %d\n" % run_id)
        os.close(out_w)
        os.close(err_w)
    assert all(pump.wait_drained(run_id, 5) for run_id, _, _ in writers)
    for k in range(10):
        got = sorted(records(pump.logs_dir / f"s{k}.log"))
        expected = [(r, "out", f"hello from {r}") for r in range(k, 150, 10)]
        expected += [(r, "err", f"warning from {r}") for r in range(k, 150, 10)]
        assert got == sorted(expected)


def test_write_errors_are_logged_and_other_logs_keep_working(pump: LogPump, caplog: pytest.LogCaptureFixture) -> None:
    (pump.logs_dir / "bad.log").mkdir(parents=True)  # opening it as a file fails
    bad = make_pipes()
    good = make_pipes()
    with caplog.at_level(logging.ERROR, logger="tradehost.logpump"):
        pump.add("bad", 1, bad[0], bad[2])
        pump.add("good", 2, good[0], good[2])
        for fds in (bad, good):
            os.write(fds[1], b"one\ntwo\n")
            os.close(fds[1])
            os.close(fds[3])
        assert pump.wait_drained(1, 5)
        assert pump.wait_drained(2, 5)
    assert records(pump.logs_dir / "good.log") == [(2, "out", "one"), (2, "out", "two")]
    errors = [r for r in caplog.records if r.name == "tradehost.logpump" and "bad" in r.getMessage()]
    assert len(errors) == 1  # reported once per failure streak, not per line


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_close_strategy_drops_the_file_handle(pump: LogPump) -> None:
    log = pump.logs_dir / "gone.log"

    def open_on_log() -> bool:
        return any(os.path.realpath(f"/proc/self/fd/{fd}") == str(log.resolve()) for fd in os.listdir("/proc/self/fd"))

    pump.note("gone", 1, "hello")
    assert wait_until(lambda: log.exists() and open_on_log(), 2)
    pump.close_strategy("gone")
    assert wait_until(lambda: not open_on_log(), 2)
    assert records(log) == [(1, "sys", "hello")]


# -- real child processes -------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import logging, sys
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    log = logging.getLogger("strategy")
    tag = sys.argv[1]
    for i in range(20000):
        print(f"{tag} out {i:05d} " + "o" * (i % 97))
        log.info("%s err %05d %s", tag, i, "e" * (i % 89))
    """
)


def test_concurrent_children_every_line_exactly_once(pump: LogPump) -> None:
    runs = {11: "alpha", 12: "beta", 13: "alpha"}  # two runs share alpha.log, beta.log is separate
    children = {}
    for run_id, name in runs.items():
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, f"r{run_id}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert child.stdout is not None and child.stderr is not None
        pump.add(name, run_id, os.dup(child.stdout.fileno()), os.dup(child.stderr.fileno()))
        child.stdout.close()
        child.stderr.close()
        children[run_id] = child
    for run_id, child in children.items():
        assert child.wait(20) == 0
        assert pump.wait_drained(run_id, 10)
    for name in set(runs.values()):
        got = records(pump.logs_dir / f"{name}.log")
        expected = []
        for run_id in (r for r, n in runs.items() if n == name):
            expected += [(run_id, "out", f"r{run_id} out {i:05d} " + "o" * (i % 97)) for i in range(20000)]
            expected += [(run_id, "err", f"INFO strategy: r{run_id} err {i:05d} " + "e" * (i % 89)) for i in range(20000)]
        assert len(got) == len(expected)
        assert sorted(got) == sorted(expected)
        # Per run and stream, lines keep their order.
        for run_id in (r for r, n in runs.items() if n == name):
            for stream in ("out", "err"):
                mine = [t for r, s, t in got if r == run_id and s == stream]
                assert mine == [t for r, s, t in expected if r == run_id and s == stream]


# -- fairness -------------------------------------------------------------------------


def test_flood_does_not_delay_a_quiet_run(pump: LogPump) -> None:
    flood = make_pipes()
    quiet = make_pipes()
    pump.add("flood", 1, flood[0], flood[2])
    pump.add("quiet", 2, quiet[0], quiet[2])
    block = b"".join(b"flood line %08d " % i + b"x" * 80 + b"\n" for i in range(10_000))  # ~1 MB
    total = 50 * 1024 * 1024
    written = 0
    flood_done = threading.Event()

    def flooder() -> None:
        nonlocal written
        while written < total:
            write_all(flood[1], block)
            written += len(block)
        flood_done.set()
        os.close(flood[1])
        os.close(flood[3])

    thread = threading.Thread(target=flooder, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: written >= 5 * 1024 * 1024, 10), "flood did not get going"
        sent = time.monotonic()
        for i in range(5):
            os.write(quiet[1], b"quiet %d\n" % i)
        quiet_log = pump.logs_dir / "quiet.log"
        expected = [(2, "out", f"quiet {i}") for i in range(5)]
        assert wait_until(lambda: quiet_log.exists() and records(quiet_log) == expected, 1.0)
        latency = time.monotonic() - sent
        assert not flood_done.is_set(), "flood finished before the check; make it bigger"
        assert latency < 1.0
    finally:
        thread.join(30)
        os.close(quiet[1])
        os.close(quiet[3])
    assert pump.wait_drained(1, 10)
    assert pump.wait_drained(2, 1)
    assert sum(p.stat().st_size for p in pump.logs_dir.glob("flood.log*")) > 40 * 1024 * 1024
