"""The supervisor's handle on the fork server: start it, send launches, hear exits."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["ForkServerError", "Launcher"]

log = logging.getLogger("tradehost.launcher")
_MAX_PACKET = 256 * 1024


class ForkServerError(RuntimeError):
    """The fork server could not be started or has gone away."""


class Launcher:
    """Owns the fork server process; every run is forked by it.

    ``on_message`` receives the server's ``started``/``failed``/``exited``
    messages in the event loop; ``on_lost`` is called if the server dies.
    """

    def __init__(
        self,
        *,
        preload: Sequence[str],
        env: Mapping[str, str],
        on_message: Callable[[dict[str, Any]], None],
        on_lost: Callable[[], None],
    ) -> None:
        self._preload = list(preload)
        self._env = dict(env)
        self._on_message = on_message
        self._on_lost = on_lost
        self._sock: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.pid: int | None = None
        self.preload_errors: list[str] = []
        self._closing = False

    async def start(self, timeout: float = 60.0) -> None:
        """Start the fork server and wait for its hello."""
        self._loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "host.forkserver", str(theirs.fileno()), json.dumps(self._preload)],
                pass_fds=[theirs.fileno()],
                env=self._env,
                stdin=subprocess.DEVNULL,
                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        hello = await asyncio.wait_for(self._receive_hello(), timeout)
        self.pid = hello["pid"]
        self.preload_errors = hello.get("preload_errors", [])
        for error in self.preload_errors:
            log.warning("fork server could not preload %s", error)
        self._loop.add_reader(ours.fileno(), self._readable)

    async def _receive_hello(self) -> dict[str, Any]:
        assert self._loop is not None and self._sock is not None
        data = await self._loop.sock_recv(self._sock, _MAX_PACKET)
        if not data:
            raise ForkServerError(f"fork server exited during start-up (exit code {self._process.wait() if self._process else '?'})")
        return json.loads(data)

    def launch(self, request: Mapping[str, Any], fds: Sequence[int]) -> None:
        """Ask the fork server to fork one run; ``fds`` are the run's pipe write ends."""
        if self._sock is None:
            raise ForkServerError("fork server is not running")
        payload = json.dumps({"op": "launch", **request}).encode()
        if len(payload) > _MAX_PACKET:
            raise ForkServerError(f"launch request is {len(payload)} bytes; the limit is {_MAX_PACKET}")
        deadline = time.monotonic() + 5.0
        while True:
            try:
                socket.send_fds(self._sock, [payload], list(fds))
                return
            except BlockingIOError:
                # The server is busy forking a burst of runs; its queue drains in milliseconds.
                if time.monotonic() > deadline:
                    raise ForkServerError("fork server is not reading launch requests") from None
                time.sleep(0.001)
            except OSError as exc:
                raise ForkServerError(f"fork server is gone: {exc.strerror or exc}") from exc

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(_MAX_PACKET)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._lost()
                return
            self._on_message(json.loads(data))

    def _lost(self) -> None:
        if self._loop is not None and self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._process is not None:
            try:
                self._process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if not self._closing:
            log.error("fork server (pid %s) died", self.pid)
            self._on_lost()

    @property
    def alive(self) -> bool:
        return self._sock is not None and self._process is not None and self._process.poll() is None

    async def close(self, timeout: float = 5.0) -> None:
        """Close the socket (the server exits on end of file) and wait for it."""
        self._closing = True
        if self._loop is not None and self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if self._process is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(self._process.wait), timeout)
            except asyncio.TimeoutError:
                self._process.kill()
                self._process.wait()
