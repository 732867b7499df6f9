"""The operator control channel: a ZeroMQ ROUTER on ``state/control.sock``.

Requests and replies are one JSON object each::

    {"v": 1, "cmd": "stop", "args": {"name": "heartbeat"}}
    {"ok": true, "result": ...} | {"ok": false, "error": {"code": "UNKNOWN_STRATEGY", "message": "..."}}

Each request runs as its own task, so a slow ``stop`` (waiting out a grace
period) never holds up ``status``. The socket file is owner-only (0600) in an
owner-only directory: being able to connect is the authentication, as with
circus' ``ipc://`` endpoints.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq
import zmq.asyncio

from .commands import REGISTRY
from .config import Config
from .envelope import EnvelopeError, decode_request, ok_reply
from .envelope import error_reply as _error
from .errors import ControlError, NotRunningError
from .statedir import bind_private, read_token, supervisor_pid, token_matches

if TYPE_CHECKING:
    from .supervisor import Supervisor

__all__ = ["PROTOCOL_VERSION", "call", "dispatch", "serve_control"]

PROTOCOL_VERSION = 1
_MAX_REQUEST = 64 * 1024
log = logging.getLogger("tradehost.control")




async def dispatch(supervisor: Supervisor, payload: bytes) -> dict[str, Any]:
    """Decode one request, run its command, and build the reply; never raises."""
    try:
        request = decode_request(payload, max_bytes=_MAX_REQUEST, version=PROTOCOL_VERSION)
    except EnvelopeError as exc:
        return _error(exc.code, exc.message)
    if not isinstance(request.get("args", {}), dict):
        return _error("BAD_REQUEST", "'args' must be an object")
    command = REGISTRY.get(request.get("cmd"))  # type: ignore[arg-type]
    if command is None:
        return _error("UNKNOWN_COMMAND", f"unknown command {request.get('cmd')!r}")
    if not token_matches(request.get("token"), supervisor.control_token):
        return _error("UNAUTHORIZED", f"{command.name} needs the token in state/control.token, which only the host's operator can read")
    try:
        result = command.execute(supervisor, request.get("args", {}))
        if inspect.isawaitable(result):
            result = await result
    except ControlError as exc:
        return _error(exc.code, str(exc))
    except (TypeError, KeyError, ValueError) as exc:
        return _error("BAD_REQUEST", f"bad arguments for {command.name}: {exc}")
    except asyncio.TimeoutError:
        return _error("TIMEOUT", f"{command.name} did not complete in time")
    except Exception as exc:
        log.exception("command %s failed", command.name)
        return _error("INTERNAL", f"{command.name} failed: {exc}")
    return ok_reply(result)


async def serve_control(supervisor: Supervisor, path: Path) -> None:
    """Serve control requests until cancelled."""
    context = zmq.asyncio.Context.instance()
    sock = context.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, _MAX_REQUEST * 4)
    bind_private(sock, path)
    tasks: set[asyncio.Task[None]] = set()

    async def answer(identity: bytes, payload: bytes) -> None:
        reply = await dispatch(supervisor, payload)
        await sock.send_multipart([identity, b"", json.dumps(reply).encode()])

    try:
        while True:
            frames = await sock.recv_multipart()
            if len(frames) < 2:
                continue
            task = asyncio.create_task(answer(frames[0], frames[-1]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        for task in tasks:
            task.cancel()
        sock.close(linger=0)


def call(config: Config, cmd: str, args: dict[str, Any] | None = None, *, timeout: float = 30.0) -> Any:
    """Send one command to the supervisor of ``config``; return its result or raise ControlError."""
    pid = supervisor_pid(config.lock_file)
    if pid is None:
        raise NotRunningError(f"no supervisor is running for {config.path} (start it with `tradehost run`)")
    context = zmq.Context()
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(f"ipc://{config.control_socket}")
        sock.send(json.dumps({"v": PROTOCOL_VERSION, "cmd": cmd, "args": args or {}, "token": read_token(config.control_token_file)}).encode())
        if not sock.poll(int(timeout * 1000), zmq.POLLIN):
            raise ControlError(f"the supervisor (pid {pid}) did not answer within {timeout:g} s", code="TIMEOUT")
        reply = json.loads(sock.recv())
    finally:
        sock.close(linger=0)
        context.term()
    if not reply.get("ok"):
        error = reply.get("error", {})
        raise ControlError(error.get("message", "unknown error"), code=error.get("code", "ERROR"))
    return reply.get("result")
