"""Which limit a live run has broken, if any (pure).

The supervisor samples the process table four times a second and asks
``check_limits`` about each run; the answer names the limit in words that go
straight into ``status`` and the run's log.
"""

from __future__ import annotations

from dataclasses import dataclass

from .outcome import StopReason, format_bytes
from .settings import StrategySettings

__all__ = ["Usage", "check_limits"]


@dataclass(frozen=True)
class Usage:
    """What a run's processes use right now."""

    processes: int
    rss: int


def check_limits(settings: StrategySettings, *, elapsed: float, usage: Usage | None) -> tuple[StopReason, bool] | None:
    """Return the broken limit and whether to kill at once (no grace), or None.

    Memory and process-count breaches are killed at once: a grace period would
    let a hog or a fork bomb keep growing. A timeout gets the usual SIGTERM and grace.
    """
    if not settings.is_continuous and settings.timeout and elapsed > settings.timeout:
        return StopReason("timeout", f"timeout: still running after {settings.timeout:g} s"), False
    if usage is None:
        return None
    if settings.memory is not None and usage.rss > settings.memory:
        return StopReason("memory", f"memory limit {format_bytes(settings.memory)} exceeded (resident {format_bytes(usage.rss)})"), True
    if usage.processes > settings.max_procs:
        return StopReason("procs", f"process limit {settings.max_procs} exceeded ({usage.processes} processes)"), True
    return None
