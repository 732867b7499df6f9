"""Read the kernel's process table to measure each run's process group.

Reading ``/proc/PID/stat`` directly costs one small read per process and gives
parent, process group and resident size at once, which is what the limit
monitor needs every tick.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ProcInfo", "parse_stat", "run_members", "scan"]

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    pgrp: int
    rss: int
    """Resident set size in bytes."""


def parse_stat(text: str, page_size: int = _PAGE_SIZE) -> ProcInfo:
    """Parse one ``/proc/PID/stat`` line (see proc(5)).

    The command name is in parentheses and may itself contain spaces and
    parentheses, so the fields are split after the last ``)``.
    """
    pid_part, _, rest = text.partition(" (")
    fields = rest[rest.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); ppid is field 4, pgrp field 5, rss field 24.
    return ProcInfo(pid=int(pid_part), ppid=int(fields[1]), pgrp=int(fields[2]), rss=int(fields[21]) * page_size)


def scan(proc: str = "/proc") -> list[ProcInfo]:
    """Return every process visible in ``proc``; processes that vanish mid-scan are skipped."""
    found = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(f"{proc}/{entry}/stat", encoding="utf-8", errors="replace") as handle:
                found.append(parse_stat(handle.read()))
        except (OSError, ValueError, IndexError):
            continue
    return found


def run_members(processes: Iterable[ProcInfo], leader: int) -> list[ProcInfo]:
    """A run's processes: its leader's process group plus every descendant of the leader.

    Descendants that called ``setsid`` left the group but not the tree, so they
    still count against the run's limits.
    """
    processes = list(processes)
    children: dict[int, list[ProcInfo]] = {}
    for info in processes:
        children.setdefault(info.ppid, []).append(info)
    members = {info.pid: info for info in processes if info.pgrp == leader}
    stack = [leader]
    while stack:
        for child in children.get(stack.pop(), ()):
            members[child.pid] = child
            stack.append(child.pid)
    return list(members.values())
