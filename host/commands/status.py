"""``status [NAME] [--json]``: every strategy's state, schedule, next run and last result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .base import Command


def _execute(supervisor: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    return supervisor.status(args.get("name"))


def _short_time(value: str | None) -> str:
    if value is None:
        return "-"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")


def _last(row: dict[str, Any]) -> str:
    if row["state"] == "invalid":
        return row["reason"] or ""
    if row["last_outcome"] is None:
        return "-"
    text = row["last_outcome"]
    if row["last_exit_code"] not in (None, 0):
        text += f" ({row['last_exit_code']})"
    error = row["last_error"]
    if error:
        # Limit errors already start with their outcome ("timeout: still running after 30 s").
        text = error if error.startswith(row["last_outcome"]) and row["last_exit_code"] in (None, 0) else f"{text}: {error}"
    return text


def render_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table, one strategy per line."""
    if not rows:
        return "no strategies"
    header = ("NAME", "STATE", "SCHEDULE", "NEXT RUN (UTC)", "PID", "RUNS", "LAST")
    table = [header] + [
        (r["name"], r["state"], r["schedule"] or "-", _short_time(r["next_run"]), str(r["pid"] or "-"), str(r["runs"]), _last(r))
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[-1] for line in table)


COMMAND = Command("status", "show every strategy (or one): state, schedule, next run, pid, runs, last result", _execute, render_table, takes_name=False)
