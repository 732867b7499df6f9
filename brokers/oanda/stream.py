"""One OANDA stream kept open: chunked HTTP, one JSON object per line, heartbeats, reconnect with backoff.

OANDA sends a HEARTBEAT line every 5 seconds on an idle stream, so a stream
that says nothing for ``idle_timeout`` seconds is dead, even if its TCP
connection still looks open: the read times out and the stream reconnects.
A connection that ends, breaks or answers an error status reconnects too,
after a wait that doubles from ``reconnect_delay`` up to :data:`MAX_DELAY`
(reset once a connection delivers a line).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from brokers.tasks import cancel_and_wait
from brokers.retry import backoff_delays
from host.trading.errors import TradingError

from .errors import error_from_answer

__all__ = ["MAX_DELAY", "LineStream"]

MAX_DELAY = 30.0
"""Longest wait between two connection attempts."""


class LineStream:
    """A reconnecting reader of one streaming endpoint; ``on_message`` gets each parsed line, heartbeats included."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        path: str,
        *,
        name: str,
        params: Callable[[], Mapping[str, str]],
        on_message: Callable[[dict[str, Any]], Awaitable[None]],
        on_open: Callable[[], Awaitable[None]] | None = None,
        idle_timeout: float,
        connect_timeout: float,
        reconnect_delay: float,
        logger: logging.Logger,
    ) -> None:
        self._http = http
        self._path = path
        self.name = name
        self._params = params
        self._on_message = on_message
        self._on_open = on_open
        self._timeout = httpx.Timeout(connect_timeout, read=idle_timeout)
        self.idle_timeout = idle_timeout
        self._delay = reconnect_delay
        self._log = logger
        self._restart = asyncio.Event()
        self.connected = False
        self.connections = 0
        """Connections opened so far (the first one included)."""
        self.last_line_at: float | None = None
        """``time.monotonic()`` of the last line received."""
        self.subscribed: Mapping[str, str] = {}
        """The parameters of the connection now open."""

    def alive(self) -> bool:
        """Connected and heard from within ``idle_timeout``."""
        last = self.last_line_at
        return self.connected and last is not None and time.monotonic() - last < self.idle_timeout

    def restart(self) -> None:
        """Drop the connection and open a new one at once (with the parameters as they are now)."""
        self._restart.set()

    async def run(self) -> None:
        """Keep the stream open until cancelled."""
        failures = 0
        while True:
            self._restart.clear()
            session = asyncio.create_task(self._session(), name=f"{self.name} session")
            restart = asyncio.create_task(self._restart.wait(), name=f"{self.name} restart")
            try:
                await asyncio.wait({session, restart}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                await cancel_and_wait(session, restart)
                self.connected = False
            if restart.done() and not restart.cancelled():
                failures = 0
                continue
            delivered = session.result() if session.done() and not session.cancelled() else False
            failures = 0 if delivered else failures + 1
            delay = backoff_delays(failures + 1, base=self._delay, cap=MAX_DELAY)[-1] if failures else self._delay
            self._log.info("%s: reconnecting in %.2f s", self.name, delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._restart.wait(), delay)

    async def _session(self) -> bool:
        """One connection, read to its end; True if it delivered at least one line."""
        params = dict(self._params())
        delivered = False
        try:
            async with self._http.stream("GET", self._path, params=params, timeout=self._timeout) as response:
                if response.status_code != 200:
                    await response.aread()
                    body = _json(response.content)
                    error = error_from_answer(response.status_code, body if isinstance(body, dict) else {}, f"the {self.name}")
                    self._log.warning("%s: %s", self.name, error)
                    return False
                self.connections += 1
                self.connected = True
                self.subscribed = params
                if self._on_open is not None:
                    await self._on_open()
                async for line in response.aiter_lines():
                    if line.strip():
                        delivered = True
                        self.last_line_at = time.monotonic()
                        await self._line(line)
            self._log.info("%s: the server ended the stream", self.name)
        except httpx.ReadTimeout:
            self._log.warning("%s: nothing (not even a heartbeat) for %.1f s; the connection is dead", self.name, self.idle_timeout)
        except (httpx.HTTPError, OSError) as exc:
            self._log.warning("%s: connection lost (%s)", self.name, type(exc).__name__)
        except TradingError as exc:  # on_open's catch-up could not be read: try again on the next connection
            self._log.warning("%s: %s", self.name, exc)
        except Exception:
            self._log.exception("%s: opening the stream failed", self.name)
        finally:
            self.connected = False
        return delivered

    async def _line(self, line: str) -> None:
        message = _json(line)
        if not isinstance(message, dict):
            self._log.warning("%s: skipped a line that is not a JSON object: %.120r", self.name, line)
            return
        try:
            await self._on_message(message)
        except Exception:  # one bad message must not end the stream
            self._log.exception("%s: handling a %s message failed", self.name, message.get("type"))


def _json(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
