"""Confine a freshly forked run process before any strategy code runs.

Everything here happens in the child, right after the fork server forked it:
own session and process group, death with its parent, the run's pipes on
fds 1-3, resource limits, a scrubbed environment, the Landlock sandbox.
"""

from __future__ import annotations

import ctypes
import io
import math
import os
import resource
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from . import sandbox

__all__ = ["Limits", "STATUS_FD", "confine", "rlimits_for", "set_child_subreaper", "set_dumpable", "set_parent_death_signal"]

STATUS_FD = 3
"""The child writes its status events (run entered, result) to this descriptor."""

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


def set_parent_death_signal(signum: int) -> None:
    """Ask the kernel to send ``signum`` to this process when its parent dies."""
    if _libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def set_dumpable(dumpable: bool) -> None:
    """A non-dumpable process's /proc files (environ, mem) are closed to other processes of its user."""
    if _libc.prctl(_PR_SET_DUMPABLE, int(dumpable), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")


def set_child_subreaper() -> None:
    """Make orphaned descendants re-parent to this process instead of init."""
    if _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


@dataclass(frozen=True)
class Limits:
    """Per-process kernel limits. Memory is not among them: the supervisor
    measures the resident memory of the run's whole process tree instead,
    because an address-space limit also counts thread stacks and malloc
    arenas and breaks strategies that start threads."""

    cpu_time: float | None = None
    open_files: int | None = None

    @classmethod
    def from_request(cls, data: Mapping[str, object]) -> Limits:
        return cls(cpu_time=data.get("cpu_time"), open_files=data.get("open_files"))  # type: ignore[arg-type]


def rlimits_for(limits: Limits, *, nofile_hard: int) -> list[tuple[int, tuple[int, int]]]:
    """Return the ``setrlimit`` calls that enforce ``limits`` (pure)."""
    calls: list[tuple[int, tuple[int, int]]] = [(resource.RLIMIT_CORE, (0, 0))]
    if limits.cpu_time is not None:
        soft = max(1, math.ceil(limits.cpu_time))
        # SIGXCPU at the soft limit, SIGKILL a little later if it is ignored.
        calls.append((resource.RLIMIT_CPU, (soft, soft + 5)))
    if limits.open_files is not None:
        cap = min(limits.open_files, nofile_hard) if nofile_hard != resource.RLIM_INFINITY else limits.open_files
        calls.append((resource.RLIMIT_NOFILE, (cap, cap)))
    return calls


def confine(
    *, pipes: Sequence[int], parent_pid: int, limits: Limits, cwd: str, env: Mapping[str, str], ruleset: int | None = None,
) -> None:
    """Turn the current (just forked) process into a confined run process.

    ``pipes`` are the write ends for stdout, stderr and status; ``ruleset``,
    unless None, the Landlock ruleset of the run's sandbox (host/sandbox.py).
    """
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE, signal.SIGUSR1):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.set_wakeup_fd(-1)
    # The fork server blocks these; one that arrived since the fork is delivered now.
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    os.setsid()
    set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(111)  # the fork server died between fork and prctl

    stdout_w, stderr_w, status_w = pipes
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(stdout_w, 1)
    os.dup2(stderr_w, 2)
    os.dup2(status_w, STATUS_FD)
    if ruleset is not None:
        sandbox.restrict(ruleset)
    os.closerange(STATUS_FD + 1, _max_fd())

    _, nofile_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for which, value in rlimits_for(limits, nofile_hard=nofile_hard):
        resource.setrlimit(which, value)

    os.chdir(cwd)
    _replace_environment(env)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True)


def _replace_environment(env: Mapping[str, str]) -> None:
    # Only touch what differs: each putenv/unsetenv is a libc call, and the
    # fork server's environment is already the scrubbed base.
    for key in [key for key in os.environ if key not in env]:
        del os.environ[key]
    for key, value in env.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def _max_fd() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 65536
