"""``tradehost credentials`` and ``tradehost brokers`` through the real command and a real router process."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from host.router.audit import VerifyResult, verify
from host.trading.errors import InvalidRequest

from tests.router.conftest import RouterProc, router  # noqa: F401  (router: the fixture)

pytestmark = pytest.mark.e2e

TRADEHOST = Path(sys.executable).with_name("tradehost")
BROKERS = """
[brokers.paper]
type = "paper"

[brokers.fx]
type = "vault"
"""
API_KEY, API_SECRET, NEW_KEY = "ak-7Hq2-first-value", "as-Zp91-second-value", "ak-Lw3x-rotated-value"


@pytest.fixture
def env(plugin: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The router and the CLI find the vault broker type through its entry point; no key in the environment."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(plugin), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("TRADEHOST_CREDENTIALS_KEY", raising=False)
    monkeypatch.delenv("TRADEHOST_CONFIG", raising=False)
    yield dict(os.environ)


class Cli:
    """Runs ``.venv/bin/tradehost`` and keeps everything it printed."""

    def __init__(self, router: RouterProc) -> None:
        self.router = router
        self.printed: list[str] = []

    def __call__(self, *args: str, input: str = "", ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(TRADEHOST), *args, "--config", str(self.router.config)],
            cwd=self.router.root, capture_output=True, text=True, timeout=30, input=input,
        )
        self.printed += [result.stdout, result.stderr]
        assert (result.returncode == 0) == ok, result.stdout + result.stderr
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


def in_terminal(argv: list[str], cwd: Path, answers: list[tuple[bytes, str]], timeout: float = 20.0) -> tuple[int, bytes]:
    """Run ``argv`` on a new pseudo-terminal, typing each answer once its prompt appeared; exit code and transcript."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: only exec, nothing that could take a lock
        try:
            os.chdir(cwd)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    transcript, seen, deadline = b"", 0, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if answers and answers[0][0] in transcript[seen:]:
                prompt, answer = answers.pop(0)
                seen = transcript.index(prompt, seen) + len(prompt)
                os.write(fd, answer.encode() + b"\n")
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                transcript += chunk
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), transcript


def secrets_digest(**values: str) -> str:
    return hashlib.sha256(json.dumps(dict(sorted(values.items()))).encode()).hexdigest()


def verify_trail(router: RouterProc) -> VerifyResult:
    """What `tradehost audit verify` checks, on the router's database."""
    engine = create_engine(f"sqlite:///{router.state / 'tradehost.db'}")
    try:
        return verify(engine)
    finally:
        engine.dispose()


def brokers_by_name(cli: Cli) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in cli.json("brokers")}


def test_credentials_with_and_without_a_router_are_audited_and_never_leak(router: RouterProc, env: dict[str, str]) -> None:  # noqa: F811
    router.write_config(BROKERS)
    cli = Cli(router)

    # No router: the CLI writes the value and its audit row itself, under the router's lock.
    stored = cli("credentials", "set", "fx", "api_key", input=API_KEY + "\n")
    assert stored.stdout.strip().endswith("; the router reads it when it starts")
    offline = brokers_by_name(cli)
    assert offline["fx"] | {"capabilities": None} == {
        "name": "fx", "type": "vault", "environment": None, "router_running": False, "started": False, "connected": False,
        "last_call_ms": None, "last_call_at": None, "capabilities": None, "instruments": None,
    }

    # A broker without all its credentials keeps the router from starting, naming the command.
    router.start(wait=False)
    assert router.process is not None and router.process.wait(20) != 0
    assert "broker fx needs the credential 'api_secret': run `tradehost credentials set fx api_secret`" in router.stderr()

    # From a terminal: asked twice, never echoed.
    code, transcript = in_terminal(
        [str(TRADEHOST), "credentials", "set", "fx", "api_secret", "--config", str(router.config)], router.root,
        [(b"fx api_secret: ", API_SECRET), (b"fx api_secret (again): ", API_SECRET)],
    )
    assert code == 0, transcript
    assert API_SECRET.encode() not in transcript and b"fx api_secret stored" in transcript

    # The router lends the adapter exactly what was stored; every broker call's latency is kept.
    router.start()
    strategy = router.client("sma")
    strategy.call("order.place", {"instrument": "EUR_USD", "side": "BUY", "quantity": "1000", "broker": "paper"})
    with pytest.raises(InvalidRequest, match="operation 'credentials' is not allowed on this socket"):
        strategy.call("credentials", {"action": "set", "broker": "fx", "field": "api_key", "value": "from-a-strategy"})
    running = brokers_by_name(cli)
    assert running["fx"]["adapter"]["secrets_sha256"] == secrets_digest(api_key=API_KEY, api_secret=API_SECRET)
    assert {k: running["fx"][k] for k in ("type", "environment", "router_running", "started", "connected", "instruments", "last_call_ms")} == {
        "type": "vault", "environment": "practice", "router_running": True, "started": True, "connected": True, "instruments": 9, "last_call_ms": None,
    }
    assert running["paper"]["last_call_ms"] > 0 and running["paper"]["last_call_at"].endswith("+00:00")
    assert running["paper"]["capabilities"]["modify"] is True

    # With the router running, the CLI sends each change over the admin socket.
    assert cli("credentials", "rotate", "fx", "api_key", input=NEW_KEY + "\n").stdout.strip().endswith("the router uses it from its next start")
    rotation = cli.json("credentials", "rotate", "--key")
    assert rotation["values"] == 2 and "router" not in rotation
    cli("credentials", "delete", "fx", "api_secret")
    refused = cli("credentials", "delete", "fx", "api_secret", ok=False)
    assert "broker fx has no stored api_secret" in refused.stderr
    listed = {row["field"]: row for row in cli.json("credentials", "list")}
    assert (listed["api_key"]["status"], listed["api_key"]["key_id"], listed["api_secret"]["status"]) == ("set", rotation["to"], "missing")
    cli("credentials", "set", "fx", "api_secret", input=API_SECRET + "\n")
    cmdline = Path(f"/proc/{router.process.pid}/cmdline").read_bytes()

    # A restart reads the rotated values under the new key.
    assert router.stop() == 0
    router.start()
    assert brokers_by_name(cli)["fx"]["adapter"]["secrets_sha256"] == secrets_digest(api_key=NEW_KEY, api_secret=API_SECRET)
    assert router.stop() == 0

    kinds = [row[0] for row in router.query("SELECT kind FROM audit WHERE kind LIKE 'credentials.%' ORDER BY seq")]
    assert kinds == [
        "credentials.set", "credentials.missing", "credentials.set", "credentials.read", "credentials.read",
        "credentials.rotate", "credentials.rotate_key", "credentials.delete", "credentials.refused", "credentials.set",
        "credentials.read", "credentials.read",
    ]
    offline_rows = router.query("SELECT detail FROM audit WHERE kind = 'credentials.set' ORDER BY seq")
    assert [json.loads(d).get("router") for (d,) in offline_rows] == ["not running", "not running", None]
    assert verify_trail(router).ok

    values = (API_KEY, API_SECRET, NEW_KEY, "from-a-strategy")
    database = b"".join(p.read_bytes() for p in router.state.glob("tradehost.db*"))
    for value in values:
        assert value.encode() not in database
        assert value not in router.stderr()
        assert not any(value in text for text in cli.printed)
        assert value.encode() not in cmdline
    assert oct(router.state.joinpath("credentials.key").stat().st_mode & 0o777) == "0o600"
