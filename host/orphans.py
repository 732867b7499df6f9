"""Find and kill run processes left behind by a supervisor that died.

Every process the host starts carries ``TRADEHOST_STATE_DIR`` in its
environment. The parent-death signal kills a run's main process when the
supervisor dies; its own children, and anything that escaped its process
group, are found here by that marker at the next start.
"""

from __future__ import annotations

import logging
import os
import signal

import psutil

__all__ = ["MARKER", "find_orphans", "kill_orphans"]

MARKER = "TRADEHOST_STATE_DIR"
log = logging.getLogger("tradehost.orphans")


def find_orphans(state_dir: str, *, exclude: set[int] | None = None) -> list[psutil.Process]:
    """Processes whose environment names ``state_dir`` as their host's, other than ``exclude``."""
    skip = {os.getpid(), *(exclude or set())}
    found = []
    for process in psutil.process_iter():
        if process.pid in skip:
            continue
        try:
            if process.environ().get(MARKER) == state_dir:
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def kill_orphans(state_dir: str, *, exclude: set[int] | None = None, timeout: float = 5.0) -> int:
    """SIGKILL every orphan of ``state_dir``; return how many there were."""
    orphans = find_orphans(state_dir, exclude=exclude)
    for process in orphans:
        log.warning("killing orphaned process %d (%s) left by an earlier supervisor", process.pid, _describe(process))
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    psutil.wait_procs(orphans, timeout=timeout)
    return len(orphans)


def _describe(process: psutil.Process) -> str:
    try:
        name = process.environ().get("TRADEHOST_STRATEGY", "fork server")
        return f"strategy {name}" if name != "fork server" else name
    except (psutil.Error, OSError):
        return "?"
