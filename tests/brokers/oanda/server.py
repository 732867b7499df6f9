"""A local OANDA v20 server for the contract tests: real HTTP/1.1 on 127.0.0.1, keep-alive, chunked streams.

Each test scripts the answers it needs (``on(method, path, *replies)``; the last
reply repeats) and reads back every request the adapter sent (method, path,
query, headers, JSON body, client port). Requests without the expected bearer
token get OANDA's 401. Streams (``stream(path, *scripts)``) send JSON lines
in chunks, then hold the connection with heartbeats, stall (no heartbeat),
drop it mid-chunk or end it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ACCOUNT = "101-004-1234567-001"
TOKEN = "0123456789abcdef0123456789abcdef-fedcba9876543210fedcba9876543210"
FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    """A recorded-shape answer from ``fixtures/`` (``.json``), or the lines of an ``.ndjson`` stream."""
    path = FIXTURES / name
    if path.suffix == ".ndjson":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return json.loads(path.read_text())


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None
    """A JSON value, or bytes sent as they are."""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (longer than the client's timeout = no answer)."""
    drop: bool = False
    """Close the connection without answering."""


@dataclass(frozen=True)
class Script:
    """What one stream connection does: send ``lines`` (a number is a pause in seconds), then ``then``: hold | stall | drop | end."""

    lines: list[Any] = field(default_factory=list)
    then: str = "hold"
    heartbeat: float = 0.05
    status: int = 200
    body: Any = None


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    port: int


class FakeOanda:
    """The server; use as a context manager. ``path`` arguments are relative to ``/v3/accounts/{ACCOUNT}``."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.requests: list[Request] = []
        self.stream_connections: dict[str, int] = {}
        self._routes: dict[tuple[str, str], deque[Reply]] = {}
        self._streams: dict[str, deque[Script]] = {}
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeOanda:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def on(self, method: str, path: str, *replies: Reply) -> None:
        with self._lock:
            self._routes[(method, path)] = deque(replies)

    def stream(self, path: str, *scripts: Script) -> None:
        with self._lock:
            self._streams[path] = deque(scripts)

    def sent(self, method: str | None = None, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if (method is None or r.method == method) and (path is None or r.path == path)]

    def wait_for(self, condition: Any, timeout: float = 3.0) -> None:
        """Poll ``condition()`` from a test thread until it is true."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.01)

    def _next(self, queue: deque[Any] | None) -> Any:
        with self._lock:
            if not queue:
                return None
            return queue.popleft() if len(queue) > 1 else queue[0]

    def reply_for(self, method: str, path: str) -> Reply:
        reply = self._next(self._routes.get((method, path)))
        return reply if reply is not None else Reply(404, {"errorMessage": f"no route for {method} {path}"})

    def script_for(self, path: str) -> Script | None:
        with self._lock:
            self.stream_connections[path] = self.stream_connections.get(path, 0) + 1
        return self._next(self._streams.get(path))

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


def _handler(fake: FakeOanda) -> type[BaseHTTPRequestHandler]:
    prefix = f"/v3/accounts/{ACCOUNT}"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in separate writes; no 40 ms delayed-ACK stalls

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def _handle(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = parts.path[len(prefix):] if parts.path.startswith(prefix) else parts.path
            body = json.loads(raw) if raw else None
            fake.record(Request(method, path, dict(parse_qsl(parts.query)), {k.lower(): v for k, v in self.headers.items()}, body, self.client_address[1]))
            if self.headers.get("Authorization") != f"Bearer {fake.token}":
                self._send(Reply(401, {"errorMessage": "Insufficient authorization to perform request."}))
            elif path.endswith("/stream"):
                self._stream(fake.script_for(path))
            else:
                self._send(fake.reply_for(method, path))

        def _send(self, reply: Reply) -> None:
            if reply.delay:
                fake.stopping.wait(reply.delay)
            if reply.drop:
                self._drop()
                return
            data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
            except OSError:
                self.close_connection = True  # the client gave up waiting

        def _drop(self) -> None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _stream(self, script: Script | None) -> None:
            script = script or Script()
            if script.status != 200:
                self._send(Reply(script.status, script.body))
                return
            self.close_connection = True
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for line in script.lines:
                    if isinstance(line, (int, float)):
                        fake.stopping.wait(line)
                        continue
                    self._chunk((line if isinstance(line, str) else json.dumps(line)).encode() + b"\n")
                self._after(script)
            except OSError:
                pass  # the client closed the stream

        def _after(self, script: Script) -> None:
            if script.then == "drop":
                self.wfile.write(b"40\r\n{\"type\":\"PRI")  # a chunk cut short, then the connection goes
                self.wfile.flush()
                self._drop()
            elif script.then == "end":
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            elif script.then == "stall":
                fake.stopping.wait(30)
            else:
                for beat in _heartbeats():
                    if fake.stopping.wait(script.heartbeat):
                        return
                    self._chunk(json.dumps(beat).encode() + b"\n")

    return Handler


def _heartbeats() -> Iterator[dict[str, str]]:
    while True:
        yield {"type": "HEARTBEAT", "time": "2026-11-22T15:00:00.000000000Z"}
