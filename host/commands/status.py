"""``status [NAME] [--router] [--json]``: the broker router, then every strategy's state, schedule, next run and last result.

The supervisor answers with its part (``_execute``); the CLI then asks the
running router for its own (``host.router.admin.ask_router``, at most
``ROUTER_TIMEOUT``) and renders both with the pure functions below.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .base import Command

__all__ = ["COMMAND", "ROUTER_TIMEOUT", "asks_router", "render", "render_router", "render_table", "router_view", "split_reply"]

ROUTER_TIMEOUT = 1.0
"""Seconds ``tradehost status`` waits for the router before saying it did not answer."""


def _execute(supervisor: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"router": supervisor.router_status(), "strategies": supervisor.status(args.get("name"))}


def split_reply(reply: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The router process facts and the strategy rows of a ``status`` reply (a supervisor from before the router part sends the bare rows)."""
    if isinstance(reply, list):
        return None, reply
    return reply["router"], reply["strategies"]


def asks_router(process: dict[str, Any]) -> bool:
    """Whether the router is worth asking: remote, or a managed process that is up."""
    return not process["managed"] or process["state"] == "running"


def router_view(process: dict[str, Any], answer: dict[str, Any] | None, error: str | None) -> dict[str, Any]:
    """One object from the supervisor's process facts and the router's own ``status`` answer (None when it gave none)."""
    from host.router.admin import broker_connected

    live = answer or {}
    brokers = None if answer is None else [
        {"name": b.get("name"), "type": b.get("type"), "environment": b.get("environment"), "connected": broker_connected(b)}
        for b in answer.get("brokers") or []
    ]
    return {
        **process,
        "uptime": process["uptime"] if process["managed"] else live.get("uptime"),
        "answered": answer is not None,
        "error": error,
        "trading_state": live.get("trading_state"),
        "strategy_states": live.get("strategy_states"),
        "brokers": brokers,
        "open_orders": live.get("open_orders"),
        "requests": live.get("requests"),
        "orders": live.get("orders"),
        "errors": live.get("errors"),
        "unhandled": live.get("unhandled"),
        "suppressed": live.get("suppressed"),
    }


def _duration(seconds: float) -> str:
    whole = int(seconds)
    for unit, size, smaller, smaller_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if whole >= size:
            return f"{whole // size}{unit} {whole % size // smaller_size:02d}{smaller}"
    return f"{whole}s"


def _process_text(router: dict[str, Any]) -> str:
    if not router["managed"]:
        text = f"remote at {router['endpoint']}"
        return text if router["uptime"] is None else f"{text}, up {_duration(router['uptime'])}"
    parts = [router["state"]]
    if router["pid"] is not None:
        parts.append(f"pid {router['pid']}")
    if router["uptime"] is not None:
        parts.append(f"up {_duration(router['uptime'])}")
    if router["restarts"] is not None:
        parts.append(f"restarts {router['restarts']}")
    return ", ".join(parts)


def _trading_text(router: dict[str, Any]) -> str:
    text = f"trading {router['trading_state']}"
    halted = ", ".join(f"{name} {state}" for name, state in sorted((router["strategy_states"] or {}).items()))
    return f"{text} ({halted})" if halted else text


def render_router(router: dict[str, Any] | None) -> str:
    """The router's line, and a line of brokers when the router answered (``router`` is a ``router_view`` or the supervisor's facts alone)."""
    if router is None:
        return "router: not reported by the running supervisor (it predates this version; restart it to see the router)"
    line = f"router: {_process_text(router)}"
    if not router.get("answered"):
        return line if router.get("error") is None else f"{line}; no answer: {router['error']}"
    line += f"; {_trading_text(router)}, open orders {router['open_orders']}"
    brokers = ", ".join(f"{b['name']} ({'connected' if b['connected'] else 'NOT CONNECTED'})" for b in router["brokers"]) or "none"
    line += f"\n  brokers: {brokers}"
    if router.get("unhandled") or router.get("suppressed"):
        line += (f"\n  since start: {router.get('unhandled') or 0} requests answered unhandled (a sender over its budget), "
                 f"{router.get('suppressed') or 0} refusals audited only as counts (audit --kind request.suppressed)")
    return line


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


def render(result: dict[str, Any]) -> str:
    """What ``tradehost status`` prints: the router block, a blank line, the strategy table."""
    return f"{render_router(result['router'])}\n\n{render_table(result['strategies'])}"


COMMAND = Command("status", "show the broker router and every strategy (or one): state, schedule, next run, pid, runs, last result", _execute, render, takes_name=False)
