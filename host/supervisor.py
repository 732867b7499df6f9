"""The supervisor: registers strategies, fires their runs, confines and reaps them.

One asyncio event loop owns all state. Two threads feed it: APScheduler's
clock (``call_soon_threadsafe`` on every fire) and the log pump, which only
writes files. Processes are forked by the fork server (``launcher``), never
by this multi-threaded process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import secrets
import signal
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import zmq
import zmq.asyncio

from . import proctable
from .config import Config, load_config
from .errors import ConfigError, ControlError, StrategyFileError
from .launcher import ForkServerError, Launcher
from .lifecycle import State
from .logpump import LogPump
from .orphans import MARKER, kill_orphans
from .outcome import Outcome, StopReason, backoff_delay, classify_exit, format_bytes
from .runchannel import MAX_MESSAGE_BYTES, RunChannelHandler
from .runtime import ActiveRun, StrategyRuntime
from .schedule import CronSchedule, first_fire
from .scheduler import Scheduler
from .statedir import SupervisorLock, bind_private, prepare_state_dir, supervisor_pid
from .store import Store
from .strategy_file import StrategySource, StrategySpec, load_strategy
from .systemd import Notifier, child_environment, status_line
from .watcher import FolderWatcher

__all__ = ["Supervisor"]

log = logging.getLogger("tradehost.supervisor")

_MONITOR_INTERVAL = 0.25
_STATUS_INTERVAL = 1.0
_STRAY_SCANS_AFTER_EXIT = 8
_STOPPED = StopReason("stopped", "stopped by operator")


def _utc(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, timezone.utc)


def _signal_group(pid: int, signum: int) -> None:
    """Signal a run's whole process group (its pgid is its pid after setsid)."""
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        try:
            os.kill(pid, signum)  # not yet in its own group: it has not run setsid
        except ProcessLookupError:
            pass
    except PermissionError:
        log.warning("no permission to signal process group %d", pid)


