"""Load a run's target and call it, inside the confined child process.

A scheduled run is forked a little ahead of its slot: it imports the
strategy, then sleeps until ``start_at`` so that ``run()`` begins on time.
The child reports two events on the status descriptor, one JSON line each:
``{"event": "entered", "t": ...}`` just before ``run()`` is called, and
``{"event": "result", ...}`` with the outcome. The exit code says the rest:
0 success (or stopped on request), 1 ``run()`` raised, 2 the strategy could
not be loaded.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import logging
import os
import signal
import sys
import time
import traceback
import types
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from types import FrameType
from typing import Any

from .child import STATUS_FD
from .context import Context
from .errors import StopRequested
from .runchannel import RunChannelClient
from .trading.client import RouterClient

__all__ = ["EXIT_FAILED", "EXIT_LOAD_ERROR", "EXIT_OK", "NAMESPACE", "error_summary", "load_target", "run_target"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_LOAD_ERROR = 2
_MAX_SUMMARY = 500


def error_summary(exc: BaseException) -> str:
    """The exception's last traceback line, e.g. ``ValueError: boom``, on one line."""
    lines = traceback.format_exception_only(type(exc), exc)
    notes = getattr(exc, "__notes__", None)
    # Notes (add_note) are printed after the "Type: message" line; skip them.
    skip = len(notes) if isinstance(notes, (list, tuple)) and len(notes) < len(lines) else 0
    line = lines[-1 - skip].strip()
    line = " ".join(line.split())
    return line if len(line) <= _MAX_SUMMARY else line[: _MAX_SUMMARY - 1] + "…"


SANDBOX_HINT = " (the run sandbox keeps state/, the project folder and the host's code from runs; [host] writable opens folders)"


def failure_summary(exc: BaseException, *, sandboxed: bool) -> str:
    """:func:`error_summary`, saying why when the run sandbox refused a file (pure)."""
    summary = error_summary(exc)
    if sandboxed and isinstance(exc, PermissionError) and exc.filename is not None:
        return summary[: _MAX_SUMMARY - len(SANDBOX_HINT)] + SANDBOX_HINT
    return summary


class _LineHandler(logging.Handler):
    """Writes each record with one ``write`` so lines from several processes never interleave."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record).replace("\n", "\n  ") + "\n"
            os.write(self._fd, text.encode("utf-8", "backslashreplace"))
        except Exception:
            self.handleError(record)


def _report(event: Mapping[str, Any]) -> None:
    try:
        os.write(STATUS_FD, (json.dumps(event) + "\n").encode())
    except OSError:
        pass  # nobody is listening any more; the exit code still tells


NAMESPACE = "tradehost_strategies"
"""Strategies are imported as ``tradehost_strategies.NAME``, so none can shadow a real module."""


def load_target(target: Mapping[str, Any]) -> Callable[..., Any]:
    """Import a strategy file (or package) by path and return its ``run``."""
    path = target["path"]
    folder = target["strategies_dir"]
    if folder not in sys.path:
        # Last, not first: helpers such as strategies/_common.py are importable,
        # but a strategy called statistics.py must not hide the standard library.
        sys.path.append(folder)
    if NAMESPACE not in sys.modules:
        namespace = types.ModuleType(NAMESPACE)
        namespace.__path__ = []
        sys.modules[NAMESPACE] = namespace
    name = f"{NAMESPACE}.{target['name']}"
    locations = [os.path.dirname(path)] if target.get("package") else None
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=locations)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    run = getattr(module, "run", None)
    if not callable(run):
        raise AttributeError(f"{path} defines no callable run()")
    return run


def _wants_context(run: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(run).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    return bool(positional)


def _bind(run: Callable[..., Any], ctx: Context) -> Callable[[], None]:
    """Return a no-argument callable for ``run``; inspecting the signature is done before the slot."""
    takes_ctx = _wants_context(run)

    def call() -> None:
        result = run(ctx) if takes_ctx else run()
        if inspect.isawaitable(result):
            asyncio.run(_await(result))

    return call


async def _await(awaitable: Any) -> None:
    await awaitable


def _wait_until(start_at: float | None) -> None:
    """Sleep until the run's slot: a scheduled run is started ahead of it, already imported."""
    if start_at is None:
        return
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)


def _install_stop_handler(ctx: Context) -> None:
    def on_term(_signum: int, _frame: FrameType | None) -> None:
        if not ctx.stopping.is_set():
            ctx.stopping.set()
            raise StopRequested("stop requested by the supervisor")

    signal.signal(signal.SIGTERM, on_term)


def _router_client(request: Mapping[str, Any]) -> RouterClient | None:
    router = request.get("router")
    if not router:
        return None
    return RouterClient(router["endpoint"], request["token"], request_prefix=f"r{request['run_id']}", timeout=router.get("timeout", 10.0))


def run_target(request: Mapping[str, Any]) -> int:
    """Run one strategy run to completion in this process; return the exit code."""
    logging.basicConfig(level=logging.INFO, handlers=[_LineHandler(2)], format="%(levelname)s %(name)s: %(message)s", force=True)
    scheduled = request.get("scheduled_at")
    ctx = Context(
        name=request["name"],
        run_id=request["run_id"],
        trigger=request["trigger"],
        scheduled_at=None if scheduled is None else datetime.fromtimestamp(scheduled, timezone.utc),
        settings=request.get("settings", {}),
        channel=RunChannelClient(request["run_endpoint"], request["token"]),
        router=_router_client(request),
    )
    _install_stop_handler(ctx)
    sandboxed = request.get("protect") is not None
    try:
        try:
            run = load_target(request["target"])
        except StopRequested:
            _report({"event": "result", "outcome": "stopped"})
            return EXIT_OK
        except BaseException as exc:
            traceback.print_exc()
            _report({"event": "result", "outcome": "load_error", "error": failure_summary(exc, sandboxed=sandboxed)})
            return EXIT_LOAD_ERROR
        call = _bind(run, ctx)
        try:
            _wait_until(request.get("start_at"))
            _report({"event": "entered", "t": time.time()})
            call()
        except StopRequested:
            _report({"event": "result", "outcome": "stopped"})
            return EXIT_OK
        except SystemExit as exc:
            if exc.code in (None, 0):
                _report({"event": "result", "outcome": "ok"})
                return EXIT_OK
            _report({"event": "result", "outcome": "failed", "error": error_summary(exc)})
            return exc.code if isinstance(exc.code, int) and 0 < exc.code < 256 else EXIT_FAILED
        except BaseException as exc:
            traceback.print_exc()
            _report({"event": "result", "outcome": "failed", "error": failure_summary(exc, sandboxed=sandboxed)})
            return EXIT_FAILED
        _report({"event": "result", "outcome": "ok"})
        return EXIT_OK
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        ctx.close()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
