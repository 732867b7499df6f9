"""The tradehost command: local verbs, rendering, and errors (control verbs are in test_supervisor.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from tests.host.conftest import Host

from host.commands.status import render_table


def test_service_prints_a_unit_that_systemd_accepts(host: Host) -> None:
    host.write_strategy("slowstop", "GRACE = 120\ndef run():\n    pass\n")
    result = host.cli("service", "--user", "trader")
    assert result.returncode == 0, result.stderr
    unit = result.stdout
    assert "Type=notify" in unit and "KillMode=mixed" in unit and "Restart=on-failure" in unit
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit and "WatchdogSec=" in unit and "User=trader" in unit
    assert f"--config {host.config}" in unit and f"WorkingDirectory={host.root}" in unit
    stop_timeout = int(unit.split("TimeoutStopSec=")[1].split()[0])
    assert stop_timeout > 120, "above the longest grace period, including one set in a strategy file"
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit_path = host.root / "tradehost-cli-test.service"
    unit_path.write_text(unit.replace("User=trader\n", ""))
    verify = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit_path)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    assert "tradehost-cli-test" not in verify.stderr, verify.stderr


def test_logs_without_a_supervisor(host: Host) -> None:
    host.write_strategy("quiet", "def run():\n    pass\n")
    missing = host.cli("logs", "quiet")
    assert missing.returncode == 1 and "has no log yet" in missing.stderr
    unknown = host.cli("logs", "nosuch")
    assert unknown.returncode == 1 and "unknown strategy 'nosuch'" in unknown.stderr
    (host.state / "logs").mkdir(parents=True)
    (host.state / "logs" / "quiet.log").write_text("".join(f"line {i}\n" for i in range(10)))
    shown = host.cli("logs", "quiet", "-n", "3")
    assert shown.returncode == 0 and shown.stdout.splitlines() == ["line 7", "line 8", "line 9"]


def test_missing_config_is_a_one_line_usage_error(tmp_path: object) -> None:
    result = subprocess.run([sys.executable, "-m", "host", "status", "--config", "/nonexistent/supervisor.toml"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "config file not found" in result.stderr


def test_run_refuses_a_broken_config_with_key_and_line(host: Host) -> None:
    host.write_config("[host]\nwatch_interval = 'fast'\n")
    result = host.cli("run")
    assert result.returncode == 2 and "supervisor.toml:2: host.watch_interval" in result.stderr


def test_status_table_rendering() -> None:
    rows = [
        {"name": "a", "state": "idle", "schedule": "* * * * *", "next_run": "2026-01-01T00:01:00+00:00", "pid": None, "runs": 3,
         "last_outcome": "failed", "last_exit_code": 1, "last_error": "ValueError: boom", "reason": None},
        {"name": "broken", "state": "invalid", "schedule": None, "next_run": None, "pid": None, "runs": 0,
         "last_outcome": None, "last_exit_code": None, "last_error": None, "reason": "strategies/broken.py:2: syntax error"},
    ]
    lines = render_table(rows).splitlines()
    assert lines[0].split() == ["NAME", "STATE", "SCHEDULE", "NEXT", "RUN", "(UTC)", "PID", "RUNS", "LAST"]
    assert "2026-01-01 00:01:00" in lines[1] and lines[1].endswith("failed (1): ValueError: boom")
    assert lines[2].endswith("strategies/broken.py:2: syntax error")
    assert render_table([]) == "no strategies"
