"""Tests for host.runner: error_summary, load_target and run_target in a forked child."""

from __future__ import annotations

import io
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from host.child import STATUS_FD
from host.runner import EXIT_FAILED, EXIT_LOAD_ERROR, EXIT_OK, SANDBOX_HINT, error_summary, failure_summary, load_target, run_target

# ------------------------------------------------------------ error_summary


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_error_summary_is_type_and_message() -> None:
    assert error_summary(raised(ValueError("boom"))) == "ValueError: boom"
    assert error_summary(raised(KeyError("k"))) == "KeyError: 'k'"
    assert error_summary(RuntimeError()) == "RuntimeError"


def test_a_refused_file_in_a_sandboxed_run_says_why() -> None:
    refused = PermissionError(13, "Permission denied", "/srv/app/out.csv")
    assert failure_summary(refused, sandboxed=True) == "PermissionError: [Errno 13] Permission denied: '/srv/app/out.csv'" + SANDBOX_HINT
    assert failure_summary(refused, sandboxed=False) == error_summary(refused)
    assert failure_summary(PermissionError("not a file"), sandboxed=True) == "PermissionError: not a file"
    long = PermissionError(13, "Permission denied", "/x" * 400)
    assert len(failure_summary(long, sandboxed=True)) <= 500 and failure_summary(long, sandboxed=True).endswith(SANDBOX_HINT)


def test_error_summary_is_one_line() -> None:
    assert error_summary(ValueError("first line\n  second\tline\n")) == "ValueError: first line second line"


def test_error_summary_of_a_syntax_error_is_its_last_line() -> None:
    try:
        compile("def run(:\n    pass\n", "bad.py", "exec")
    except SyntaxError as exc:
        summary = error_summary(exc)
    assert summary.startswith("SyntaxError: ")
    assert "\n" not in summary


def test_error_summary_is_truncated_to_500_characters() -> None:
    summary = error_summary(ValueError("x" * 2000))
    assert len(summary) == 500
    assert summary.startswith("ValueError: xxx")
    assert summary.endswith("…")
    exact = "ValueError: " + "y" * (500 - len("ValueError: "))
    assert error_summary(ValueError(exact[len("ValueError: "):])) == exact


def test_error_summary_of_module_qualified_exceptions() -> None:
    class Custom(Exception):
        pass

    assert error_summary(Custom("bad")).endswith("Custom: bad")


def test_error_summary_ignores_exception_notes() -> None:
    exc = ValueError("boom")
    exc.add_note("while pricing AAPL")
    assert error_summary(exc) == "ValueError: boom"


# ------------------------------------------------------------ load_target


@pytest.fixture
def strategies(tmp_path: Path) -> Iterator[Path]:
    """A strategies folder; sys.path and sys.modules are restored afterwards."""
    folder = tmp_path / "strategies"
    folder.mkdir()
    path_before = list(sys.path)
    modules_before = set(sys.modules)
    yield folder
    sys.path[:] = path_before
    for name in set(sys.modules) - modules_before:
        del sys.modules[name]


def target(folder: Path, name: str, *, package: bool = False) -> dict[str, Any]:
    path = folder / name / "__init__.py" if package else folder / f"{name}.py"
    return {"name": name, "path": str(path), "strategies_dir": str(folder), "package": package}


