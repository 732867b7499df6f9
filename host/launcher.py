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
from collections import deque
from typing import Any

from .forkserver import MAX_PACKET

__all__ = ["ForkServerError", "Launcher"]

log = logging.getLogger("tradehost.launcher")


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
        self._outbox: deque[tuple[bytes, list[int]]] = deque()
        self._pings = 0
        self.last_pong = time.monotonic()

    async def start(self, timeout: float = 60.0) -> None:
        """Start the fork server and wait for its hello."""
        self._loop = asyncio.get_running_loop()
        self._closing = False
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = subprocess.Popen(
                # -P: the working folder stays off the import path (runs must not be able to plant modules for us).
                [sys.executable, "-P", "-m", "host.forkserver", str(theirs.fileno()), json.dumps(self._preload)],
                pass_fds=[theirs.fileno()],
                env=self._env,
                stdin=subprocess.DEVNULL,
                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        try:
            hello = await asyncio.wait_for(self._receive_hello(), timeout)
        except BaseException:
            self._sock = None
            ours.close()
            self._process.kill()
            raise
        self.pid = hello["pid"]
        self.last_pong = time.monotonic()
        self.preload_errors = hello.get("preload_errors", [])
        for error in self.preload_errors:
            log.warning("fork server could not preload %s", error)
        self._loop.add_reader(ours.fileno(), self._readable)

    async def _receive_hello(self) -> dict[str, Any]:
        assert self._loop is not None and self._sock is not None
        data = await self._loop.sock_recv(self._sock, MAX_PACKET)
        if not data:
            raise ForkServerError(f"fork server exited during start-up (exit code {self._process.wait() if self._process else '?'})")
        return json.loads(data)

    def launch(self, request: Mapping[str, Any], fds: Sequence[int]) -> None:
        """Ask the fork server to fork one run; ``fds`` are the run's pipe write ends.

        The descriptors are duplicated for the queue, so the caller closes its own at once.
        """
        payload = json.dumps({"op": "launch", **request}).encode()
        if len(payload) > MAX_PACKET:
            raise ForkServerError(f"launch request is {len(payload)} bytes; the limit is {MAX_PACKET}")
        self._enqueue(payload, [os.dup(fd) for fd in fds])

    def signal(self, run_id: int, signum: int) -> None:
        """Have the fork server signal a run's process group (it knows whether the run was reaped)."""
        self._enqueue(json.dumps({"op": "signal", "run_id": run_id, "signal": int(signum)}).encode(), [])

    def sweep(self) -> None:
        """Have the fork server kill processes that escaped their runs now."""
        self._enqueue(json.dumps({"op": "sweep"}).encode(), [])

    def ping(self) -> None:
        """Ask for a pong; ``last_pong`` tells when the server last answered."""
        self._pings += 1
        self._enqueue(json.dumps({"op": "ping", "n": self._pings}).encode(), [])

    def kill(self) -> None:
        """SIGKILL an unresponsive fork server; its runs die with it (parent-death signal)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        if self._sock is not None:
            self._lost()

    def _enqueue(self, payload: bytes, fds: list[int]) -> None:
        if self._sock is None:
            for fd in fds:
                os.close(fd)
            raise ForkServerError("fork server is not running")
        self._outbox.append((payload, fds))
        if len(self._outbox) == 1:
            self._flush()

    def _flush(self) -> None:
        # Never block the event loop: what the socket does not take now is sent when it is writable.
        assert self._loop is not None
        while self._outbox and self._sock is not None:
            payload, fds = self._outbox[0]
            try:
                socket.send_fds(self._sock, [payload], fds) if fds else self._sock.send(payload)
            except BlockingIOError:
                self._loop.add_writer(self._sock.fileno(), self._flush)
                return
            except OSError:
                self._lost()
                return
            self._outbox.popleft()
            for fd in fds:
                os.close(fd)
        if self._sock is not None:
            self._loop.remove_writer(self._sock.fileno())

    def _readable(self) -> None:
        while self._sock is not None:
            try:
                data = self._sock.recv(MAX_PACKET)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._lost()
                return
            message = json.loads(data)
            if message.get("op") == "pong":
                self.last_pong = time.monotonic()
            else:
                self._on_message(message)

    def _lost(self) -> None:
        if self._loop is not None and self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._loop.remove_writer(self._sock.fileno())
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        while self._outbox:
            for fd in self._outbox.popleft()[1]:
                os.close(fd)
        if not self._closing and self._process is not None:
            process = self._process
            if process.poll() is None:
                process.kill()  # of no use without its socket
            if self._loop is not None:
                self._loop.run_in_executor(None, process.wait)
        if not self._closing:
            log.error("fork server (pid %s) died", self.pid)
            self._on_lost()

    @property
    def alive(self) -> bool:
        return self._sock is not None and self._process is not None and self._process.poll() is None

    async def close(self, timeout: float = 5.0) -> None:
        """Close the socket (the server kills what is left of its runs and exits) and wait for it."""
        self._closing = True
        if self._sock is not None:
            self._lost()
        if self._process is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(self._process.wait), timeout)
            except asyncio.TimeoutError:
                self._process.kill()
                await asyncio.to_thread(self._process.wait)
