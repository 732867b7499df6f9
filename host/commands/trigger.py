"""``trigger NAME``: run a strategy once, now, whatever its schedule."""

from __future__ import annotations

from typing import Any

from .base import Command


def _execute(supervisor: Any, args: dict[str, Any]) -> dict[str, Any]:
    return supervisor.trigger(args["name"])


def _render(result: dict[str, Any]) -> str:
    return f"{result['name']}: started run {result['run_id']}"


COMMAND = Command("trigger", "run a strategy once now (refused while a run is active)", _execute, _render)
