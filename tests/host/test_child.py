"""Tests for host.child: rlimits_for (pure) and confine() in a real forked process."""

from __future__ import annotations

import ctypes
import json
import os
import resource
import select
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

import pytest

from host.child import STATUS_FD, Limits, confine, rlimits_for

MiB = 1024**2
_PR_GET_PDEATHSIG = 2


# ------------------------------------------------------------ rlimits_for


def as_dict(calls: list[tuple[int, tuple[int, int]]]) -> dict[int, tuple[int, int]]:
    result = dict(calls)
    assert len(result) == len(calls), "a limit is set twice"
    return result


def test_no_limits_only_disables_core_dumps() -> None:
    assert rlimits_for(Limits(), nofile_hard=4096) == [(resource.RLIMIT_CORE, (0, 0))]


def test_no_address_space_limit_is_ever_set() -> None:
    # Memory is measured over the run's process tree by the supervisor; RLIMIT_AS
    # would count thread stacks and malloc arenas and break threaded strategies.
    calls = as_dict(rlimits_for(Limits(cpu_time=1, open_files=10), nofile_hard=4096))
    assert resource.RLIMIT_AS not in calls and resource.RLIMIT_DATA not in calls


@pytest.mark.parametrize(
    ("cpu_time", "soft"),
    [(0.1, 1), (0.5, 1), (1.0, 1), (1.5, 2), (2.0, 2), (2.01, 3), (59.9, 60), (60.0, 60)],
)
def test_cpu_limit_rounds_up_to_whole_seconds_with_a_hard_margin(cpu_time: float, soft: int) -> None:
    calls = as_dict(rlimits_for(Limits(cpu_time=cpu_time), nofile_hard=4096))
    assert calls[resource.RLIMIT_CPU] == (soft, soft + 5)
    assert resource.RLIMIT_AS not in calls


def test_open_files_limit_is_clamped_to_the_hard_limit() -> None:
    assert as_dict(rlimits_for(Limits(open_files=100), nofile_hard=4096))[resource.RLIMIT_NOFILE] == (100, 100)
    assert as_dict(rlimits_for(Limits(open_files=10_000), nofile_hard=4096))[resource.RLIMIT_NOFILE] == (4096, 4096)


def test_open_files_limit_with_unlimited_hard_limit() -> None:
    calls = as_dict(rlimits_for(Limits(open_files=10_000), nofile_hard=resource.RLIM_INFINITY))
    assert calls[resource.RLIMIT_NOFILE] == (10_000, 10_000)


def test_all_limits_together() -> None:
    calls = as_dict(rlimits_for(Limits(cpu_time=3, open_files=50), nofile_hard=1024))
    assert calls == {
        resource.RLIMIT_CORE: (0, 0),
        resource.RLIMIT_CPU: (3, 8),
        resource.RLIMIT_NOFILE: (50, 50),
    }


def test_limits_from_request() -> None:
    assert Limits.from_request({"memory": 5, "cpu_time": 1.5, "open_files": 9, "other": 1}) == Limits(1.5, 9)
    assert Limits.from_request({}) == Limits()


# ------------------------------------------------------------ confine() in a forked child


def read_all(fd: int, deadline: float) -> bytes:
    chunks = []
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "timed out reading a child pipe"
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def read_line(fd: int, deadline: float) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out waiting for the child's report, got {data!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 1)
            assert chunk, f"status pipe closed early, got {data!r}"
            data += chunk
    return data


def child_report(memory: int) -> dict:
    """Runs in the confined child: look at ourselves and say what we see."""
    libc = ctypes.CDLL(None, use_errno=True)
    pdeathsig = ctypes.c_int(0)
    libc.prctl(_PR_GET_PDEATHSIG, ctypes.byref(pdeathsig), 0, 0, 0)
    threads = [threading.Thread(target=time.sleep, args=(0.2,)) for _ in range(40)]
    for thread in threads:
        thread.start()  # many threads must not trip any memory limit of ours
    for thread in threads:
        thread.join()
    return {
        "pid": os.getpid(),
        "sid": os.getsid(0),
        "pgrp": os.getpgrp(),
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "stdin": sys.stdin.read(),
        "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
        "rlimits": {
            name: list(resource.getrlimit(getattr(resource, name)))
            for name in ("RLIMIT_CORE", "RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NOFILE")
        },
        "sigterm_default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
        "sigint_default": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
        "pdeathsig": pdeathsig.value,
        "threads_started": len(threads),
    }