def write(path: Path, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


def test_load_target_from_a_file(strategies: Path) -> None:
    write(strategies / "lt_file.py", "VALUE = 7\ndef run():\n    return VALUE * 6\n")
    run = load_target(target(strategies, "lt_file"))
    assert run() == 42
    assert sys.modules["tradehost_strategies.lt_file"].VALUE == 7
    assert "lt_file" not in sys.modules
    assert sys.path[-1] == str(strategies), "appended: the standard library wins over a strategy's name"


def test_load_target_from_a_package_with_a_relative_import(strategies: Path) -> None:
    write(strategies / "lt_pkg" / "__init__.py", "from .util import helper\ndef run():\n    return helper()\n")
    write(strategies / "lt_pkg" / "util.py", "def helper():\n    return 'from util'\n")
    run = load_target(target(strategies, "lt_pkg", package=True))
    assert run() == "from util"
    assert "tradehost_strategies.lt_pkg.util" in sys.modules


def test_load_target_can_import_sibling_helpers(strategies: Path) -> None:
    write(strategies / "_lt_shared.py", "X = 'shared'\n")
    write(strategies / "lt_user.py", "import _lt_shared\ndef run():\n    return _lt_shared.X\n")
    assert load_target(target(strategies, "lt_user"))() == "shared"


def test_load_target_without_run(strategies: Path) -> None:
    write(strategies / "lt_norun.py", "run = 5\n")
    with pytest.raises(AttributeError, match="defines no callable run"):
        load_target(target(strategies, "lt_norun"))


def test_load_target_propagates_import_errors(strategies: Path) -> None:
    write(strategies / "lt_broken.py", "import does_not_exist_anywhere\ndef run(): pass\n")
    with pytest.raises(ModuleNotFoundError):
        load_target(target(strategies, "lt_broken"))
    with pytest.raises((FileNotFoundError, ImportError)):
        load_target(target(strategies, "lt_missing"))


# ------------------------------------------------------------ run_target in a forked child


@dataclass
class ChildRun:
    exit_code: int
    events: list[dict[str, Any]]
    stdout: str
    stderr: str

    @property
    def kinds(self) -> list[str]:
        return [e["event"] for e in self.events]

    @property
    def result(self) -> dict[str, Any]:
        [result] = [e for e in self.events if e["event"] == "result"]
        return result


@pytest.fixture(scope="module")
def nobody_endpoint() -> Iterator[str]:
    folder = tempfile.mkdtemp(dir="/tmp", prefix="rn")
    yield f"ipc://{folder}/nobody.sock"
    shutil.rmtree(folder, ignore_errors=True)


def make_request(strategies: Path, name: str, endpoint: str, *, package: bool = False, scheduled_at: float | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "run_id": 17,
        "trigger": "schedule" if scheduled_at is not None else "manual",
        "scheduled_at": scheduled_at,
        "settings": {"params": {"symbol": "AAPL"}},
        "run_endpoint": endpoint,
        "token": "unused",
        "target": target(strategies, name, package=package),
    }


def _drain(fds: dict[int, bytearray], deadline: float, until_line: int | None = None) -> None:
    """Read the pipes until all are closed, or until ``until_line`` has a full line."""
    open_fds = set(fds)
    while open_fds:
        if until_line is not None and b"\n" in fds[until_line]:
            return
        remaining = deadline - time.monotonic()
        assert remaining > 0, "the child did not finish in time"
        ready, _, _ = select.select(list(open_fds), [], [], remaining)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if chunk:
                fds[fd] += chunk
            else:
                open_fds.discard(fd)


def run_in_child(request: dict[str, Any], *, sigterm_after_entered: bool = False, timeout: float = 10.0) -> ChildRun:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    st_r, st_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # ---- child: never return into pytest
        code = 70
        try:
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            os.dup2(st_w, STATUS_FD)
            for fd in (out_r, out_w, err_r, err_w, st_r, st_w):
                if fd > STATUS_FD:
                    os.close(fd)
            sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
            sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            code = run_target(request)
        except BaseException:
            try:
                os.write(2, traceback.format_exc().encode())
            except BaseException:
                pass
        finally:
            os._exit(code)

    for fd in (out_w, err_w, st_w):
        os.close(fd)
    buffers = {out_r: bytearray(), err_r: bytearray(), st_r: bytearray()}
    deadline = time.monotonic() + timeout
    try:
        if sigterm_after_entered:
            _drain({st_r: buffers[st_r]}, deadline, until_line=st_r)
            assert json.loads(buffers[st_r].split(b"\n")[0])["event"] == "entered", buffers
            time.sleep(0.05)  # let run() get going
            os.kill(pid, signal.SIGTERM)
        _drain(buffers, deadline)
        _, status = os.waitpid(pid, 0)
        pid = 0
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        for fd in buffers:
            os.close(fd)
    events = [json.loads(line) for line in buffers[st_r].decode().splitlines()]
    return ChildRun(os.waitstatus_to_exitcode(status), events, buffers[out_r].decode(), buffers[err_r].decode())


def test_successful_run_with_ctx(strategies: Path, nobody_endpoint: str) -> None:
    write(
        strategies / "rt_ok.py",
        """
        def run(ctx):
            print(ctx.name, ctx.run_id, ctx.trigger, ctx.params["symbol"], ctx.scheduled_at.isoformat())
            ctx.logger.info("logged %d", 5)
        """,
    )
    before = time.time()
    run = run_in_child(make_request(strategies, "rt_ok", nobody_endpoint, scheduled_at=1_700_000_000.0))
    assert run.exit_code == EXIT_OK, run.stderr
    assert run.kinds == ["entered", "result"]
    assert before <= run.events[0]["t"] <= time.time()
    assert run.result == {"event": "result", "outcome": "ok"}
    assert run.stdout == "rt_ok 17 schedule AAPL 2023-11-14T22:13:20+00:00\n"
    assert "INFO strategy.rt_ok: logged 5" in run.stderr


def test_run_without_parameters_is_called_without_ctx(strategies: Path, nobody_endpoint: str) -> None:
    write(strategies / "rt_noarg.py", "def run():\n    print('no ctx')\n")
    run = run_in_child(make_request(strategies, "rt_noarg", nobody_endpoint))
    assert (run.exit_code, run.result["outcome"], run.stdout) == (EXIT_OK, "ok", "no ctx\n")


def test_raising_run_is_failed_with_summary(strategies: Path, nobody_endpoint: str) -> None:
    write(strategies / "rt_raise.py", "def run(ctx):\n    raise ValueError('boom')\n")
    run = run_in_child(make_request(strategies, "rt_raise", nobody_endpoint))
    assert run.exit_code == EXIT_FAILED
    assert run.kinds == ["entered", "result"]
    assert run.result == {"event": "result", "outcome": "failed", "error": "ValueError: boom"}
    assert "Traceback" in run.stderr and "ValueError: boom" in run.stderr


def test_syntax_error_at_import_is_a_load_error(strategies: Path, nobody_endpoint: str) -> None:
    write(strategies / "rt_syntax.py", "def run(ctx:\n    pass\n")
    run = run_in_child(make_request(strategies, "rt_syntax", nobody_endpoint))
    assert run.exit_code == EXIT_LOAD_ERROR
    assert run.kinds == ["result"]  # never entered
    assert run.result["outcome"] == "load_error"
    assert run.result["error"].startswith("SyntaxError: ")
    assert "SyntaxError" in run.stderr


def test_missing_run_is_a_load_error(strategies: Path, nobody_endpoint: str) -> None:
    write(strategies / "rt_norun.py", "X = 1\n")
    run = run_in_child(make_request(strategies, "rt_norun", nobody_endpoint))
    assert run.exit_code == EXIT_LOAD_ERROR
    assert run.result["outcome"] == "load_error"
    assert run.result["error"].startswith("AttributeError: ") and "defines no callable run()" in run.result["error"]


@pytest.mark.parametrize(("code", "exit_code", "outcome"), [(3, 3, "failed"), (0, 0, "ok"), (None, 0, "ok"), ("bye", 1, "failed"), (300, 1, "failed")])
def test_system_exit(strategies: Path, nobody_endpoint: str, code: object, exit_code: int, outcome: str) -> None:
    write(strategies / "rt_exit.py", f"import sys\ndef run(ctx):\n    sys.exit({code!r})\n")
    run = run_in_child(make_request(strategies, "rt_exit", nobody_endpoint))
    assert run.exit_code == exit_code
    assert run.result["outcome"] == outcome
    if outcome == "failed":
        assert run.result["error"] == f"SystemExit: {code}"


def test_sigterm_during_run_stops_it_cleanly(strategies: Path, nobody_endpoint: str) -> None:
    write(
        strategies / "rt_stop.py",
        """
        import time
        def run(ctx):
            try:
                try:
                    time.sleep(30)
                except Exception:
                    print("swallowed")  # StopRequested must not be caught by this
            finally:
                print("cleanup", ctx.stopping.is_set())
        """,
    )
    started = time.monotonic()
    run = run_in_child(make_request(strategies, "rt_stop", nobody_endpoint), sigterm_after_entered=True)
    assert time.monotonic() - started < 5
    assert run.exit_code == EXIT_OK, run.stderr
    assert run.kinds == ["entered", "result"]
    assert run.result == {"event": "result", "outcome": "stopped"}
    assert run.stdout == "cleanup True\n"


def test_sigterm_with_ctx_sleep_polling(strategies: Path, nobody_endpoint: str) -> None:
    write(
        strategies / "rt_poll.py",
        """
        def run(ctx):
            while ctx.sleep(0.01):
                pass
            print("never")
        """,
    )
    run = run_in_child(make_request(strategies, "rt_poll", nobody_endpoint), sigterm_after_entered=True)
    assert run.exit_code == EXIT_OK, run.stderr
    assert run.result["outcome"] == "stopped"


def test_async_run(strategies: Path, nobody_endpoint: str) -> None:
    write(
        strategies / "rt_async.py",
        """
        import asyncio
        async def run(ctx):
            await asyncio.sleep(0.01)
            print("async", ctx.name)
        """,
    )
    run = run_in_child(make_request(strategies, "rt_async", nobody_endpoint))
    assert run.exit_code == EXIT_OK, run.stderr
    assert run.kinds == ["entered", "result"]
    assert run.result["outcome"] == "ok"
    assert run.stdout == "async rt_async\n"


def test_async_run_that_raises(strategies: Path, nobody_endpoint: str) -> None:
    write(strategies / "rt_async_fail.py", "async def run(ctx):\n    raise KeyError('gone')\n")
    run = run_in_child(make_request(strategies, "rt_async_fail", nobody_endpoint))
    assert run.exit_code == EXIT_FAILED
    assert run.result["error"] == "KeyError: 'gone'"


def test_package_strategy_runs(strategies: Path, nobody_endpoint: str) -> None:
    write(strategies / "rt_pkg" / "__init__.py", "from .util import VALUE\ndef run(ctx):\n    print(VALUE)\n")
    write(strategies / "rt_pkg" / "util.py", "VALUE = 'pkg ok'\n")
    run = run_in_child(make_request(strategies, "rt_pkg", nobody_endpoint, package=True))
    assert run.exit_code == EXIT_OK, run.stderr
    assert run.stdout == "pkg ok\n"
