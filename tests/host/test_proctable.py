"""Tests for host.proctable: parse_stat, scan and run_members against the real /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from host.proctable import ProcInfo, parse_stat, run_members, scan


def stat_line(pid: int, comm: str, *, ppid: int, pgrp: int, rss_pages: int) -> str:
    # Fields 3..52 of proc(5); rss is field 24.
    fields = ["S", str(ppid), str(pgrp), "77", "0", "-1", "4194560"] + ["0"] * 14 + [str(rss_pages)] + ["0"] * 28
    assert fields[21] == str(rss_pages)
    return f"{pid} ({comm}) " + " ".join(fields) + "\n"


def test_parse_stat_plain() -> None:
    info = parse_stat(stat_line(42, "python3", ppid=1, pgrp=42, rss_pages=10), page_size=4096)
    assert info == ProcInfo(pid=42, ppid=1, pgrp=42, rss=40960)


@pytest.mark.parametrize("comm", ["my prog", "evil) 1 2 (3", "a) (b", ") ) )", "x (y) z", ""])
def test_parse_stat_comm_with_spaces_and_parentheses(comm: str) -> None:
    info = parse_stat(stat_line(1234, comm, ppid=99, pgrp=1200, rss_pages=3), page_size=1000)
    assert info == ProcInfo(pid=1234, ppid=99, pgrp=1200, rss=3000)


def test_parse_stat_of_own_process_matches_os() -> None:
    with open("/proc/self/stat", encoding="utf-8") as handle:
        info = parse_stat(handle.read())
    assert info.pid == os.getpid()
    assert info.ppid == os.getppid()
    assert info.pgrp == os.getpgrp()
    assert info.rss > 0


def test_parse_stat_garbage_raises() -> None:
    with pytest.raises((ValueError, IndexError)):
        parse_stat("not a stat line")


def test_scan_finds_this_process() -> None:
    found = {info.pid: info for info in scan()}
    me = found[os.getpid()]
    assert me.ppid == os.getppid()
    assert me.pgrp == os.getpgrp()
    assert me.rss > 1024 * 1024  # a Python interpreter is at least a few MiB resident


def test_scan_skips_non_numeric_entries_and_vanished_processes(tmp_path) -> None:
    (tmp_path / "self").mkdir()
    (tmp_path / "12").mkdir()
    (tmp_path / "12" / "stat").write_text("12 (x) S 1 12 " + " ".join(["0"] * 18) + " 5 0\n")
    (tmp_path / "13").mkdir()  # no stat file: vanished mid-scan
    (tmp_path / "14").mkdir()
    (tmp_path / "14" / "stat").write_text("14 (half")  # unparsable
    (tmp_path / "version").write_text("ignored")
    found = scan(str(tmp_path))
    assert [info.pid for info in found] == [12]
    assert found[0].pgrp == 12 and found[0].ppid == 1


def test_run_members_counts_a_real_process_group() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import os,time; os.fork(); time.sleep(5)"],
        start_new_session=True,
    )
    try:
        pgid = child.pid  # a session leader's group id is its pid
        deadline = time.monotonic() + 5
        members = run_members(scan(), pgid)
        while len(members) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
            members = run_members(scan(), pgid)
        assert len(members) == 2
        assert sum(info.rss for info in members) > 0
        # our own group is a different one and is not counted there
        assert os.getpgrp() != pgid
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=5)


def test_run_members_includes_setsid_descendants_but_not_strangers() -> None:
    from host.proctable import ProcInfo, run_members

    table = [
        ProcInfo(pid=100, ppid=1, pgrp=100, rss=10),     # the run's leader
        ProcInfo(pid=101, ppid=100, pgrp=100, rss=1),    # a child in its group
        ProcInfo(pid=102, ppid=100, pgrp=102, rss=2),    # a child that called setsid
        ProcInfo(pid=103, ppid=102, pgrp=102, rss=4),    # its child
        ProcInfo(pid=104, ppid=1, pgrp=100, rss=8),      # an orphan still in the group
        ProcInfo(pid=200, ppid=1, pgrp=200, rss=1000),   # somebody else
    ]
    assert sorted(p.pid for p in run_members(table, 100)) == [100, 101, 102, 103, 104]
    assert run_members(table, 999) == []
