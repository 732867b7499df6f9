"""The run channel: how a strategy process talks back to the supervisor.

A run authenticates every request with the per-run token the supervisor gave
it at launch; the token dies with the run, so no strategy can act as another
one or as the operator. Requests and replies are one JSON object per ZeroMQ
message::

    request  {"v": 1, "token": "...", "op": "state.items" | "state.set" | "state.delete", ...}
    reply    {"ok": true, "result": ...} | {"ok": false, "error": {"code": "...", "message": "..."}}
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from .envelope import EnvelopeError, decode_request, ok_reply
from .envelope import error_reply as _error
from .errors import StateError

if TYPE_CHECKING:
    from .store import Store  # the fork server, which imports this module, never loads SQLAlchemy

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_MESSAGE_BYTES",
    "MAX_STATE_BYTES",
    "MAX_VALUE_BYTES",
    "PROTOCOL_VERSION",
    "RunChannelClient",
    "RunChannelHandler",
    "encode_value",
    "serve_run_channel",
]

PROTOCOL_VERSION = 1
MAX_KEY_LENGTH = 200
MAX_VALUE_BYTES = 64 * 1024
MAX_STATE_BYTES = 1024 * 1024
MAX_MESSAGE_BYTES = 256 * 1024


def encode_value(key: object, value: object) -> str:
    """Validate a ctx.state key and value; return the value as JSON text."""
    if not isinstance(key, str) or not key:
        raise StateError(f"ctx.state keys must be non-empty strings, got {key!r}")
    if len(key) > MAX_KEY_LENGTH:
        raise StateError(f"ctx.state key {key[:40]!r}… is {len(key)} characters; the limit is {MAX_KEY_LENGTH}")
    try:
        encoded = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StateError(f"ctx.state[{key!r}] must be JSON-serialisable: {exc}") from None
    if len(encoded) > MAX_VALUE_BYTES:
        raise StateError(f"ctx.state[{key!r}] is {len(encoded)} bytes as JSON; the limit is {MAX_VALUE_BYTES}")
    return encoded


RATE = 200.0
"""Requests per second one run may make; the burst allowance is the same number."""


class RunChannelHandler:
    """Supervisor side: answers one request at a time (no I/O of its own but the store).

    Each run's token gets a token bucket, so a strategy hammering its channel
    costs the supervisor at most ``RATE`` database calls a second.
    """

    def __init__(self, store: Store, token_owner: Callable[[str], str | None], *, rate: float = RATE, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._owner = token_owner
        self._rate = rate
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def _allow(self, token: str) -> bool:
        now = self._clock()
        level, then = self._buckets.get(token, (self._rate, now))
        level = min(self._rate, level + (now - then) * self._rate)
        if len(self._buckets) > 10_000:
            self._buckets.clear()  # tokens of ended runs; the live ones start over with a full bucket
        if level < 1.0:
            self._buckets[token] = (level, now)
            return False
        self._buckets[token] = (level - 1.0, now)
        return True

    def handle(self, payload: bytes) -> bytes:
        return json.dumps(self._reply(payload)).encode()

    def _reply(self, payload: bytes) -> dict[str, Any]:
        try:
            request = decode_request(payload, max_bytes=MAX_MESSAGE_BYTES, version=PROTOCOL_VERSION)
        except EnvelopeError as exc:
            return _error(exc.code, exc.message)
        token = request.get("token")
        name = self._owner(token) if isinstance(token, str) else None
        if name is None:
            return _error("UNAUTHENTICATED", "unknown or expired run token")
        if not self._allow(token):  # type: ignore[arg-type]
            return _error("RATE_LIMITED", f"more than {self._rate:g} requests a second from this run")
        try:
            return ok_reply(self._dispatch(name, request))
        except StateError as exc:
            return _error("STATE", str(exc))

    def _dispatch(self, name: str, request: Mapping[str, Any]) -> Any:
        op = request.get("op")
        if op == "state.items":
            return self._store.kv_items(name)
        if op == "state.set":
            key = request.get("key")
            encoded = encode_value(key, request.get("value"))
            if self._store.kv_size(name, excluding=key) + len(key) + len(encoded) > MAX_STATE_BYTES:  # type: ignore[arg-type]
                raise StateError(f"ctx.state of {name} would exceed {MAX_STATE_BYTES} bytes")
            self._store.kv_set(name, key, encoded)  # type: ignore[arg-type]
            return None
        if op == "state.delete":
            key = request.get("key")
            if not isinstance(key, str):
                raise StateError(f"ctx.state keys must be strings, got {key!r}")
            return self._store.kv_delete(name, key)
        raise StateError(f"unknown operation {op!r}")


class RunChannelClient:
    """Strategy side: a lazily connected DEALER socket, one request at a time."""

    def __init__(self, endpoint: str, token: str, timeout: float = 10.0) -> None:
        self._endpoint = endpoint
        self._token = token
        self._timeout_ms = int(timeout * 1000)
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._socket: zmq.Socket[bytes] | None = None

    def request(self, op: str, **fields: Any) -> Any:
        socket = self._connect()
        socket.send(json.dumps({"v": PROTOCOL_VERSION, "token": self._token, "op": op, **fields}).encode())
        if not socket.poll(self._timeout_ms, zmq.POLLIN):
            # The reply may still arrive later; a fresh socket keeps it from being read as the next answer.
            self.close()
            raise StateError(f"the supervisor did not answer {op} within {self._timeout_ms / 1000:g} s")
        reply = json.loads(socket.recv())
        if not reply.get("ok"):
            raise StateError(reply["error"]["message"])
        return reply.get("result")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        if self._context is not None:
            self._context.term()
            self._context = None

    def _connect(self) -> zmq.Socket[bytes]:
        if self._socket is None:
            self._context = zmq.Context()
            self._socket = self._context.socket(zmq.DEALER)
            self._socket.setsockopt(zmq.LINGER, 0)
            self._socket.connect(self._endpoint)
        return self._socket


async def serve_run_channel(handler: RunChannelHandler, path: Path) -> None:
    """Answer run-channel requests on an owner-only ``ipc://`` socket until cancelled."""
    import zmq.asyncio

    from .statedir import bind_private

    sock = zmq.asyncio.Context.instance().socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    # Replies a client does not read are dropped after a few, not queued without end.
    sock.setsockopt(zmq.SNDHWM, 4)
    sock.setsockopt(zmq.RCVHWM, 64)
    # A larger frame is dropped by ZeroMQ before it reaches Python.
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES * 4)
    bind_private(sock, path)
    try:
        while True:
            frames = await sock.recv_multipart()
            if len(frames) >= 2:
                try:
                    await sock.send_multipart([frames[0], handler.handle(frames[-1])], flags=zmq.NOBLOCK)
                except zmq.Again:
                    pass  # that client's queue is full: it is not reading its replies
            # A queued request would otherwise be taken without ever yielding to the loop.
            await asyncio.sleep(0)
    finally:
        sock.close(linger=0)
