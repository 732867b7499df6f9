"""Tests for host.outcome: classify_exit, backoff_delay, Outcome.code, format_bytes."""

from __future__ import annotations

import signal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from host.outcome import Outcome, StopReason, backoff_delay, classify_exit, format_bytes


def exited(code: int) -> int:
    """A wait status for a normal exit with ``code``."""
    return code << 8


def killed(sig: int) -> int:
    """A wait status for death by signal ``sig`` (no core dump)."""
    return int(sig)


# --------------------------------------------------------------- classify_exit


def test_wait_status_helpers_match_the_kernel_encoding() -> None:
    import os

    assert os.waitstatus_to_exitcode(exited(3)) == 3
    assert os.waitstatus_to_exitcode(killed(signal.SIGKILL)) == -signal.SIGKILL


def test_failure_stop_reason_wins_over_everything() -> None:
    stop = StopReason("timeout", "ran longer than 5 s")
    out = classify_exit(killed(signal.SIGTERM), {"outcome": "ok"}, stop)
    assert out == Outcome("timeout", None, signal.SIGTERM, "ran longer than 5 s")
    assert out.failed


@pytest.mark.parametrize("kind", ["memory", "procs", "timeout"])
def test_each_failure_stop_kind_is_kept(kind: str) -> None:
    out = classify_exit(exited(0), None, StopReason(kind, "why"))
    assert out.outcome == kind and out.error == "why" and out.exit_code == 0 and out.signal is None


def test_operator_stop_is_stopped_whatever_the_exit() -> None:
    stop = StopReason("stopped", "operator")
    assert not stop.is_failure
    out = classify_exit(killed(signal.SIGKILL), {"outcome": "failed", "error": "X"}, stop)
    assert out == Outcome("stopped", None, signal.SIGKILL, None)
    assert not out.failed


def test_sigxcpu_is_cpu_with_the_limit_in_the_message() -> None:
    out = classify_exit(killed(signal.SIGXCPU), None, None, cpu_limit=2.5)
    assert out.outcome == "cpu"
    assert out.signal == signal.SIGXCPU and out.exit_code is None
    assert "2.5 s" in out.error and "SIGXCPU" in out.error


def test_sigxcpu_without_a_known_limit() -> None:
    out = classify_exit(killed(signal.SIGXCPU), None, None)
    assert out.outcome == "cpu"
    assert out.error == "CPU time limit exceeded (SIGXCPU)"


def test_other_signal_is_killed_with_its_name() -> None:
    out = classify_exit(killed(signal.SIGSEGV), {"outcome": "ok"}, None)
    assert out == Outcome("killed", None, signal.SIGSEGV, "killed by SIGSEGV")
    assert out.failed


def test_unknown_signal_number_is_named_by_number() -> None:
    out = classify_exit(killed(63), None, None)  # a realtime signal without an enum name
    assert out.outcome == "killed"
    assert out.signal == 63
    assert "63" in out.error


def test_memory_error_reported_by_the_child_is_memory() -> None:
    out = classify_exit(exited(1), {"outcome": "failed", "error": "MemoryError"}, None, memory_limit=256 * 1024**2)
    assert out.outcome == "memory"
    assert out.exit_code == 1
    assert out.error == "MemoryError (memory limit 256 MiB)"


def test_memory_error_without_a_limit() -> None:
    out = classify_exit(exited(1), {"outcome": "failed", "error": "MemoryError: big"}, None)
    assert out == Outcome("memory", 1, None, "MemoryError: big")


def test_reported_ok_and_exit_zero_is_ok() -> None:
    out = classify_exit(exited(0), {"outcome": "ok"}, None)
    assert out == Outcome("ok", 0, None, None)
    assert not out.failed


def test_reported_ok_but_nonzero_exit_is_failed() -> None:
    # e.g. an atexit handler or a non-daemon thread failing after run() returned
    out = classify_exit(exited(4), {"outcome": "ok"}, None)
    assert out == Outcome("failed", 4, None, "exited with code 4")


def test_reported_stopped_is_stopped() -> None:
    out = classify_exit(exited(0), {"outcome": "stopped"}, None)
    assert out == Outcome("stopped", 0, None, None)


def test_load_error_is_failed_with_prefix() -> None:
    out = classify_exit(exited(2), {"outcome": "load_error", "error": "SyntaxError: invalid syntax"}, None)
    assert out == Outcome("failed", 2, None, "could not load strategy: SyntaxError: invalid syntax")


def test_reported_error_is_failed_with_that_error() -> None:
    out = classify_exit(exited(1), {"outcome": "failed", "error": "ValueError: boom"}, None)
    assert out == Outcome("failed", 1, None, "ValueError: boom")


def test_no_report_and_exit_zero_is_ok() -> None:
    assert classify_exit(exited(0), None, None) == Outcome("ok", 0, None, None)


def test_no_report_and_nonzero_exit_is_failed() -> None:
    assert classify_exit(exited(70), None, None) == Outcome("failed", 70, None, "exited with code 70")
    assert classify_exit(exited(0), {}, None).outcome == "ok"


# --------------------------------------------------------------- Outcome.code


def test_code_is_exit_code() -> None:
    assert Outcome("failed", 3, None, None).code == 3
    assert Outcome("ok", 0, None, None).code == 0


def test_code_is_minus_signal() -> None:
    assert Outcome("killed", None, 9, None).code == -9


def test_code_is_none_when_unknown() -> None:
    assert Outcome("lost", None, None, "supervisor died").code is None


@pytest.mark.parametrize("outcome", ["failed", "timeout", "memory", "procs", "cpu", "killed", "lost"])
def test_failed_property(outcome: str) -> None:
    assert Outcome(outcome, None, None, None).failed


# --------------------------------------------------------------- backoff_delay


def test_backoff_doubles_from_base() -> None:
    assert [backoff_delay(n, 1.0, 100.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_backoff_is_capped() -> None:
    assert backoff_delay(10, 1.0, 60.0) == 60.0
    assert backoff_delay(7, 0.5, 30.0) == 30.0  # 0.5 * 64 = 32 > 30


def test_backoff_zero_or_negative_count_is_base() -> None:
    assert backoff_delay(0, 2.0, 60.0) == 2.0
    assert backoff_delay(-3, 2.0, 60.0) == 2.0


@given(st.integers(min_value=1, max_value=1000), st.floats(0.01, 100), st.floats(0.01, 1000))
def test_backoff_never_exceeds_cap_and_is_monotonic(n: int, base: float, cap: float) -> None:
    delay = backoff_delay(n, base, cap)
    assert delay <= cap
    assert delay == min(cap, base * 2 ** (n - 1))
    assert backoff_delay(n + 1, base, cap) >= delay


@pytest.mark.parametrize("n", [1025, 5000, 10**6])
def test_backoff_with_a_huge_failure_count_is_the_cap(n: int) -> None:
    # A continuous strategy failing more slowly than max_failures per failure_window
    # never becomes fatal, so its failure count can grow without bound.
    assert backoff_delay(n, 1.0, 60.0) == 60.0


def test_format_bytes() -> None:
    assert format_bytes(512 * 1024**2) == "512 MiB"
