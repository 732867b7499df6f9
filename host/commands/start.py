"""``start NAME``: enable a strategy (persisted) and put it back on its schedule."""

from __future__ import annotations

from typing import Any

from .base import Command, render_state


def _execute(supervisor: Any, args: dict[str, Any]) -> dict[str, Any]:
    return supervisor.start(args["name"])


COMMAND = Command("start", "enable a strategy; continuous ones start at once, fatal ones are retried", _execute, render_state)
