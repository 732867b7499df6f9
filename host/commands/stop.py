"""``stop NAME``: disable a strategy (persisted) and stop its run, SIGTERM then SIGKILL."""

from __future__ import annotations

from typing import Any

from .base import Command, render_state


async def _execute(supervisor: Any, args: dict[str, Any]) -> dict[str, Any]:
    return await supervisor.stop(args["name"])


# The reply waits for the run to end: grace periods can be long.
COMMAND = Command("stop", "disable a strategy and stop its current run; it stays stopped across restarts", _execute, render_state, timeout=600.0)
