"""host/monitor.py: which limit a run has broken (pure)."""

from __future__ import annotations

from host.monitor import Usage, check_limits
from host.settings import resolve_settings

MiB = 1024 * 1024


def test_within_limits() -> None:
    settings = resolve_settings({"timeout": 10, "memory": 100, "max_procs": 4})
    assert check_limits(settings, elapsed=9.9, usage=Usage(4, 100 * MiB)) is None
    assert check_limits(settings, elapsed=1, usage=None) is None


def test_timeout_gets_a_grace_period() -> None:
    reason, kill_now = check_limits(resolve_settings({"timeout": 10}), elapsed=10.5, usage=None)  # type: ignore[misc]
    assert reason.kind == "timeout" and reason.is_failure and not kill_now
    assert reason.text == "timeout: still running after 10 s"


def test_continuous_runs_have_no_timeout() -> None:
    assert check_limits(resolve_settings({"schedule": "@continuous", "timeout": 1}), elapsed=3600, usage=None) is None


def test_memory_and_process_limits_kill_at_once() -> None:
    settings = resolve_settings({"memory": 100, "max_procs": 4})
    memory, kill_now = check_limits(settings, elapsed=0, usage=Usage(1, 101 * MiB))  # type: ignore[misc]
    assert memory.kind == "memory" and kill_now and "memory limit 100 MiB exceeded (resident 101 MiB)" == memory.text
    procs, kill_now = check_limits(settings, elapsed=0, usage=Usage(5, MiB))  # type: ignore[misc]
    assert procs.kind == "procs" and kill_now and procs.text == "process limit 4 exceeded (5 processes)"


def test_no_memory_limit() -> None:
    assert check_limits(resolve_settings({"memory": None}), elapsed=0, usage=Usage(1, 10**12)) is None
