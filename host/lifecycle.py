"""Strategy lifecycle states and the table of legal transitions.

The states follow supervisord's vocabulary. A cron or manual strategy rests in
IDLE between runs; a continuous one rests in RUNNING. The table is the single
place that says which moves are legal; ``check_transition`` refuses the rest.

    STOPPED ──start──▶ IDLE ──fire──▶ STARTING ──run() entered──▶ RUNNING
       ▲                 ▲                │                          │
       │                 └────── exited ──┴──────────────────────────┤
       └──────── stopped ◀── STOPPING ◀── stop ──────────────────────┘
    RUNNING (continuous) ──crash──▶ BACKOFF ──delay──▶ STARTING
    BACKOFF ──too many failures──▶ FATAL ──start──▶ IDLE/STARTING
    any ──file broken──▶ INVALID ──file fixed──▶ IDLE/STOPPED
"""

from __future__ import annotations

import enum

__all__ = ["State", "TRANSITIONS", "IllegalTransition", "check_transition"]


class State(str, enum.Enum):
    STOPPED = "stopped"
    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    BACKOFF = "backoff"
    FATAL = "fatal"
    INVALID = "invalid"

    def __str__(self) -> str:
        return self.value


_S = State

TRANSITIONS: dict[State, frozenset[State]] = {
    # STOPPED→STARTING is an operator's `trigger` of a stopped strategy.
    _S.STOPPED: frozenset({_S.IDLE, _S.STARTING, _S.INVALID}),
    _S.IDLE: frozenset({_S.STARTING, _S.STOPPED, _S.INVALID}),
    # STARTING→IDLE/BACKOFF: the process died before run() was entered.
    # →INVALID: the file broke while the run was going; the run finished first.
    _S.STARTING: frozenset({_S.RUNNING, _S.STOPPING, _S.IDLE, _S.STOPPED, _S.BACKOFF, _S.FATAL, _S.INVALID}),
    _S.RUNNING: frozenset({_S.STOPPING, _S.IDLE, _S.STOPPED, _S.BACKOFF, _S.FATAL, _S.INVALID}),
    # STOPPING→STARTING: overlap "replace" launches the new run once the old one is gone.
    _S.STOPPING: frozenset({_S.STOPPED, _S.IDLE, _S.STARTING, _S.BACKOFF, _S.FATAL, _S.INVALID}),
    # BACKOFF→IDLE: restarted by an operator, or no longer @continuous.
    _S.BACKOFF: frozenset({_S.STARTING, _S.IDLE, _S.STOPPED, _S.FATAL, _S.INVALID}),
    _S.FATAL: frozenset({_S.IDLE, _S.STARTING, _S.STOPPED, _S.INVALID}),
    # INVALID→FATAL: a strategy that had given up, broken and then fixed, stays given up.
    _S.INVALID: frozenset({_S.IDLE, _S.STOPPED, _S.STARTING, _S.FATAL}),
}


class IllegalTransition(RuntimeError):
    """A move that the transition table does not allow."""


def check_transition(current: State, new: State) -> None:
    """Raise IllegalTransition unless ``current → new`` is in the table (staying put is allowed)."""
    if new is not current and new not in TRANSITIONS[current]:
        raise IllegalTransition(f"illegal state transition {current} → {new}")
