"""The mechanics of runs: start a recorded run's process, follow it, stop it, reap it.

``RunController`` owns everything between "this run is recorded" and "this run
has ended": the pipes, the per-run token, the status stream, the grace-period
timers, the limit monitor and the final record. What happens next (idle,
restart, back off, give up) is the supervisor's decision, made in the
``on_ended`` callback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from . import proctable
from .launcher import ForkServerError, Launcher
from .lifecycle import State
from .logpump import LogPump
from .monitor import Usage, check_limits
from .outcome import Outcome, StopReason, classify_exit, format_bytes, signal_name
from .runtime import ActiveRun, StrategyRuntime, parse_status
from .store import Store

__all__ = ["RunController"]

log = logging.getLogger("tradehost.runs")

_START_TIMEOUT = 15.0
"""Seconds the fork server may take to report a launched run's pid."""
_MAX_STATUS_BYTES = 1024 * 1024
_SCANS_AFTER_EXIT = 12

EndedCallback = Callable[[StrategyRuntime, ActiveRun, Outcome, float], None]


class RunController:
    """Starts, watches, stops and records the runs of all strategies."""

    def __init__(
        self,
        *,
        store: Store,
        launcher: Launcher,
        logpump: LogPump,
        request_for: Callable[[StrategyRuntime, int, str, float | None, str], dict[str, Any]],
        on_ended: EndedCallback,
        on_changed: Callable[[], None],
        mint_token: Callable[[str, int], str],
    ) -> None:
        self._store = store
        self._launcher = launcher
        self._logpump = logpump
        self._request_for = request_for
        self._on_ended = on_ended
        self._on_changed = on_changed
        self._mint = mint_token
        self._loop = asyncio.get_running_loop()
        self.active: dict[int, StrategyRuntime] = {}
        self.tokens: dict[str, str] = {}
        """Live run tokens → strategy name, for the run channel."""
        self._scans_left = 0

    # -- starting ------------------------------------------------------------

    def spawn(self, rt: StrategyRuntime, run_id: int, trigger: str, scheduled_at: float | None, started: float) -> ActiveRun | None:
        """Start the process of a recorded run; on failure the run is recorded as failed."""
        spec = rt.spec
        assert spec is not None and rt.run is None
        token = self._mint(rt.name, run_id)
        pipes: list[int] = []
        try:
            for _ in range(3):
                pipes.extend(os.pipe())
            out_r, out_w, err_r, err_w, status_r, status_w = pipes
            self._launcher.launch(self._request_for(rt, run_id, trigger, scheduled_at, token), [out_w, err_w, status_w])
            for fd in (out_w, err_w, status_w):
                os.close(fd)
        except (ForkServerError, OSError) as exc:
            for fd in pipes:
                _close_quietly(fd)
            self._record_failed_launch(rt, run_id, f"could not launch: {exc}")
            return None
        now = time.monotonic()
        ahead = max(0.0, scheduled_at - started) if trigger == "schedule" and scheduled_at is not None else 0.0
        run = ActiveRun(
            id=run_id, trigger=trigger, scheduled_at=scheduled_at, started_at=started, started_mono=now,
            clock_start=now + ahead, token=token, status_fd=status_r, spec=spec,
        )
        rt.run = run
        rt.runs += 1
        self.active[run_id] = rt
        self.tokens[token] = rt.name
        self._logpump.add(rt.name, run_id, out_r, err_r)
        os.set_blocking(status_r, False)
        self._loop.add_reader(status_r, self._read_status, rt, run)
        rt.set_state(State.STARTING)
        self._on_changed()
        return run

    def _record_failed_launch(self, rt: StrategyRuntime, run_id: int, error: str) -> None:
        self._store.finish_run(run_id, ended_at=time.time(), entered_at=None, pid=None, exit_code=None, signal=None, peak_rss=None, outcome="failed", error=error)
        rt.last_outcome, rt.last_error, rt.last_exit_code = "failed", error, None
        log.error("%s: %s", rt.name, error)

    # -- following -----------------------------------------------------------

    def _read_status(self, rt: StrategyRuntime, run: ActiveRun) -> None:
        try:
            data = os.read(run.status_fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._loop.remove_reader(run.status_fd)
            return
        self._take_status(rt, run, data)

    def _take_status(self, rt: StrategyRuntime, run: ActiveRun, data: bytes) -> None:
        run.status_bytes += len(data)
        events, run.status_buffer = parse_status(run.status_buffer + data)
        for event in events:
            if event["event"] == "entered" and run.entered_at is None:
                run.entered_at = event["t"]
                if rt.state is State.STARTING:
                    rt.set_state(State.RUNNING)
                    self._on_changed()
            elif event["event"] == "result" and run.result is None:
                run.result = event
        if run.result is not None or run.status_bytes > _MAX_STATUS_BYTES:
            # Nothing more is expected; a process that keeps writing is only burning our CPU.
            self._loop.remove_reader(run.status_fd)

    def on_forkserver_message(self, message: dict[str, Any]) -> None:
        rt = self.active.get(message.get("run_id", -1))
        if rt is None or rt.run is None:
            return
        run = rt.run
        op = message.get("op")
        if op == "started":
            run.pid = int(message["pid"])
        elif op == "exited":
            self._finish(rt, run, int(message["status"]), int(message.get("maxrss") or 0))
        elif op == "failed":
            run.result = {"outcome": "failed", "error": str(message.get("error"))}
            self._finish(rt, run, 1 << 8, 0)

    def forkserver_lost(self) -> None:
        """Every run died with the fork server (parent-death signal): record them as lost."""
        for rt in list(self.active.values()):
            if rt.run is not None:
                if rt.run.stop is None or rt.run.stop.by_operator:
                    rt.run.stop = StopReason("lost", "the fork server died")
                self._finish(rt, rt.run, signal.SIGKILL, 0)

    # -- ending --------------------------------------------------------------

    def _finish(self, rt: StrategyRuntime, run: ActiveRun, status: int, maxrss: int) -> None:
        """The run's leader is reaped (the fork server killed the rest of its group): record it."""
        outcome = Outcome("failed", None, None, "internal error while recording the run")
        ended = time.time()
        peak = max(run.peak_rss, maxrss) or None
        try:
            self._drain_status(rt, run)
            settings = run.spec.settings
            outcome = classify_exit(status, run.result, run.stop, memory_limit=settings.memory, cpu_limit=settings.cpu_time)
        except Exception:
            log.exception("%s: could not classify the end of run %d", rt.name, run.id)
        finally:
            # Whatever went wrong above, the run must not stay "active" for ever.
            if run.kill_timer is not None:
                run.kill_timer.cancel()
            self.active.pop(run.id, None)
            self.tokens.pop(run.token, None)
            rt.run = None
            if not run.done.done():
                run.done.set_result(None)
        self._scans_left = _SCANS_AFTER_EXIT
        try:
            self._store.finish_run(run.id, ended_at=ended, entered_at=run.entered_at, pid=run.pid, exit_code=outcome.exit_code, signal=outcome.signal, peak_rss=peak, outcome=outcome.outcome, error=outcome.error)
        except Exception:  # the database is busy or gone; the next start records the run as lost
            log.exception("%s: could not record the end of run %d", rt.name, run.id)
        rt.last_exit_code, rt.last_error, rt.last_outcome, rt.last_run_at = outcome.code, outcome.error, outcome.outcome, run.started_at
        summary = describe_end(run, outcome, ended, peak)
        (log.warning if outcome.failed else log.info)("%s: %s", rt.name, summary)
        self._loop.run_in_executor(None, self._note_after_drain, rt.name, run.id, summary)
        self._on_changed()
        self._on_ended(rt, run, outcome, ended - run.started_at)

    def _drain_status(self, rt: StrategyRuntime, run: ActiveRun) -> None:
        self._loop.remove_reader(run.status_fd)
        try:
            # One read: what the run reported before it exited is in the pipe; a
            # descendant still writing into it must not hold the supervisor here.
            self._take_status(rt, run, os.read(run.status_fd, 65536))
        except OSError:
            pass
        _close_quietly(run.status_fd)

    def _note_after_drain(self, name: str, run_id: int, text: str) -> None:
        self._logpump.wait_drained(run_id, 2.0)
        self._logpump.note(name, run_id, text)

    # -- stopping ------------------------------------------------------------

    def stop(self, rt: StrategyRuntime, reason: StopReason, *, kill_now: bool = False) -> None:
        """SIGTERM the run's process group, then SIGKILL after its grace period (or at once)."""
        run = rt.run
        if run is None:
            return
        if run.stop is None:
            run.stop = reason
        if rt.state in (State.STARTING, State.RUNNING):
            rt.set_state(State.STOPPING)
            self._on_changed()
        grace = run.spec.settings.grace
        if kill_now or grace <= 0:
            self._launcher_signal(run, signal.SIGKILL)
            return
        self._launcher_signal(run, signal.SIGTERM)
        if run.kill_timer is None:
            run.kill_timer = self._loop.call_later(grace, self._kill_after_grace, rt, run)

    def _kill_after_grace(self, rt: StrategyRuntime, run: ActiveRun) -> None:
        if rt.run is run:
            log.warning("%s: run %d still running %g s after SIGTERM; sending SIGKILL", rt.name, run.id, run.spec.settings.grace)
            self._launcher_signal(run, signal.SIGKILL)

    def _launcher_signal(self, run: ActiveRun, signum: int) -> None:
        try:
            self._launcher.signal(run.id, signum)
        except ForkServerError:
            pass  # no fork server, no runs: they died with it

    # -- limits --------------------------------------------------------------

    def monitor(self) -> None:
        """Enforce wall-clock, memory and process-count limits on every live run; spot strays."""
        if not self.active and self._scans_left <= 0:
            return
        self._scans_left -= 1
        processes = proctable.scan()
        now = time.monotonic()
        leaders = {rt.run.pid for rt in self.active.values() if rt.run is not None and rt.run.pid is not None}
        for rt in list(self.active.values()):
            run = rt.run
            if run is None:
                continue
            if run.pid is None:
                if now - run.started_mono > _START_TIMEOUT:
                    # The fork server is not doing its job (stopped, wedged): replace it.
                    log.error("%s: the fork server has not started run %d after %g s; restarting it", rt.name, run.id, _START_TIMEOUT)
                    self._launcher.kill()
                    return
                continue
            members = proctable.run_members(processes, run.pid)
            usage = Usage(len(members), sum(info.rss for info in members)) if members else None
            if usage is not None:
                run.peak_rss = max(run.peak_rss, usage.rss)
            if run.stop is not None and run.stop.is_failure:
                continue
            broken = check_limits(run.spec.settings, elapsed=now - run.clock_start, usage=usage)
            if broken is not None:
                reason, kill_now = broken
                log.warning("%s: run %d: %s", rt.name, run.id, reason.text)
                self.stop(rt, reason, kill_now=kill_now)
        server = self._launcher.pid
        if any(info.ppid == server and info.pid not in leaders and info.pgrp not in leaders for info in processes):
            # Escaped a run (setsid, then its parent died) and re-parented to the fork server.
            self._scans_left = _SCANS_AFTER_EXIT
            try:
                self._launcher.sweep()
            except ForkServerError:
                pass


def describe_end(run: ActiveRun, outcome: Outcome, ended: float, peak: int | None) -> str:
    """One line for the log: how a run ended."""
    parts = [f"run {run.id} ended: {outcome.outcome}"]
    if outcome.exit_code is not None:
        parts.append(f"exit code {outcome.exit_code}")
    elif outcome.signal is not None:
        parts.append(signal_name(outcome.signal))
    parts.append(f"after {ended - run.started_at:.3f} s")
    if peak:
        parts.append(f"peak memory {format_bytes(peak)}")
    text = ", ".join(parts)
    return f"{text} ({outcome.error})" if outcome.error else text


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
