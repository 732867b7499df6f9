"""The operator's side of the router: ``tradehost halt``, ``resume`` and ``router status``.

Requests go to the router's owner-only admin socket. When no router is
running, ``halt`` and ``resume`` are written straight to the state database
(audited, under the router's lock) so the router starts in that state.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import zmq

from host.config import Config
from host.errors import ControlError
from host.statedir import SupervisorLock, prepare_state_dir
from host.trading.errors import error_from_dict
from host.trading.wire import encode_request

__all__ = ["call_admin", "set_trading_state"]


def call_admin(config: Config, op: str, body: dict[str, Any], *, timeout: float = 5.0) -> Any:
    """Send one admin request to the running router; ControlError if it does not answer."""
    path = config.router_admin_socket
    if not path.exists():
        raise ControlError(f"no router is listening on {path}", code="NOT_RUNNING")
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(f"ipc://{path}")
        request_id = secrets.token_hex(8)
        sock.send(encode_request(request_id, op, body))
        if not sock.poll(int(timeout * 1000), zmq.POLLIN):
            raise ControlError(f"the router did not answer {op} within {timeout:g} s", code="NOT_RUNNING")
        reply = json.loads(sock.recv())
    finally:
        sock.close(linger=0)
        context.term()
    if not reply.get("ok"):
        raise ControlError(str(error_from_dict(reply.get("error") or {})), code=str((reply.get("error") or {}).get("code")))
    return reply.get("result")


def set_trading_state(config: Config, state: str, strategy: str | None, reason: str | None) -> dict[str, Any]:
    """Switch trading state through the running router, or in the database if none runs."""
    op = "resume" if state == "ACTIVE" else "halt"
    body = {"reducing": state == "REDUCING", "strategy": strategy, "reason": reason}
    prepare_state_dir(config.host.state_dir)
    lock = SupervisorLock(config.router_lock_file)
    if not lock.acquire(attempts=1):
        return dict(call_admin(config, op, body))
    try:
        return _write_state_offline(config, op, body, state, strategy, reason)
    finally:
        lock.release()


def _write_state_offline(config: Config, op: str, body: dict[str, Any], state: str, strategy: str | None, reason: str | None) -> dict[str, Any]:
    from sqlalchemy import create_engine, event

    from host.store import _sqlite_pragmas

    from .audit import AuditLog
    from .risk import RiskEngine, TradingState
    from host.sqlprep import Upsert

    from .tables import metadata, router_state_table
    from .tradingstate import KEY, dump_states, restore_states

    database = create_engine(config.database_url)
    if database.dialect.name == "sqlite":
        event.listen(database, "connect", _sqlite_pragmas)
    try:
        metadata.create_all(database)
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
    finally:
        database.dispose()
    return {"scope": strategy or "global", "state": state, "previous": str(before), "router": "not running; applies when it starts"}
