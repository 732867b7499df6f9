"""The operator's side of the router: ``tradehost halt``, ``resume``, ``credentials`` and ``brokers``.

Requests go to the router's owner-only admin socket. When no router is
running, ``halt``, ``resume`` and credential changes are written straight to
the state database (audited, under the router's lock) so the router starts
in that state; ``brokers`` then shows the configuration alone.
``tradehost status`` asks through ``ask_router``, which never raises.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zmq

from host.config import Config
from host.errors import ControlError, TradehostError
from host.statedir import SupervisorLock, prepare_state_dir, read_token, supervisor_pid
from host.trading.errors import error_from_dict
from host.trading.wire import encode_request

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from .config import BrokerEntry

__all__ = [
    "ask_router", "broker_connected", "broker_row", "broker_status", "call_admin", "call_router_or_offline", "open_state_database",
    "render_brokers", "set_trading_state",
]


def call_admin(config: Config, op: str, body: dict[str, Any], *, timeout: float = 5.0) -> Any:
    """Send one admin request to the running router; ControlError if it does not answer."""
    path = config.router_admin_socket
    if not path.exists():
        raise ControlError(f"no router is listening on {path}", code="NOT_RUNNING")
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    deadline = time.monotonic() + timeout
    try:
        sock.connect(f"ipc://{path}")
        message = encode_request(secrets.token_hex(8), op, body, read_token(config.router_admin_token_file))
        while True:
            sock.send(message)
            if not sock.poll(max(0, int((deadline - time.monotonic()) * 1000)), zmq.POLLIN):
                raise ControlError(f"the router did not answer {op} within {timeout:g} s", code="NOT_RUNNING")
            reply = json.loads(sock.recv())
            # Not handled (the admin socket over its budget, the router stopping): send it again when told, in time.
            retry = float((reply.get("error") or {}).get("retry_after") or 0.1)
            if reply.get("handled") is not False or time.monotonic() + retry >= deadline:
                break
            time.sleep(retry)
    finally:
        sock.close(linger=0)
        context.term()
    if not reply.get("ok"):
        raise ControlError(str(error_from_dict(reply.get("error") or {})), code=str((reply.get("error") or {}).get("code")))
    return reply.get("result")


def ask_router(config: Config, op: str, *, timeout: float) -> tuple[Any, str | None]:
    """Ask the router running here for ``op``: ``(answer, None)``, or ``(None, why not)``; never raises."""
    if supervisor_pid(config.router_lock_file) is None:  # a socket file left by a killed router would cost the whole timeout
        return None, f"no router is listening on {config.router_admin_socket}"
    try:
        return call_admin(config, op, {}, timeout=timeout), None
    except (TradehostError, zmq.ZMQError, OSError, ValueError) as exc:  # ValueError: a reply that is not JSON
        return None, str(exc)


def open_state_database(config: Config) -> Engine:
    """The state database as the router opens it (pragmas, its tables created); the caller disposes of it."""
    from sqlalchemy import create_engine, event

    from host.store import _sqlite_pragmas

    from .tables import create_tables

    database = create_engine(config.database_url)
    if database.dialect.name == "sqlite":
        event.listen(database, "connect", _sqlite_pragmas)
    create_tables(database)
    return database


def call_router_or_offline(config: Config, op: str, body: dict[str, Any], offline: Callable[[Engine], dict[str, Any]]) -> dict[str, Any]:
    """Send ``op`` to the running router; when none runs, call ``offline`` with the state database, holding the router's lock."""
    prepare_state_dir(config.host.state_dir)
    lock = SupervisorLock(config.router_lock_file)
    if not lock.acquire(attempts=1):
        return dict(call_admin(config, op, body))
    try:
        database = open_state_database(config)
        try:
            return offline(database)
        finally:
            database.dispose()
    finally:
        lock.release()


def set_trading_state(config: Config, state: str, strategy: str | None, reason: str | None) -> dict[str, Any]:
    """Switch trading state through the running router, or in the database if none runs."""
    op = "resume" if state == "ACTIVE" else "halt"
    body = {"reducing": state == "REDUCING", "strategy": strategy, "reason": reason}
    return call_router_or_offline(config, op, body, lambda database: _write_state_offline(database, config, op, state, strategy, reason))


