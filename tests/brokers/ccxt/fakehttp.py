"""A local aiohttp server for exchange contract tests: records every request, and can be told to misbehave.

An exchange's fake (Binance, Coinbase) adds its routes; a test scripts the next
answers of one endpoint: another status and body, a Retry-After header, a delay
longer than the client's timeout (after the request was processed or before),
a dropped connection, an answer cut off in its body, or a body that is not JSON.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.test_utils import TestServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    body: str
    headers: dict[str, str]
    peer: Any = None
    """The client's address and port: one per TCP connection (benchmarks count connections by it)."""

    @property
    def params(self) -> dict[str, str]:
        """Query and form fields together (Binance signs either)."""
        fields = dict(parse_qsl(self.query, keep_blank_values=True))
        if self.body and not self.body.lstrip().startswith(("{", "[")):
            fields.update(parse_qsl(self.body, keep_blank_values=True))
        return fields

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Script:
    """How to answer the next ``times`` requests to one method and path (a path ending in ``*`` is a prefix)."""

    method: str
    path: str
    status: int = 200
    body: Any = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    process: bool = False
    """Handle the request normally first (so the exchange has the order), then answer as scripted."""
    drop: bool = False
    """Close the connection without answering."""
    truncate: bool = False
    """Send the status line, headers and the first bytes of the body, then close the connection."""
    times: int = 1


class ScriptedServer:
    """The aiohttp app and its life cycle; subclasses add routes in :meth:`routes`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.scripts: list[Script] = []
        self.app = web.Application(middlewares=[self._middleware])
        self.routes(self.app.router)
        self._server: TestServer | None = None

    def routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    def script(self, method: str, path: str, **how: Any) -> Script:
        script = Script(method, path, **how)
        self.scripts.append(script)
        return script

    def sent(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    async def start(self) -> str:
        self._server = TestServer(self.app, host="127.0.0.1")
        await self._server.start_server()
        return str(self._server.make_url("")).rstrip("/")

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.close()

    def _take_script(self, method: str, path: str) -> Script | None:
        for script in self.scripts:
            matches = path.startswith(script.path[:-1]) if script.path.endswith("*") else script.path == path
            if script.method == method and matches:
                script.times -= 1
                if script.times <= 0:
                    self.scripts.remove(script)
                return script
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.text()
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        self.requests.append(Recorded(request.method, request.path, request.query_string, body, dict(request.headers), peer))
        script = self._take_script(request.method, request.path)
        if script is None:
            return await handler(request)
        processed = await handler(request) if script.process else None
        if script.delay:
            await asyncio.sleep(script.delay)
        if script.drop:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=200)
        if script.truncate:
            body = processed.body if isinstance(processed, web.Response) and isinstance(processed.body, bytes) else b'{"truncated": '
            response = web.StreamResponse(status=script.status, headers={"Content-Type": "application/json"})
            response.content_length = len(body) + 100
            await response.prepare(request)
            await response.write(body[: max(1, len(body) // 2)])
            assert request.transport is not None
            request.transport.close()
            return response
        if script.text is not None:
            return web.Response(status=script.status, text=script.text, headers=script.headers, content_type="text/html")
        if script.body is None and processed is not None:
            return processed
        return web.json_response(script.body, status=script.status, headers=script.headers)
