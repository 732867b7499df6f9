"""``reload``: re-read supervisor.toml and rescan strategies/ (also SIGHUP)."""

from __future__ import annotations

from typing import Any

from .base import Command


def _execute(supervisor: Any, args: dict[str, Any]) -> dict[str, Any]:
    return supervisor.reload()


def _render(result: dict[str, Any]) -> str:
    parts = [f"{key}: {', '.join(result[key])}" for key in ("added", "changed", "removed") if result[key]]
    lines = ["reloaded" + (f" ({'; '.join(parts)})" if parts else ", nothing changed")]
    lines += [f"warning: {warning}" for warning in result.get("warnings", [])]
    return "\n".join(lines)


COMMAND = Command("reload", "re-read the configuration and rescan strategies/ without touching unchanged ones", _execute, _render, takes_name=False)