def test_confine_in_a_real_forked_child(tmp_path: Path) -> None:
    memory = 64 * MiB
    limits = Limits(cpu_time=5, open_files=64)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    status_r, status_w = os.pipe()
    extra_r, extra_w = os.pipe()  # an unrelated descriptor the child must not keep
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # ---- child: never return into pytest
        code = 0
        try:
            for fd in (out_r, err_r, status_r):
                os.close(fd)
            confine(pipes=[out_w, err_w, status_w], parent_pid=parent, limits=limits, cwd=str(tmp_path), env={"ONLY": "this"})
            print("hello on stdout")
            print("hello on stderr", file=sys.stderr)
            os.write(STATUS_FD, (json.dumps(child_report(memory)) + "\n").encode())
            time.sleep(30)  # until the parent has looked at us and sends SIGTERM
        except BaseException:
            code = 1
            try:
                os.write(2, traceback.format_exc().encode())
                os.write(STATUS_FD, b'{"error": "see stderr"}\n')
            except BaseException:
                pass
        finally:
            os._exit(code)

    # ---- parent
    for fd in (out_w, err_w, status_w, extra_r, extra_w):
        os.close(fd)
    try:
        deadline = time.monotonic() + 15
        report = json.loads(read_line(status_r, deadline))
        assert "error" not in report, read_all(err_r, deadline).decode()
        assert os.getsid(pid) == pid  # session leader
        assert os.getpgid(pid) == pid
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert os.waitstatus_to_exitcode(status) == -signal.SIGTERM  # SIGTERM is back to its default
        stdout = read_all(out_r, deadline)
        stderr = read_all(err_r, deadline)
        rest = read_all(status_r, deadline)
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        for fd in (out_r, err_r, status_r):
            os.close(fd)

    assert stdout == b"hello on stdout\n"
    assert stderr == b"hello on stderr\n"
    assert rest == b""
    assert report["sid"] == report["pid"] == report["pgrp"]
    assert report["env"] == {"ONLY": "this"}
    assert report["cwd"] == str(tmp_path)
    assert report["stdin"] == ""
    # 0-3 plus the one listdir itself opened; nothing inherited leaks through
    assert [fd for fd in report["fds"] if fd > STATUS_FD] in ([], [4])
    assert report["fds"][:4] == [0, 1, 2, 3]
    rl = report["rlimits"]
    assert rl["RLIMIT_CORE"] == [0, 0]
    assert rl["RLIMIT_CPU"] == [5, 10]
    assert rl["RLIMIT_NOFILE"] == [64, 64]
    assert rl["RLIMIT_AS"] == list(resource.getrlimit(resource.RLIMIT_AS))
    assert report["threads_started"] == 40
    assert report["sigterm_default"] and report["sigint_default"]
    assert report["pdeathsig"] == signal.SIGKILL


def test_confine_exits_when_the_parent_is_not_the_expected_one(tmp_path: Path) -> None:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            confine(pipes=[w, w, w], parent_pid=1, limits=Limits(), cwd=str(tmp_path), env={})
            os.write(w, b"not reached")
        finally:
            os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    try:
        assert os.waitstatus_to_exitcode(status) == 111
        assert read_all(r, time.monotonic() + 5) == b""
    finally:
        os.close(r)


def test_a_stop_sent_before_confinement_is_not_lost(tmp_path: Path) -> None:
    # The fork server blocks SIGTERM; a SIGTERM that reaches the child before
    # confine() must stay pending and end the child once confine() unblocks it.
    out_r, out_w = os.pipe()
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    parent = os.getpid()
    try:
        pid = os.fork()
        if pid == 0:  # ---- child
            try:
                os.kill(os.getpid(), signal.SIGTERM)  # arrives while blocked: pending
                confine(pipes=[out_w, out_w, out_w], parent_pid=parent, limits=Limits(), cwd=str(tmp_path), env={})
                os.write(1, b"survived\n")
            finally:
                os._exit(0)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    os.close(out_w)
    _, status = os.waitpid(pid, 0)
    output = read_all(out_r, time.monotonic() + 5)
    os.close(out_r)
    assert os.waitstatus_to_exitcode(status) == -signal.SIGTERM
    assert output == b""