def _write_state_offline(database: Engine, config: Config, op: str, state: str, strategy: str | None, reason: str | None) -> dict[str, Any]:
    from host.sqlprep import Upsert

    from .audit import AuditLog
    from .risk import RiskEngine, TradingState
    from .tables import router_state_table
    from .tradingstate import KEY, dump_states, restore_states

    risk = RiskEngine(config.risk)
    with database.connect() as conn:
        restore_states(conn, risk)
    before = risk.state if strategy is None else risk.state_of(strategy)
    risk.set_state(TradingState(state), strategy)
    audit = AuditLog(database)
    audit.record(f"operator.{op}", {"scope": strategy or "global", "from": str(before), "to": state, "reason": reason, "router": "not running"}, strategy=strategy)
    with database.begin() as conn:
        Upsert(router_state_table, conn.dialect)(conn, [(KEY, dump_states(risk), time.time())])
        audit.flush(conn)
    return {"scope": strategy or "global", "state": state, "previous": str(before), "router": "not running; applies when it starts"}


# ---------------------------------------------------------------- tradehost brokers


def broker_connected(described: dict[str, Any]) -> bool:
    """Whether a broker the router describes is connected; an adapter that reports no connection is in-process, so it is."""
    return bool(described.get("connected", True))


def broker_row(name: str, entry: BrokerEntry, described: dict[str, Any] | None, *, router_running: bool) -> dict[str, Any]:
    """One broker for ``tradehost brokers`` (pure): the router's description when it runs the adapter, else the configuration."""
    from .queries import iso_time

    environment = getattr(entry.options, "environment", None)
    row: dict[str, Any] = {
        "name": name, "type": entry.type, "environment": environment, "router_running": router_running,
        "started": described is not None, "connected": False, "last_call_ms": None, "last_call_at": None,
        "capabilities": None, "instruments": None,
    }
    if described is None:
        return row
    capabilities = dict(described.get("capabilities") or {})
    row.update(
        environment=described.get("environment", environment),
        connected=broker_connected(described),
        last_call_ms=described.get("last_call_ms"), last_call_at=iso_time(described.get("last_call_at")),
        instruments=described.get("instruments", capabilities.pop("instruments", None)),
        capabilities=capabilities, adapter=described,
    )
    return row


def broker_status(config: Config) -> list[dict[str, Any]]:
    """Every configured broker: as the running router sees it, or from the configuration when no router runs."""
    running = supervisor_pid(config.router_lock_file) is not None
    described = {d["name"]: d for d in call_admin(config, "brokers", {})} if running else {}
    return [broker_row(name, entry, described.get(name), router_running=running) for name, entry in config.brokers.items()]


def _capabilities_text(capabilities: dict[str, Any] | None) -> str:
    if not capabilities:
        return "-"
    flags = [flag for flag in ("brackets", "modify", "fractional_units", "hedging") if capabilities.get(flag)]
    return "; ".join(part for part in (",".join(capabilities.get("order_types", [])), ",".join(capabilities.get("time_in_force", [])), ",".join(flags)) if part)


def render_brokers(rows: list[dict[str, Any]]) -> str:
    """The table ``tradehost brokers`` prints, and a line saying so when no router runs."""
    from host.reports import render_table

    header = ("NAME", "TYPE", "ENVIRONMENT", "CONNECTED", "LAST CALL", "INSTRUMENTS", "CAPABILITIES")
    table = render_table(header, [
        (r["name"], r["type"], r["environment"], ("yes" if r["connected"] else "no") if r["started"] else "not started",
         "-" if r["last_call_ms"] is None else f"{r['last_call_ms']:.1f} ms", r["instruments"], _capabilities_text(r["capabilities"]))
        for r in rows
    ])
    if rows and not rows[0]["router_running"]:
        table += "\nthe router is not running: the configuration only"
    return table