class Supervisor:
    """Runs ``tradehost run``: everything between the config file and the processes."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.runtimes: dict[str, StrategyRuntime] = {}
        self.notifier = Notifier()
        self._active: dict[int, StrategyRuntime] = {}
        self._tokens: dict[str, str] = {}
        self._lock = SupervisorLock(config.lock_file)
        self._shutdown = asyncio.Event()
        self._shutting_down = False
        self._status_dirty = True
        self._stray_scans = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self._fire_queue: list[tuple[StrategyRuntime, float]] = []
        self._loop: asyncio.AbstractEventLoop
        self.store: Store
        self.logpump: LogPump
        self.launcher: Launcher
        self.scheduler: Scheduler
        self.watcher: FolderWatcher
        self.started_at = time.time()

    # -- entry point ---------------------------------------------------------

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; return the process exit code."""
        return asyncio.run(self._main())

    async def _main(self) -> int:
        self._loop = asyncio.get_running_loop()
        await self._start()
        try:
            await self._shutdown.wait()
        finally:
            await self._stop_everything()
        return 0

    async def _start(self) -> None:
        config = self.config
        os.umask(0o077)
        prepare_state_dir(config.host.state_dir)
        for sock in (config.control_socket, config.run_socket):
            if len(str(sock)) > 100:
                raise ConfigError(f"state_dir is too deep for a unix socket path ({len(str(sock))} > 100 characters): {sock}", path=str(config.path), key="host.state_dir")
        if not self._lock.acquire():
            pid = supervisor_pid(config.lock_file)
            raise ControlError(f"another supervisor (pid {pid}) is already running with state dir {config.host.state_dir}", code="ALREADY_RUNNING")
        state_dir = str(config.host.state_dir)
        killed = kill_orphans(state_dir)
        if killed:
            log.warning("killed %d process(es) left behind by an earlier supervisor", killed)
        self.store = Store(config.database_url)
        for lost in self.store.close_lost_runs(time.time(), "the supervisor exited while this run was active"):
            log.warning("%s: run %d was still active when the last supervisor exited; recorded as lost", lost.strategy, lost.id)
        self.logpump = LogPump(config.logs_dir, max_bytes=config.host.log_max_bytes, backups=config.host.log_backups)
        self.logpump.start()
        self.launcher = Launcher(
            preload=config.host.preload,
            env=self._base_environment(),
            on_message=self._on_forkserver_message,
            on_lost=self._on_forkserver_lost,
        )
        await self.launcher.start()
        threadsafe = self._loop.call_soon_threadsafe
        self.scheduler = Scheduler(
            on_fire=lambda name, slot: threadsafe(self._fire, name, slot),
            on_missed=lambda name, slot: threadsafe(self._missed, name, slot),
            lead=config.host.prelaunch,
        )
        self.scheduler.start()
        self.watcher = FolderWatcher(config.host.strategies_dir, debounce=config.host.debounce)
        counts = self.store.run_counts()
        last = self.store.last_runs()
        for name, source in sorted(self.watcher.prime().items()):
            self._apply_source(name, source, catch_up=True, history=(counts.get(name, 0), last.get(name)))
        self._tasks = [
            asyncio.create_task(self._serve_control(), name="control"),
            asyncio.create_task(self._serve_run_channel(), name="run-channel"),
            asyncio.create_task(self._every(config.host.watch_interval, self._watch), name="watch"),
            asyncio.create_task(self._every(_MONITOR_INTERVAL, self._monitor), name="monitor"),
            asyncio.create_task(self._every(_STATUS_INTERVAL, self._notify_status), name="status"),
        ]
        interval = self.notifier.watchdog_interval
        if interval is not None:
            self._tasks.append(asyncio.create_task(self._every(interval, self._watchdog), name="watchdog"))
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(signum, self.request_shutdown)
        self._loop.add_signal_handler(signal.SIGHUP, self._reload_from_signal)
        await asyncio.sleep(0)  # let the servers bind before announcing readiness
        self.notifier.ready(self._status_text())
        log.info("supervisor ready: %d strategies, pid %d, fork server pid %s", len(self.runtimes), os.getpid(), self.launcher.pid)

    def request_shutdown(self) -> None:
        """Begin an orderly stop of every run and the host."""
        if not self._shutdown.is_set():
            log.info("shutdown requested")
            self._shutdown.set()

    def _base_environment(self) -> dict[str, str]:
        env = child_environment(os.environ, self.config.host.scrub_env)
        env[MARKER] = str(self.config.host.state_dir)
        return env

    async def _every(self, interval: float, action: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                action()
            except Exception:
                log.exception("periodic task %s failed", getattr(action, "__name__", action))

    # -- registration --------------------------------------------------------

    def _apply_source(
        self,
        name: str,
        source: StrategySource,
        *,
        catch_up: bool = False,
        history: tuple[int, Any] | None = None,
    ) -> None:
        try:
            spec = load_strategy(source, defaults=self.config.defaults, overrides=self.config.strategies.get(name, {}))
            error = None
        except StrategyFileError as exc:
            spec, error = None, str(exc)
        self._apply(name, spec, error, str(source.path), catch_up=catch_up, history=history)

    def _apply(
        self,
        name: str,
        spec: StrategySpec | None,
        error: str | None,
        path: str,
        *,
        catch_up: bool,
        history: tuple[int, Any] | None = None,
    ) -> None:
        rt = self.runtimes.get(name)
        if rt is None:
            rt = StrategyRuntime(name=name, spec=None, path=path)
            self.runtimes[name] = rt
            self._load_history(rt, history)
            known = self.store.strategies().get(name)
            rt.enabled = known.enabled if known is not None else (spec.settings.enabled if spec is not None else True)
            rt.state = State.STOPPED
        elif not rt.removed and rt.spec == spec and rt.invalid_reason == error:
            return
        rt.removed = False
        rt.path = path
        self._status_dirty = True
        if error is not None:
            self._invalidate(rt, error)
            return
        assert spec is not None
        previous, was_invalid = rt.spec, rt.invalid_reason is not None or rt.spec is None
        rt.spec = spec
        rt.invalid_reason = None
        rt.enabled = self.store.ensure_strategy(name, enabled=spec.settings.enabled).enabled
        if previous is not None and previous.settings.is_continuous and not spec.settings.is_continuous and rt.run is not None:
            self._stop_run(rt, StopReason("stopped", "schedule changed from @continuous"))
        if rt.run is None and rt.state in (State.INVALID, State.STOPPED, State.IDLE):
            rt.set_state(rt.resting_state)
        if was_invalid or previous is None or _timing(previous) != _timing(spec):
            self._arm(rt, catch_up=catch_up)
        log.info("%s: registered (%s)", name, "new" if previous is None else "changed")

    def _invalidate(self, rt: StrategyRuntime, reason: str) -> None:
        rt.invalid_reason = reason
        log.error("%s: invalid: %s", rt.name, reason)
        self.store.record_event(rt.name, "invalid", reason)
        self.scheduler.unschedule(rt.name)
        self._cancel_backoff(rt)
        if rt.run is None:
            rt.set_state(State.INVALID)

    def _load_history(self, rt: StrategyRuntime, history: tuple[int, Any] | None) -> None:
        rt.runs, last = history if history is not None else self.store.history(rt.name)
        if last is not None:
            code = last.exit_code if last.exit_code is not None else (None if last.signal is None else -last.signal)
            rt.last_exit_code, rt.last_error, rt.last_outcome, rt.last_run_at = code, last.error, last.outcome, last.started_at

    def _arm(self, rt: StrategyRuntime, *, catch_up: bool) -> None:
        """Put the strategy on the clock (or start it) according to its spec and desired state."""
        spec = rt.spec
        self.scheduler.unschedule(rt.name)
        if spec is None or not rt.enabled or rt.invalid_reason is not None:
            return
        if isinstance(spec.schedule, CronSchedule):
            record = self.store.ensure_strategy(rt.name, enabled=rt.enabled)
            now = datetime.now(timezone.utc)
            since = max(filter(None, (record.last_slot, record.registered_at))) if catch_up else now.timestamp()
            first = first_fire(spec.schedule, now=now, since=_utc(since), misfire_grace=spec.settings.misfire_grace)
            self.scheduler.schedule(rt.name, spec.schedule, first=first, misfire_grace=spec.settings.misfire_grace, coalesce=spec.settings.coalesce)
        elif spec.settings.is_continuous and rt.run is None and rt.backoff_timer is None and rt.state is not State.FATAL:
            self._launch(rt, "continuous", None)

    def _remove(self, name: str) -> None:
        rt = self.runtimes.get(name)
        if rt is None:
            return
        log.info("%s: strategy file removed", name)
        rt.removed = True
        self.scheduler.unschedule(name)
        self._cancel_backoff(rt)
        rt.pending = None
        if rt.run is not None:
            self._stop_run(rt, StopReason("stopped", "strategy file removed"))
        else:
            self._forget(rt)

    def _forget(self, rt: StrategyRuntime) -> None:
        self.runtimes.pop(rt.name, None)
        self.logpump.close_strategy(rt.name)
        self.store.record_event(rt.name, "removed", "strategy file removed; unregistered")
        self._status_dirty = True

    def _watch(self) -> None:
        changes = self.watcher.poll(time.monotonic())
        if not changes:
            return
        for name in sorted(changes.added | changes.changed):
            self._apply_source(name, self.watcher.sources[name])
        for name in sorted(changes.removed):
            self._remove(name)

    # -- firing and launching ------------------------------------------------

    def _fire(self, name: str, slot: datetime) -> None:
        """The scheduler says ``slot`` is due (``prelaunch`` seconds early)."""
        rt = self._schedulable(name)
        if rt is None:
            return
        if rt.run is not None:
            # Overlap is decided at the slot itself: the current run may still end in time.
            delay = max(0.0, slot.timestamp() - time.time())
            self._loop.call_later(delay, self._fire_at_slot, name, slot)
            return
        self._queue_launch(rt, slot.timestamp())

    def _fire_at_slot(self, name: str, slot: datetime) -> None:
        rt = self._schedulable(name)
        if rt is None:
            return
        if rt.run is None:
            self._queue_launch(rt, slot.timestamp())
            return
        assert rt.spec is not None
        if rt.spec.settings.overlap == "replace":
            rt.pending = ("schedule", slot.timestamp())
            self._stop_run(rt, StopReason("stopped", f"replaced by the run for slot {slot.isoformat()}"))
            return
        reason = f"slot {slot.isoformat()} skipped: run {rt.run.id} is still running"
        log.warning("%s: %s", name, reason)
        self.store.consume_slot(name, slot.timestamp(), reason)
        self.logpump.note(name, rt.run.id, reason)

    def _schedulable(self, name: str) -> StrategyRuntime | None:
        rt = self.runtimes.get(name)
        if rt is None or rt.spec is None or not rt.enabled or rt.invalid_reason is not None or self._shutting_down:
            return None
        return rt

    def _queue_launch(self, rt: StrategyRuntime, slot: float) -> None:
        # Fires that arrive together (many strategies on one slot) are recorded
        # in one transaction: one fsync for the burst instead of one per run.
        if any(queued is rt for queued, _ in self._fire_queue):
            return
        self._fire_queue.append((rt, slot))
        if len(self._fire_queue) == 1:
            self._loop.call_soon(self._flush_fire_queue)

    def _flush_fire_queue(self) -> None:
        queued, self._fire_queue = self._fire_queue, []
        ready = [(rt, slot) for rt, slot in queued if self._schedulable(rt.name) is rt and rt.run is None]
        if not ready:
            return
        now = time.time()
        ids = self.store.begin_runs([(rt.name, "schedule", slot, now) for rt, slot in ready])
        for (rt, slot), run_id in zip(ready, ids):
            self._spawn(rt, run_id, "schedule", slot, now)

    def _missed(self, name: str, slot: datetime) -> None:
        rt = self.runtimes.get(name)
        if rt is None or rt.spec is None:
            return
        late = time.time() - slot.timestamp()
        reason = f"slot {slot.isoformat()} missed by {late:.1f} s (misfire_grace {rt.spec.settings.misfire_grace:g} s)"
        self.store.consume_slot(name, slot.timestamp(), reason)
        self.logpump.note(name, 0, reason)

    def _launch(self, rt: StrategyRuntime, trigger: str, scheduled_at: float | None) -> ActiveRun | None:
        """Record a run, then start its process."""
        started = time.time()
        run_id = self.store.begin_run(rt.name, trigger, scheduled_at, started)
        return self._spawn(rt, run_id, trigger, scheduled_at, started)

    def _spawn(self, rt: StrategyRuntime, run_id: int, trigger: str, scheduled_at: float | None, started: float) -> ActiveRun | None:
        """Start the process of a recorded run through the fork server."""
        spec = rt.spec
        assert spec is not None and rt.run is None
        token = secrets.token_urlsafe(24)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        status_r, status_w = os.pipe()
        try:
            self.launcher.launch(self._launch_request(spec, run_id, trigger, scheduled_at, token), [out_w, err_w, status_w])
        except ForkServerError as exc:
            for fd in (out_r, err_r, status_r):
                os.close(fd)
            error = f"could not launch: {exc}"
            self.store.finish_run(run_id, ended_at=time.time(), entered_at=None, pid=None, exit_code=None, signal=None, peak_rss=None, outcome="failed", error=error)
            rt.last_outcome, rt.last_error, rt.last_exit_code = "failed", error, None
            log.error("%s: %s", rt.name, error)
            return None
        finally:
            for fd in (out_w, err_w, status_w):
                os.close(fd)
        run = ActiveRun(id=run_id, trigger=trigger, scheduled_at=scheduled_at, started_at=started, token=token, status_fd=status_r, spec=spec)
        rt.run = run
        rt.runs += 1
        self._active[run_id] = rt
        self._tokens[token] = rt.name
        self.logpump.add(rt.name, run_id, out_r, err_r)
        os.set_blocking(status_r, False)
        self._loop.add_reader(status_r, self._read_status, rt, run)
        rt.set_state(State.STARTING)
        self._status_dirty = True
        return run

    def _launch_request(self, spec: StrategySpec, run_id: int, trigger: str, scheduled_at: float | None, token: str) -> dict[str, Any]:
        settings = spec.settings
        env = self._base_environment()
        env.update(TRADEHOST_STRATEGY=spec.name, TRADEHOST_RUN_ID=str(run_id))
        return {
            "run_id": run_id,
            "name": spec.name,
            "trigger": trigger,
            "scheduled_at": scheduled_at,
            # A scheduled run is started ahead of its slot and calls run() at the slot.
            "start_at": scheduled_at if trigger == "schedule" else None,
            "token": token,
            "run_endpoint": f"ipc://{self.config.run_socket}",
            "target": {
                "kind": "file",
                "name": spec.name,
                "path": str(spec.path),
                "package": spec.is_package,
                "strategies_dir": str(self.config.host.strategies_dir),
            },
            "settings": settings.model_dump(mode="json"),
            "limits": {"memory": settings.memory, "cpu_time": settings.cpu_time, "open_files": settings.open_files},
            "cwd": str(self.config.path.parent),
            "env": env,
        }

    # -- messages from runs --------------------------------------------------

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
        run.status_buffer += data
        *lines, rest = run.status_buffer.split(b"\n")
        # Anything a strategy writes to descriptor 3 lands here: parse defensively, cap the buffer.
        run.status_buffer = bytearray(rest[-65536:])
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            if event.get("event") == "entered" and run.entered_at is None:
                run.entered_at = float(event.get("t") or time.time())
                if rt.state is State.STARTING:
                    rt.set_state(State.RUNNING)
                    self._status_dirty = True
            elif event.get("event") == "result" and run.result is None:
                run.result = event

    def _on_forkserver_message(self, message: dict[str, Any]) -> None:
        rt = self._active.get(message.get("run_id", -1))
        if rt is None or rt.run is None:
            return
        run = rt.run
        op = message.get("op")
        if op == "started":
            run.pid = int(message["pid"])
            if run.stop is not None:
                self._signal_stop(rt, run)
        elif op == "exited":
            self._finish(rt, run, int(message["status"]), int(message.get("maxrss") or 0))
        elif op == "failed":
            run.result = {"outcome": "failed", "error": message.get("error")}
            self._finish(rt, run, 1 << 8, 0)

    def _on_forkserver_lost(self) -> None:
        # Runs died with it (parent-death signal); record them and start a new server.
        for rt in list(self._active.values()):
            if rt.run is not None:
                rt.run.result = {"outcome": "failed", "error": "the fork server died"}
                self._finish(rt, rt.run, signal.SIGKILL, 0)
        if not self._shutting_down:
            self._tasks.append(asyncio.create_task(self._restart_forkserver()))

    async def _restart_forkserver(self) -> None:
        delay = 1.0
        while not self._shutting_down:
            try:
                await self.launcher.start()
                log.warning("fork server restarted (pid %s)", self.launcher.pid)
                for rt in self.runtimes.values():
                    if rt.is_continuous and rt.run is None and rt.state is not State.BACKOFF:
                        self._arm(rt, catch_up=False)
                return
            except (ForkServerError, OSError, asyncio.TimeoutError) as exc:
                log.error("could not restart the fork server: %s; retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _finish(self, rt: StrategyRuntime, run: ActiveRun, status: int, maxrss: int) -> None:
        """The run's main process is gone: clean up its group, record it, decide what comes next."""
        if run.pid is not None:
            _signal_group(run.pid, signal.SIGKILL)  # descendants do not outlive their run
        self._stray_scans = _STRAY_SCANS_AFTER_EXIT
        self._drain_status(rt, run)
        if run.kill_timer is not None:
            run.kill_timer.cancel()
        settings = run.spec.settings
        outcome = classify_exit(status, run.result, run.stop, memory_limit=settings.memory, cpu_limit=settings.cpu_time)
        ended = time.time()
        peak = max(run.peak_rss, maxrss) or None
        self.store.finish_run(run.id, ended_at=ended, entered_at=run.entered_at, pid=run.pid, exit_code=outcome.exit_code, signal=outcome.signal, peak_rss=peak, outcome=outcome.outcome, error=outcome.error)
        self._active.pop(run.id, None)
        self._tokens.pop(run.token, None)
        rt.run = None
        rt.last_exit_code, rt.last_error, rt.last_outcome, rt.last_run_at = outcome.code, outcome.error, outcome.outcome, run.started_at
        summary = _describe_end(run, outcome, ended, peak)
        (log.warning if outcome.failed else log.info)("%s: %s", rt.name, summary)
        self._loop.run_in_executor(None, self._note_after_drain, rt.name, run.id, summary)
        if not run.done.done():
            run.done.set_result(None)
        self._status_dirty = True
        self._after_run(rt, run, outcome, ended - run.started_at)

    def _after_run(self, rt: StrategyRuntime, run: ActiveRun, outcome: Outcome, duration: float) -> None:
        if rt.removed:
            self._forget(rt)
            return
        if self._shutting_down:
            rt.set_state(rt.resting_state)
            return
        if rt.pending is not None and rt.spec is not None and rt.invalid_reason is None:
            trigger, slot = rt.pending
            rt.pending = None
            if self._launch(rt, trigger, slot) is not None:
                return
        rt.pending = None
        operator_stop = run.stop is not None and not run.stop.is_failure
        if rt.is_continuous and rt.enabled and rt.invalid_reason is None and not operator_stop:
            if run.trigger in ("continuous", "restart"):
                self._continuous_exited(rt, duration)
                return
            # A cron or manual run of a strategy that has since become @continuous.
            rt.set_state(rt.resting_state)
            self._arm(rt, catch_up=False)
            return
        rt.set_state(rt.resting_state)

    def _continuous_exited(self, rt: StrategyRuntime, duration: float) -> None:
        """A continuous strategy ended on its own: back off and restart, or give up."""
        settings = rt.spec.settings  # type: ignore[union-attr]
        now = time.monotonic()
        if duration > settings.restart_delay_max:
            rt.consecutive_failures = 0  # it ran long enough to count as healthy
        rt.consecutive_failures += 1
        rt.failures.append(now)
        while rt.failures and now - rt.failures[0] > settings.failure_window:
            rt.failures.popleft()
        if len(rt.failures) >= settings.max_failures:
            reason = f"gave up after {len(rt.failures)} failures within {settings.failure_window:g} s; `tradehost start {rt.name}` to retry"
            log.error("%s: %s", rt.name, reason)
            self.store.record_event(rt.name, "fatal", reason)
            rt.last_error = f"{rt.last_error or 'exited'} ({reason})"
            rt.set_state(State.FATAL)
            return
        delay = backoff_delay(rt.consecutive_failures, settings.restart_delay, settings.restart_delay_max)
        log.warning("%s: restarting in %.1f s (failure %d of %d allowed within %g s)", rt.name, delay, len(rt.failures), settings.max_failures, settings.failure_window)
        rt.set_state(State.BACKOFF)
        rt.backoff_timer = self._loop.call_later(delay, self._backoff_elapsed, rt)

    def _backoff_elapsed(self, rt: StrategyRuntime) -> None:
        rt.backoff_timer = None
        if rt.state is State.BACKOFF and rt.enabled and rt.spec is not None and rt.run is None and not self._shutting_down:
            self._launch(rt, "restart", None)

    def _cancel_backoff(self, rt: StrategyRuntime) -> None:
        if rt.backoff_timer is not None:
            rt.backoff_timer.cancel()
            rt.backoff_timer = None

    def _drain_status(self, rt: StrategyRuntime, run: ActiveRun) -> None:
        self._loop.remove_reader(run.status_fd)
        try:
            while data := os.read(run.status_fd, 65536):
                self._take_status(rt, run, data)
        except (BlockingIOError, OSError):
            pass
        os.close(run.status_fd)

    def _note_after_drain(self, name: str, run_id: int, text: str) -> None:
        self.logpump.wait_drained(run_id, 2.0)
        self.logpump.note(name, run_id, text)

    # -- stopping runs -------------------------------------------------------

    def _stop_run(self, rt: StrategyRuntime, reason: StopReason, *, kill_now: bool = False) -> None:
        run = rt.run
        if run is None:
            return
        if run.stop is None:
            run.stop = reason
        if rt.state in (State.STARTING, State.RUNNING):
            rt.set_state(State.STOPPING)
            self._status_dirty = True
        if run.pid is not None:
            self._signal_stop(rt, run, kill_now=kill_now)

    def _signal_stop(self, rt: StrategyRuntime, run: ActiveRun, *, kill_now: bool = False) -> None:
        assert run.pid is not None
        grace = run.spec.settings.grace
        if kill_now or grace <= 0:
            _signal_group(run.pid, signal.SIGKILL)
            return
        _signal_group(run.pid, signal.SIGTERM)
        if run.kill_timer is None:
            run.kill_timer = self._loop.call_later(grace, self._kill_after_grace, rt, run)

    def _kill_after_grace(self, rt: StrategyRuntime, run: ActiveRun) -> None:
        if rt.run is run and run.pid is not None:
            log.warning("%s: run %d ignored SIGTERM for %g s; sending SIGKILL", rt.name, run.id, run.spec.settings.grace)
            _signal_group(run.pid, signal.SIGKILL)

    def _monitor(self) -> None:
        """Enforce wall-clock, memory and process-count limits; sweep stray processes."""
        if not self._active and self._stray_scans <= 0:
            return
        self._stray_scans -= 1
        processes = proctable.scan()
        runs = [rt.run for rt in self._active.values() if rt.run is not None]
        usage = proctable.group_usage(processes, [run.pid for run in runs if run.pid is not None])
        now = time.time()
        for rt in list(self._active.values()):
            run = rt.run
            if run is None or run.pid is None:
                continue
            settings = run.spec.settings
            used = usage.get(run.pid)
            if used is not None:
                run.peak_rss = max(run.peak_rss, used.rss)
            if run.stop is not None and run.stop.is_failure:
                continue
            if not settings.is_continuous and settings.timeout and now - run.started_at > settings.timeout:
                self._stop_run(rt, StopReason("timeout", f"timeout: still running after {settings.timeout:g} s"))
            elif used is not None and settings.memory is not None and used.rss > settings.memory:
                self._stop_run(rt, StopReason("memory", f"memory limit {format_bytes(settings.memory)} exceeded (resident {format_bytes(used.rss)})"), kill_now=True)
            elif used is not None and used.processes > settings.max_procs:
                self._stop_run(rt, StopReason("procs", f"process limit {settings.max_procs} exceeded ({used.processes} processes)"), kill_now=True)
        self._sweep_strays(processes, runs)

    def _sweep_strays(self, processes: list[proctable.ProcInfo], runs: list[ActiveRun]) -> None:
        # Descendants that left their run's process group re-parent to the fork
        # server (a subreaper) when their run ends; anything there that is not
        # a live run is a stray. While a launch is in flight its pid is unknown,
        # so the sweep waits rather than risk killing it.
        server = self.launcher.pid
        if server is None or any(run.pid is None for run in runs):
            return
        live = {run.pid for run in runs}
        for info in processes:
            if info.ppid == server and info.pid not in live and info.pgrp not in live:
                log.warning("killing stray process %d left by an ended run", info.pid)
                _signal_group(info.pid, signal.SIGKILL)

    # -- operator commands (called by host.commands) -------------------------

    def get(self, name: str) -> StrategyRuntime:
        rt = self.runtimes.get(name)
        if rt is None or rt.removed:
            raise ControlError(f"unknown strategy {name!r}", code="UNKNOWN_STRATEGY")
        return rt

    def status(self, name: str | None = None) -> list[dict[str, Any]]:
        names = [self.get(name).name] if name is not None else sorted(n for n, rt in self.runtimes.items() if not rt.removed)
        return [self.runtimes[n].status(self.scheduler.next_run(n)) for n in names]

    def start(self, name: str) -> dict[str, Any]:
        rt = self.get(name)
        if rt.invalid_reason is not None:
            raise ControlError(f"{name} is invalid: {rt.invalid_reason}", code="INVALID")
        self.store.record_event(name, "operator", "start")
        rt.enabled = True
        self.store.set_enabled(name, True)
        if rt.state is State.FATAL:
            rt.failures.clear()
            rt.consecutive_failures = 0
        if rt.run is None:
            self._cancel_backoff(rt)
            if rt.is_continuous:
                self._launch(rt, "continuous", None)
            else:
                rt.set_state(State.IDLE)
                self._arm(rt, catch_up=False)
        self._status_dirty = True
        return rt.status(self.scheduler.next_run(name))

    async def stop(self, name: str, *, persist: bool = True) -> dict[str, Any]:
        rt = self.get(name)
        if persist:
            self.store.record_event(name, "operator", "stop")
            rt.enabled = False
            self.store.set_enabled(name, False)
            self.scheduler.unschedule(name)
        self._cancel_backoff(rt)
        rt.pending = None
        run = rt.run
        if run is not None:
            self._stop_run(rt, _STOPPED)
            await asyncio.wait_for(asyncio.shield(run.done), run.spec.settings.grace + 10)
        elif rt.state in (State.IDLE, State.BACKOFF, State.FATAL) and persist:
            rt.set_state(State.STOPPED)
        elif rt.state is State.BACKOFF:
            rt.set_state(rt.resting_state)
        self._status_dirty = True
        return rt.status(self.scheduler.next_run(name))

    async def restart(self, name: str) -> dict[str, Any]:
        rt = self.get(name)
        if rt.invalid_reason is not None:
            raise ControlError(f"{name} is invalid: {rt.invalid_reason}", code="INVALID")
        await self.stop(name, persist=False)
        return self.start(name)

    def trigger(self, name: str) -> dict[str, Any]:
        rt = self.get(name)
        if rt.invalid_reason is not None or rt.spec is None:
            raise ControlError(f"{name} is invalid: {rt.invalid_reason}", code="INVALID")
        if rt.run is not None:
            raise ControlError(f"{name} is already running (run {rt.run.id}, pid {rt.run.pid})", code="CONFLICT")
        if rt.state is State.BACKOFF:
            self._cancel_backoff(rt)
        run = self._launch(rt, "manual", None)
        if run is None:
            raise ControlError(f"{name}: could not launch; see the supervisor log", code="LAUNCH_FAILED")
        self.store.record_event(name, "operator", f"trigger (run {run.id})")
        return {"name": name, "run_id": run.id}

    def reload(self) -> dict[str, Any]:
        """Re-read supervisor.toml and rescan the folder; unchanged strategies are not touched."""
        self.notifier.reloading()
        try:
            try:
                config = load_config(self.config.path)
            except ConfigError as exc:
                log.error("reload refused: %s", exc)
                raise ControlError(f"reload refused, configuration unchanged: {exc}", code="CONFIG") from None
            warnings = _restart_only_changes(self.config, config)
            for warning in warnings:
                log.warning("reload: %s", warning)
            self.config = _keep_restart_only(self.config, config)
            self.watcher.debounce = self.config.host.debounce
            before = {name: (rt.spec, rt.invalid_reason) for name, rt in self.runtimes.items()}
            sources = self.watcher.prime()
            for name, source in sorted(sources.items()):
                self._apply_source(name, source)
            for name in sorted(set(self.runtimes) - set(sources)):
                self._remove(name)
            after = {name: (rt.spec, rt.invalid_reason) for name, rt in self.runtimes.items() if not rt.removed}
            changed = sorted(n for n in after if n in before and after[n] != before[n])
            result = {
                "added": sorted(set(after) - set(before)),
                "changed": changed,
                "removed": sorted(set(before) - set(after)),
                "warnings": warnings,
            }
            log.info("reloaded: %s", result)
            return result
        finally:
            self.notifier.reloaded(self._status_text())

    def _reload_from_signal(self) -> None:
        try:
            self.reload()
        except ControlError as exc:
            log.error("%s", exc)

    # -- control and run channel servers -------------------------------------

    async def _serve_control(self) -> None:
        from .control import serve_control

        await serve_control(self, f"ipc://{self.config.control_socket}", self.config.control_socket)

    async def _serve_run_channel(self) -> None:
        handler = RunChannelHandler(self.store, self._tokens.get)
        context = zmq.asyncio.Context.instance()
        sock = context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        # A larger frame is dropped by ZeroMQ before it reaches Python.
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES * 4)
        bind_private(sock, self.config.run_socket)
        try:
            while True:
                frames = await sock.recv_multipart()
                if len(frames) < 2:
                    continue
                await sock.send_multipart([frames[0], handler.handle(frames[-1])])
        finally:
            sock.close(linger=0)

    # -- health --------------------------------------------------------------

    def _status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for rt in self.runtimes.values():
            if not rt.removed:
                counts[rt.state.value] = counts.get(rt.state.value, 0) + 1
        return counts

    def _status_text(self) -> str:
        return status_line(self._status_counts())

    def _notify_status(self) -> None:
        if self._status_dirty:
            self._status_dirty = False
            self.notifier.status(self._status_text())

    def healthy(self) -> bool:
        """Scheduler thread and control servers alive: the condition for a watchdog ping."""
        servers = [task for task in self._tasks if task.get_name() in ("control", "run-channel")]
        return self.scheduler.alive and all(not task.done() for task in servers) and self.launcher.alive

    def _watchdog(self) -> None:
        if self.healthy():
            self.notifier.watchdog()
        else:
            log.error("not healthy (scheduler alive: %s, fork server alive: %s); withholding watchdog ping", self.scheduler.alive, self.launcher.alive)

    # -- shutdown ------------------------------------------------------------

    async def _stop_everything(self) -> None:
        self._shutting_down = True
        self.notifier.stopping()
        log.info("stopping: %d active run(s)", len(self._active))
        scheduler = getattr(self, "scheduler", None)
        if scheduler is not None:
            scheduler.shutdown()
        waits = []
        for rt in list(self._active.values()):
            self._cancel_backoff(rt)
            if rt.run is not None:
                self._stop_run(rt, StopReason("stopped", "supervisor shutting down"))
                waits.append(rt.run.done)
        for rt in self.runtimes.values():
            self._cancel_backoff(rt)
        if waits:
            limit = max(run.spec.settings.grace for rt in self._active.values() if (run := rt.run) is not None) + self.config.host.shutdown_timeout
            done, pending = await asyncio.wait(waits, timeout=limit)
            if pending:
                log.error("%d run(s) did not stop in time", len(pending))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if hasattr(self, "launcher"):
            await self.launcher.close()
        if hasattr(self, "logpump"):
            await asyncio.to_thread(self.logpump.close)
        if hasattr(self, "store"):
            self.store.close()
        for sock in (self.config.control_socket, self.config.run_socket):
            try:
                sock.unlink()
            except FileNotFoundError:
                pass
        zmq.asyncio.Context.instance().term()
        self._lock.release()
        log.info("supervisor stopped")


def _timing(spec: StrategySpec) -> tuple[Any, ...]:
    settings = spec.settings
    return (spec.schedule, settings.misfire_grace, settings.coalesce)


def _describe_end(run: ActiveRun, outcome: Outcome, ended: float, peak: int | None) -> str:
    parts = [f"run {run.id} ended: {outcome.outcome}"]
    if outcome.exit_code is not None:
        parts.append(f"exit code {outcome.exit_code}")
    elif outcome.signal is not None:
        parts.append(f"signal {signal.Signals(outcome.signal).name if outcome.signal in signal.Signals._value2member_map_ else outcome.signal}")
    parts.append(f"after {ended - run.started_at:.3f} s")
    if peak:
        parts.append(f"peak memory {format_bytes(peak)}")
    text = ", ".join(parts)
    return f"{text} ({outcome.error})" if outcome.error else text


_RESTART_ONLY = ("state_dir", "database", "strategies_dir", "preload", "log_max_bytes", "log_backups", "prelaunch")


def _restart_only_changes(old: Config, new: Config) -> list[str]:
    return [
        f"host.{field} changed; it takes effect after a restart of the supervisor"
        for field in _RESTART_ONLY
        if getattr(old.host, field) != getattr(new.host, field)
    ]


def _keep_restart_only(old: Config, new: Config) -> Config:
    """Adopt the new configuration except the settings that only a restart can change."""
    host = new.host.model_copy(update={field: getattr(old.host, field) for field in _RESTART_ONLY})
    return dataclasses.replace(new, host=host)
