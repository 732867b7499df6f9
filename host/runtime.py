"""What the supervisor holds for each strategy and each live run."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .lifecycle import State, check_transition
from .outcome import StopReason
from .schedule import describe
from .strategy_file import StrategySpec

__all__ = ["ActiveRun", "StrategyRuntime", "parse_status"]

_OUTCOMES = frozenset({"ok", "failed", "stopped", "load_error"})
_MAX_ERROR = 500
_MAX_BUFFER = 64 * 1024


def parse_status(buffer: bytes) -> tuple[list[dict[str, Any]], bytes]:
    """Split a run's status stream into validated events and the unfinished rest (pure).

    Descriptor 3 is writable by strategy code, so every field is checked:
    unknown or malformed lines are dropped, errors are cut to one short line,
    and an endless line cannot grow the buffer.
    """
    *lines, rest = buffer.split(b"\n")
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        if event.get("event") == "entered" and isinstance(event.get("t"), (int, float)):
            events.append({"event": "entered", "t": float(event["t"])})
        elif event.get("event") == "result" and event.get("outcome") in _OUTCOMES:
            error = event.get("error")
            if isinstance(error, str):
                error = " ".join(error.split())[:_MAX_ERROR]
            else:
                error = None
            events.append({"event": "result", "outcome": event["outcome"], "error": error})
    return events, rest[-_MAX_BUFFER:]

log = logging.getLogger("tradehost.supervisor")


@dataclass
class ActiveRun:
    """A run from the moment it is recorded until its process is reaped."""

    id: int
    trigger: str
    scheduled_at: float | None
    started_at: float
    started_mono: float
    """``time.monotonic()`` at launch: timeouts must not jump with the wall clock."""
    clock_start: float
    """Monotonic time the TIMEOUT counts from: the slot for a prelaunched run, else the launch."""
    token: str
    status_fd: int
    spec: StrategySpec
    pid: int | None = None
    entered_at: float | None = None
    result: dict[str, Any] | None = None
    stop: StopReason | None = None
    kill_timer: asyncio.TimerHandle | None = None
    peak_rss: int = 0
    status_buffer: bytes = b""
    status_bytes: int = 0
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


@dataclass
class StrategyRuntime:
    """One registered strategy: its spec (or why it is invalid), state and current run."""

    name: str
    spec: StrategySpec | None
    path: str
    invalid_reason: str | None = None
    state: State = State.STOPPED
    enabled: bool = True
    run: ActiveRun | None = None
    pending: tuple[str, float | None] | None = None
    """A launch waiting for the current run to stop (overlap "replace")."""
    last_slot: float | None = None
    """The newest cron slot launched, skipped or missed: never fired again."""
    intent: int = 0
    """Counts operator start/stop/restart commands, so a slow restart does not undo a later stop."""
    failures: deque[float] = field(default_factory=deque)
    consecutive_failures: int = 0
    fatal: bool = False
    """Gave up restarting; only an operator's start clears it."""
    backoff_timer: asyncio.TimerHandle | None = None
    removed: bool = False
    runs: int = 0
    last_exit_code: int | None = None
    last_error: str | None = None
    last_outcome: str | None = None
    last_run_at: float | None = None

    def set_state(self, new: State) -> None:
        check_transition(self.state, new)
        if new is not self.state:
            log.info("%s: %s → %s", self.name, self.state, new)
            self.state = new

    @property
    def resting_state(self) -> State:
        """Where the strategy goes when no run is active."""
        if self.invalid_reason is not None:
            return State.INVALID
        if not self.enabled:
            return State.STOPPED
        return State.FATAL if self.fatal else State.IDLE

    @property
    def is_continuous(self) -> bool:
        return self.spec is not None and self.spec.settings.is_continuous

    def status(self, next_run: datetime | None) -> dict[str, Any]:
        spec = self.spec
        return {
            "name": self.name,
            "state": self.state.value,
            "enabled": self.enabled,
            "schedule": describe(spec.schedule) if spec is not None else None,
            "timezone": spec.settings.timezone if spec is not None else None,
            "next_run": next_run.astimezone(timezone.utc).isoformat() if next_run is not None else None,
            "pid": self.run.pid if self.run is not None else None,
            "run_id": self.run.id if self.run is not None else None,
            "runs": self.runs,
            "last_run_at": _iso(self.last_run_at),
            "last_outcome": self.last_outcome,
            "last_exit_code": self.last_exit_code,
            "last_error": self.last_error,
            "reason": self.invalid_reason,
            "path": self.path,
        }


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, timezone.utc).isoformat()
