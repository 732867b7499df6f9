"""What a control command is: the daemon side and the console side of one verb."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..supervisor import Supervisor

__all__ = ["Command", "render_state"]


@dataclass(frozen=True)
class Command:
    """One control verb.

    ``execute`` runs inside the supervisor (it may be a coroutine function);
    ``render`` turns its result into the line(s) the CLI prints.
    """

    name: str
    help: str
    execute: Callable[[Supervisor, dict[str, Any]], Any]
    render: Callable[[Any], str]
    takes_name: bool = True
    timeout: float = 30.0


def render_state(status: dict[str, Any]) -> str:
    """One line about a strategy after start/stop/restart."""
    line = f"{status['name']}: {status['state']}"
    if status.get("pid"):
        line += f" (pid {status['pid']})"
    if status.get("next_run"):
        line += f", next run {status['next_run']}"
    return line
