"""The supervisor's side of the router: start it, pass it the token key, restart it when it dies."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Mapping

from host.outcome import backoff_delay

__all__ = ["RouterProcess"]

log = logging.getLogger("tradehost.router")


class RouterProcess:
    """The router as a built-in continuous service of the supervisor."""

    def __init__(self, config_path: str, key: bytes, env: Mapping[str, str], *, delay_max: float = 10.0) -> None:
        # -P: the working folder stays off the import path (runs must not be able to plant modules for us).
        self._args = [sys.executable, "-P", "-m", "host.router", "--config", config_path, "--managed"]
        self._key = key
        self._env = dict(env)
        self._delay_max = delay_max
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.restarts = 0
        self.started_at: float | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None or self._process.returncode is not None else self._process.pid

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_running(), name="router")

    async def _spawn(self) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(*self._args, stdin=asyncio.subprocess.PIPE, env=self._env, start_new_session=True)
        assert process.stdin is not None
        process.stdin.write(self._key.hex().encode() + b"\n")
        await process.stdin.drain()
        process.stdin.close()
        return process

    async def _keep_running(self) -> None:
        failures = 0
        while not self._stopping:
            began = time.monotonic()
            try:
                self._process = await self._spawn()
            except OSError as exc:
                log.error("cannot start the router: %s", exc)
            else:
                self.started_at = time.time()
                log.info("router started (pid %d)", self._process.pid)
                code = await self._process.wait()
                if self._stopping:
                    return
                log.error("router exited with %s; restarting", f"signal {-code}" if code < 0 else f"code {code}")
            failures = 0 if time.monotonic() - began > 60 else failures + 1
            self.restarts += 1
            await asyncio.sleep(backoff_delay(failures, 0.2, self._delay_max))

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the router and wait; SIGKILL it if it does not exit in time."""
        self._stopping = True
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except asyncio.TimeoutError:
                log.error("router did not stop within %g s; killing it", timeout)
                process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
