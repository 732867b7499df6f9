"""Decide what a finished run's exit means (pure functions)."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Outcome", "StopReason", "backoff_delay", "classify_exit", "format_bytes", "signal_name"]


@dataclass(frozen=True)
class StopReason:
    """Why the supervisor ended a run.

    ``kind`` is "stopped" (operator, shutdown, removal, replacement), "lost"
    (the fork server died under it: not the strategy's fault), or a broken
    limit: "timeout", "memory", "procs".
    """

    kind: str
    text: str

    @property
    def is_failure(self) -> bool:
        return self.kind in ("timeout", "memory", "procs")

    @property
    def by_operator(self) -> bool:
        return self.kind == "stopped"


@dataclass(frozen=True)
class Outcome:
    outcome: str
    """ok, failed, stopped, timeout, memory, procs, cpu, killed, lost"""
    exit_code: int | None
    signal: int | None
    error: str | None

    @property
    def failed(self) -> bool:
        return self.outcome not in ("ok", "stopped")

    @property
    def code(self) -> int | None:
        """Exit code, or minus the signal number as ``subprocess`` reports it."""
        if self.exit_code is not None:
            return self.exit_code
        return None if self.signal is None else -self.signal


def format_bytes(size: int) -> str:
    return f"{size / 1024**2:.0f} MiB"


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def classify_exit(
    status: int,
    result: Mapping[str, Any] | None,
    stop: StopReason | None,
    *,
    memory_limit: int | None = None,
    cpu_limit: float | None = None,
) -> Outcome:
    """Turn a wait status, the child's own result report and our stop reason into an Outcome."""
    exit_code = os.waitstatus_to_exitcode(status)
    code, sig = (exit_code, None) if exit_code >= 0 else (None, -exit_code)
    reported = (result or {}).get("outcome")
    error = (result or {}).get("error")
    if not isinstance(error, str):
        error = None  # the report comes from the strategy's process: trust nothing in it

    if stop is not None and (stop.is_failure or stop.kind == "lost"):
        return Outcome(stop.kind, code, sig, stop.text)
    if stop is not None:
        return Outcome("stopped", code, sig, None)
    if sig == signal.SIGXCPU:
        limit = f" {cpu_limit:g} s" if cpu_limit is not None else ""
        return Outcome("cpu", code, sig, f"CPU time limit{limit} exceeded ({signal_name(sig)})")
    if sig is not None:
        return Outcome("killed", code, sig, f"killed by {signal_name(sig)}")
    if error is not None and error.startswith("MemoryError"):
        limit = f" (memory limit {format_bytes(memory_limit)})" if memory_limit else ""
        return Outcome("memory", code, sig, f"{error}{limit}")
    if reported == "ok" and code == 0:
        return Outcome("ok", code, sig, None)
    if reported == "stopped":
        return Outcome("stopped", code, sig, None)
    if reported == "load_error":
        return Outcome("failed", code, sig, f"could not load strategy: {error}")
    if error is not None:
        return Outcome("failed", code, sig, error)
    if code == 0:
        return Outcome("ok", code, sig, None)
    return Outcome("failed", code, sig, f"exited with code {code}")


def backoff_delay(consecutive: int, base: float, cap: float) -> float:
    """Capped exponential delay before restart number ``consecutive`` (1-based)."""
    # The exponent is bounded: after 64 doublings any sane base is past any cap.
    return min(cap, base * 2 ** min(max(0, consecutive - 1), 64))
