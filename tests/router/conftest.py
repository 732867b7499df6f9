"""A real router process for end-to-end tests: its own folder, supervisor.toml, state/ and key."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from host.trading.client import RouterClient
from host.trading.tokens import RunTokens
from tests.host.conftest import host, wait_for  # noqa: F401  (host: the supervisor fixture, for tests/router/test_supervised.py)

REPO = Path(__file__).resolve().parents[2]

BASE_CONFIG = """\
[router]
enabled = false
request_timeout = 5
"""


class RouterProc:
    """``tradehost router`` in a temporary project folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "supervisor.toml"
        self.state = root / "state"
        self.config.write_text(BASE_CONFIG)
        self.process: subprocess.Popen[bytes] | None = None
        self.stderr_path = root / "router.stderr"
        self._clients: list[RouterClient] = []

    def write_config(self, extra: str) -> None:
        self.config.write_text(BASE_CONFIG + textwrap.dedent(extra))

    @property
    def endpoint(self) -> str:
        return f"ipc://{self.state / 'router.sock'}"

    def start(self, *, wait: bool = True) -> None:
        assert self.process is None or self.process.poll() is not None
        admin = self.state / "router-admin.sock"
        if admin.exists():
            admin.unlink()
        with open(self.stderr_path, "ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "host", "router", "--config", str(self.config)],
                cwd=self.root, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                env={k: v for k, v in os.environ.items() if k != "TRADEHOST_CONFIG"},
            )
        if wait:
            wait_for(lambda: admin.exists() or self.process.poll() is not None, 20, message="router to listen")
            assert self.process.poll() is None, self.stderr()
            wait_for(self._answers, 10, message="router to answer")

    def _answers(self) -> bool:
        try:
            self.client("probe", 0).call("ping", {}, timeout=0.5)
            return True
        except Exception:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(20)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def tokens(self) -> RunTokens:
        return RunTokens(bytes.fromhex((self.state / "router.key").read_text().strip()))

    def client(self, strategy: str, run_id: int = 1, *, timeout: float = 5.0, resend_interval: float = 1.0) -> RouterClient:
        client = RouterClient(self.endpoint, self.tokens().mint(strategy, run_id), request_prefix=f"r{run_id}", timeout=timeout, resend_interval=resend_interval)
        self._clients.append(client)
        return client

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "host", *args, "--config", str(self.config)],
            cwd=self.root, capture_output=True, text=True, timeout=60, input=input,
        )

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.state / "tradehost.db") as conn:
            return conn.execute(sql, params).fetchall()

    def close(self) -> None:
        for client in self._clients:
            client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def router() -> Iterator[RouterProc]:
    root = Path(tempfile.mkdtemp(prefix="thr-", dir="/tmp"))
    proc = RouterProc(root)
    try:
        yield proc
    finally:
        proc.close()
        shutil.rmtree(root, ignore_errors=True)
