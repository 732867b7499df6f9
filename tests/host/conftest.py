"""A real host for end-to-end tests: a project folder, a `tradehost run` process, the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from host.cli import main as cli_main

REPO = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


class Host:
    """One project folder with its own supervisor.toml, strategies/ and state/."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.strategies = root / "strategies"
        self.strategies.mkdir()
        self.config = root / "supervisor.toml"
        # The router has its own end-to-end tests (tests/router); host tests run without it unless they ask.
        self.config.write_text('[host]\nwatch_interval = 0.1\ndebounce = 0.2\n[router]\nenabled = false\n')
        self.state = root / "state"
        self.process: subprocess.Popen[bytes] | None = None
        self.stderr_path = root / "supervisor.stderr"
        self.env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "TRADEHOST_CONFIG")}

    # -- files ---------------------------------------------------------------

    def write_strategy(self, name: str, source: str) -> Path:
        path = self.strategies / f"{name}.py"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(textwrap.dedent(source))
        os.replace(tmp, path)  # appear atomically, as an editor's save does
        return path

    def write_config(self, text: str) -> None:
        self.config.write_text(textwrap.dedent(text))

    # -- processes -----------------------------------------------------------

    def start(self, *, env: dict[str, str] | None = None, wait: bool = True) -> subprocess.Popen[bytes]:
        assert self.process is None or self.process.poll() is not None
        stderr = open(self.stderr_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "host", "run", "--config", str(self.config)],
            cwd=self.root,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
        stderr.close()
        if wait:
            wait_for(lambda: self.cli("status").returncode == 0 or self.process.poll() is not None, 20, message="supervisor to answer")
            assert self.process.poll() is None, self.stderr()
        return self.process

    def stop(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "host", *args, "--config", str(self.config)],
            cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout,
        )

    def cli_here(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The same command run in this process: the verbs' own code, without an interpreter start per call.

        For the many status polls of waiting tests; ``cli`` runs the real entry point."""
        out, err = io.StringIO(), io.StringIO()
        argv = [*args, "--config", str(self.config)]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli_main(argv)
            except SystemExit as exc:  # argparse refusing the arguments
                code = exc.code if isinstance(exc.code, int) else 2
        return subprocess.CompletedProcess(["tradehost", *argv], code, out.getvalue(), err.getvalue())

    def status(self) -> dict[str, dict[str, Any]]:
        result = self.cli_here("status", "--json")
        assert result.returncode == 0, result.stderr
        return {row["name"]: row for row in json.loads(result.stdout)}

    def wait_state(self, name: str, *states: str, timeout: float = 10.0) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            row = self.status().get(name)
            return row if row is not None and row["state"] in states else None

        return wait_for(check, timeout, 0.1, f"{name} to be {'/'.join(states)} (now {self.status().get(name)})")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def log(self, name: str) -> str:
        path = self.state / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- database ------------------------------------------------------------

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        connection = sqlite3.connect(self.state / "tradehost.db", timeout=10)
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def runs(self, name: str) -> list[dict[str, Any]]:
        connection = sqlite3.connect(self.state / "tradehost.db", timeout=10)
        connection.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in connection.execute("SELECT * FROM runs WHERE strategy = ? ORDER BY id", (name,))]
        finally:
            connection.close()

    def finished_runs(self, name: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        def check() -> list[dict[str, Any]] | None:
            done = [run for run in self.runs(name) if run["ended_at"] is not None]
            return done if len(done) >= count else None

        return wait_for(check, timeout, 0.1, f"{count} finished run(s) of {name}")

    def host_processes(self) -> list[psutil.Process]:
        """Every live process started for this host (they carry its state dir in their environment)."""
        found = []
        for process in psutil.process_iter():
            try:
                if process.environ().get("TRADEHOST_STATE_DIR") == str(self.state) and process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process)
            except (psutil.Error, OSError):
                continue
        return found


@pytest.fixture
def host() -> Iterator[Host]:
    # Unix socket paths are limited to ~100 characters: keep the folder short.
    root = Path(tempfile.mkdtemp(prefix="th-", dir="/tmp"))
    made = Host(root)
    try:
        yield made
    finally:
        if made.process is not None and made.process.poll() is None:
            made.process.send_signal(signal.SIGTERM)
            try:
                made.process.wait(30)
            except subprocess.TimeoutExpired:
                made.process.kill()
                made.process.wait()
        for process in made.host_processes():
            process.kill()
        shutil.rmtree(root, ignore_errors=True)
