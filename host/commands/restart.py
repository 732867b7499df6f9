"""``restart NAME``: stop the current run, then start the strategy again."""

from __future__ import annotations

from typing import Any

from .base import Command, render_state


async def _execute(supervisor: Any, args: dict[str, Any]) -> dict[str, Any]:
    return await supervisor.restart(args["name"])


COMMAND = Command("restart", "stop the current run and start again (continuous strategies relaunch)", _execute, render_state, timeout=600.0)
