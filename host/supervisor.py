"""The supervisor: registers strategies, decides when they run, and serves operators.

One asyncio event loop owns all state. Two threads feed it: APScheduler's
clock (``call_soon_threadsafe`` on every fire) and the log pump, which only
writes files. Processes are forked by the fork server (``launcher``), never
by this multi-threaded process; ``runs.RunController`` follows each run from
launch to its record, and this module decides what a strategy does next.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import resource
import signal
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import zmq.asyncio

from . import proctable
from . import sandbox
from .child import set_child_subreaper, set_dumpable
from .config import Config, load_config
from .errors import ConfigError, ControlError, StrategyFileError
from .launcher import ForkServerError, Launcher
from .lifecycle import State
from .logpump import LogPump
from .orphans import MARKER, kill_orphans
from .outcome import Outcome, StopReason, backoff_delay
from .router.keyfile import key_file_path, read_or_create_key
from .router.service import RouterProcess
from .runchannel import RunChannelHandler, serve_run_channel
from .runs import RunController
from .runtime import ActiveRun, StrategyRuntime
from .schedule import CronSchedule, first_fire
from .scheduler import Scheduler
from .statedir import SupervisorLock, issue_token, prepare_state_dir, supervisor_pid
from .store import Store
from .strategy_file import StrategySource, StrategySpec, load_strategy
from .systemd import Notifier, child_environment, status_line
from .trading.tokens import RunTokens, new_key
from .watcher import FolderWatcher

__all__ = ["Supervisor"]

log = logging.getLogger("tradehost.supervisor")

_MONITOR_INTERVAL = 0.25
# systemd's sockets are the supervisor's own: the router must not notify or feed the watchdog.
_NOT_FOR_ROUTER = frozenset({"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"})
_STATUS_INTERVAL = 1.0
_PRUNE_INTERVAL = 3600.0
_PING_INTERVAL = 2.0
_PING_DEADLINE = 6.0
_BY_OPERATOR = StopReason("stopped", "stopped by operator")


def _utc(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, timezone.utc)


class Supervisor:
    """Runs ``tradehost run``: everything between the config file and the processes."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.control_token = ""
        """What every control request must carry (host/control.py); issued at start."""
        self._sandbox_for: Config | None = None
        self._sandbox: dict[str, Any] = {}
        self.runtimes: dict[str, StrategyRuntime] = {}
        self.notifier = Notifier()
        self._lock = SupervisorLock(config.lock_file)
        self._shutdown = asyncio.Event()
        self._started = False
        self._shutting_down = False
        self._status_dirty = True
        self._tasks: list[asyncio.Task[Any]] = []
        self._fire_queue: list[tuple[StrategyRuntime, float]] = []
        self._environment: dict[str, str] | None = None
        self.router: RouterProcess | None = None
        self.tokens: RunTokens
        self._loop: asyncio.AbstractEventLoop
        self.store: Store
        self.logpump: LogPump
        self.launcher: Launcher
        self.runs: RunController
        self.scheduler: Scheduler
        self.watcher: FolderWatcher

    # -- entry point ---------------------------------------------------------

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; return the process exit code."""
        return asyncio.run(self._main())

    async def _main(self) -> int:
        self._loop = asyncio.get_running_loop()
        # Installed first: a signal during start-up must not kill the host half-way.
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(signum, self.request_shutdown)
        self._loop.add_signal_handler(signal.SIGHUP, self._reload_from_signal)
        try:
            await self._startup()
            await self._shutdown.wait()
        finally:
            await self._stop_everything()
        return 0

    async def _startup(self) -> None:
        config = self.config
        os.umask(0o077)
        set_dumpable(False)  # keep same-user processes out of /proc/<pid>/environ and ptrace
        set_child_subreaper()  # if the fork server dies, its runs' descendants come to us, not to init
        _raise_open_file_limit()
        try:
            prepare_state_dir(config.host.state_dir)
        except OSError as exc:
            raise ConfigError(f"cannot use state_dir {config.host.state_dir}: {exc.strerror or exc}", path=str(config.path), key="host.state_dir") from None
        for sock in (config.control_socket, config.run_socket):
            if len(str(sock)) > 100:
                raise ConfigError(f"state_dir is too deep for a unix socket path ({len(str(sock))} > 100 characters): {sock}", path=str(config.path), key="host.state_dir")
        if not self._lock.acquire():
            pid = supervisor_pid(config.lock_file)
            raise ControlError(f"another supervisor (pid {pid}) is already running with state dir {config.host.state_dir}", code="ALREADY_RUNNING")
        self.control_token = issue_token(config.control_token_file)
        killed = kill_orphans(str(config.host.state_dir))
        if killed:
            log.warning("killed %d process(es) left behind by an earlier supervisor", killed)
        try:
            self.store = Store(config.database_url)
        except Exception as exc:  # a missing driver, a refused connection, a locked file: one line, not a traceback
            raise ConfigError(f"cannot open the database {config.database_url}: {' '.join(str(exc).split())[:300]}", path=str(config.path), key="host.database") from None
        for lost in self.store.close_lost_runs(time.time(), "the supervisor exited while this run was active"):
            log.warning("%s: run %d was still active when the last supervisor exited; recorded as lost", lost.strategy, lost.id)
        self._prune_history()
        self.logpump = LogPump(config.logs_dir, max_bytes=config.host.log_max_bytes, backups=config.host.log_backups)
        self.logpump.start()
        self._start_router()
        self._prepare_sandbox()  # before any run can launch: a ruleset binds only the folders that exist
        self.launcher = Launcher(
            preload=config.host.preload,
            env=self._base_environment(),
            on_message=lambda message: self.runs.on_forkserver_message(message),
            on_lost=self._on_forkserver_lost,
        )
        await self.launcher.start()
        self.runs = RunController(
            store=self.store,
            launcher=self.launcher,
            logpump=self.logpump,
            request_for=self._launch_request,
            on_ended=self._after_run,
            on_changed=self._mark_changed,
            mint_token=self.tokens.mint,
        )
        self.scheduler = Scheduler(
            on_fire=lambda name, slot: self._from_scheduler(self._fire, name, slot),
            on_missed=lambda name, slot: self._from_scheduler(self._missed, name, slot),
            lead=config.host.prelaunch,
        )
        self.scheduler.start()
        self.watcher = FolderWatcher(config.host.strategies_dir, debounce=config.host.debounce)
        if not config.host.strategies_dir.is_dir():
            log.warning("strategies_dir %s does not exist yet; strategies dropped there later are picked up", config.host.strategies_dir)
        counts = self.store.run_counts()
        last = self.store.last_runs()
        for name, source in sorted(self.watcher.prime().items()):
            self._apply_source(name, source, catch_up=True, history=(counts.get(name, 0), last.get(name)))
        self._tasks = [
            asyncio.create_task(self._serve_control(), name="control"),
            asyncio.create_task(serve_run_channel(RunChannelHandler(self.store, self.runs.tokens.get), config.run_socket), name="run-channel"),
            asyncio.create_task(self._every(config.host.watch_interval, self._watch), name="watch"),
            asyncio.create_task(self._every(_MONITOR_INTERVAL, self.runs.monitor), name="monitor"),
            asyncio.create_task(self._every(_STATUS_INTERVAL, self._notify_status), name="status"),
            asyncio.create_task(self._every(_PRUNE_INTERVAL, self._prune_history), name="prune"),
            asyncio.create_task(self._every(_PING_INTERVAL, self._check_forkserver), name="ping"),
        ]
        interval = self.notifier.watchdog_interval
        if interval is not None:
            self._tasks.append(asyncio.create_task(self._every(interval, self._watchdog), name="watchdog"))
        await asyncio.sleep(0)  # let the servers bind before announcing readiness
        self._started = True
        self.notifier.ready(self._status_text())
        log.info("supervisor ready: %d strategies, pid %d, fork server pid %s", len(self.runtimes), os.getpid(), self.launcher.pid)

    def _start_router(self) -> None:
        """Start the broker router (or, if another machine runs it, read the token key we share with it)."""
        config = self.config
        if not config.router.enabled:
            self.tokens = RunTokens(read_or_create_key(key_file_path(config.host.state_dir, config.router.key_file)))
            return
        key = new_key()
        self.tokens = RunTokens(key)
        env = {k: v for k, v in os.environ.items() if k not in _NOT_FOR_ROUTER}
        env[MARKER] = str(config.host.state_dir)  # a router left by a dead supervisor is killed at the next start
        self.router = RouterProcess(str(config.path), key, env, delay_max=config.router.restart_delay_max)
        self.router.start()

    def _from_scheduler(self, handler: Callable[[str, datetime], None], name: str, slot: datetime) -> None:
        """Called in APScheduler's thread: hand the fire to the event loop."""
        self._loop.call_soon_threadsafe(handler, name, slot)

    def request_shutdown(self) -> None:
        """Begin an orderly stop of every run and the host."""
        if not self._shutdown.is_set():
            log.info("shutdown requested")
            self._shutdown.set()

    def _sandbox_paths(self) -> dict[str, Any]:
        """What each launch request tells the fork server about the sandbox: worked out once per config, not per launch."""
        config = self.config
        if self._sandbox_for is not config:
            host = config.host
            strategies = str(host.strategies_dir)
            # Checked and passed on as real paths: the fork server opens nothing that leads elsewhere by the time it builds.
            real = [os.path.realpath(p) for p in host.writable]
            self._sandbox = {
                "protect": [str(path) for path in config.protected_paths] if host.sandbox else None,
                # The project folder holds the config, the strategies and (as a rule) the code the host runs.
                "readonly": [str(config.path.parent), strategies, *sandbox.host_code(host.preload)],
                "writable": [p for p in real if not (sandbox.reopens_code(p, host.preload) or sandbox.overlaps(p, strategies))],
            }
            self._sandbox_for = config
        return self._sandbox

    def _prepare_sandbox(self) -> None:
        """Make the folders runs will need before their ruleset binds what exists, then say what is in force."""
        # Nothing can be made directly in a folder above a read-only path (the home folder holds several).
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        folders = [*map(str, self.config.host.writable), cache] if self.config.host.sandbox else []
        for folder in folders:
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:
                log.warning("strategy sandbox: cannot make %s for runs: %s", folder, exc.strerror or exc)
        self._report_sandbox()

    def _report_sandbox(self) -> None:
        opened = self._sandbox_paths()["writable"]
        refused = sorted(str(p) for p in self.config.host.writable if os.path.realpath(p) not in opened)
        if refused:
            log.warning("[host] writable: %s left read-only (the host's code or the strategies)", ", ".join(refused))
        if self.config.host.sandbox and os.geteuid() == 0:
            log.warning("strategy sandbox: the host runs as root; runs cannot change the system folders, but root is root: "
                        "run the host under its own user (tradehost service --user)")
        if not self.config.host.sandbox:
            log.warning("strategy sandbox: off ([host] sandbox = false); strategies can read and write state/ and signal the host")
            return
        version = sandbox.abi()
        (log.info if version else log.warning)("strategy sandbox: %s", sandbox.describe(version))

    def _base_environment(self) -> dict[str, str]:
        """What every run's environment starts from; computed once, not on each launch."""
        if self._environment is None:
            self._environment = child_environment(os.environ, self.config.host.scrub_patterns)
            self._environment[MARKER] = str(self.config.host.state_dir)
        return self._environment

    async def _every(self, interval: float, action: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                action()
            except Exception:
                log.exception("periodic task %s failed", getattr(action, "__name__", action))

    def _mark_changed(self) -> None:
        self._status_dirty = True

    def _prune_history(self) -> None:
        days = self.config.host.history_days
        if days:
            removed = self.store.prune(time.time() - days * 86400)
            if removed:
                log.info("pruned %d run and event records older than %g days", removed, days)

    # -- registration --------------------------------------------------------

    def _apply_source(self, name: str, source: StrategySource, *, catch_up: bool = False, history: tuple[int, Any] | None = None) -> None:
        try:
            spec = load_strategy(source, defaults=self.config.defaults, overrides=self.config.strategies.get(name, {}))
            error = None
        except StrategyFileError as exc:
            spec, error = None, str(exc)
        self._apply(name, spec, error, str(source.path), catch_up=catch_up, history=history)

    def _apply(self, name: str, spec: StrategySpec | None, error: str | None, path: str, *, catch_up: bool, history: tuple[int, Any] | None = None) -> None:
        rt = self.runtimes.get(name)
        if rt is None:
            rt = StrategyRuntime(name=name, spec=None, path=path)
            self.runtimes[name] = rt
            self._load_history(rt, history)
            known = self.store.strategy(name)
            rt.enabled = known.enabled if known is not None else True
        elif not rt.removed and rt.spec == spec and rt.invalid_reason == error:
            return
        was_removed, rt.removed = rt.removed, False
        rt.path = path
        self._status_dirty = True
        if error is not None:
            self._invalidate(rt, error)
            return
        assert spec is not None
        previous, was_invalid = rt.spec, rt.invalid_reason is not None or rt.spec is None
        rt.spec = spec
        rt.invalid_reason = None
        record = self.store.ensure_strategy(name, enabled=spec.settings.enabled)
        rt.enabled = record.enabled
        if rt.last_slot is None:
            rt.last_slot = record.last_slot
        if not spec.settings.is_continuous:
            self._cancel_backoff(rt)
            rt.fatal = False
            if previous is not None and previous.settings.is_continuous and rt.run is not None:
                self.runs.stop(rt, StopReason("stopped", "schedule changed from @continuous"))
        if rt.run is None and rt.state is not rt.resting_state and rt.state is not State.BACKOFF:
            rt.set_state(rt.resting_state)
        elif rt.state is State.BACKOFF and not spec.settings.is_continuous:
            rt.set_state(rt.resting_state)
        if was_invalid or was_removed or previous is None or _timing(previous) != _timing(spec):
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
        if spec is None or not rt.enabled or rt.invalid_reason is not None or rt.removed or self._shutting_down:
            return
        if isinstance(spec.schedule, CronSchedule):
            record = self.store.ensure_strategy(rt.name, enabled=rt.enabled)
            now = datetime.now(timezone.utc)
            if catch_up:
                since = max(filter(None, (record.last_slot, record.registered_at)))
            else:
                # Not now alone: a slot whose run is already prelaunched must not be scheduled again.
                since = max(now.timestamp(), rt.last_slot or 0.0)
            first = first_fire(spec.schedule, now=now, since=_utc(since), misfire_grace=spec.settings.misfire_grace)
            self.scheduler.schedule(rt.name, spec.schedule, first=first, misfire_grace=spec.settings.misfire_grace, coalesce=spec.settings.coalesce)
        elif spec.settings.is_continuous and rt.run is None and rt.backoff_timer is None and not rt.fatal:
            self._launch(rt, "continuous", None)

    def _remove(self, name: str) -> None:
        rt = self.runtimes.get(name)
        if rt is None or rt.removed:
            return
        log.info("%s: strategy file removed", name)
        rt.removed = True
        self.scheduler.unschedule(name)
        self._cancel_backoff(rt)
        rt.pending = None
        if rt.run is not None:
            self.runs.stop(rt, StopReason("stopped", "strategy file removed"))
        else:
            self._forget(rt)

    def _forget(self, rt: StrategyRuntime) -> None:
        self.runtimes.pop(rt.name, None)
        self.logpump.close_strategy(rt.name)
        self.store.record_event(rt.name, "removed", "strategy file removed; unregistered")
        self._status_dirty = True

    def _watch(self) -> None:
        if self._shutting_down:
            return
        changes = self.watcher.poll(time.monotonic())
        if not changes:
            return
        for name in sorted(changes.added | changes.changed):
            self._apply_source(name, self.watcher.sources[name])
        for name in sorted(changes.removed):
            self._remove(name)

    # -- firing --------------------------------------------------------------

    def _fire(self, name: str, slot: datetime) -> None:
        """The scheduler says ``slot`` is due (``prelaunch`` seconds early)."""
        rt = self._schedulable(name, slot.timestamp())
        if rt is None:
            return
        if rt.run is not None:
            # Overlap is decided at the slot itself: the current run may still end in time.
            self._loop.call_later(max(0.0, slot.timestamp() - time.time()), self._fire_at_slot, name, slot)
            return
        self._queue_launch(rt, slot.timestamp())

    def _fire_at_slot(self, name: str, slot: datetime) -> None:
        rt = self._schedulable(name, slot.timestamp())
        if rt is None or self._too_late(rt, slot.timestamp()):
            return
        if rt.run is None:
            self._queue_launch(rt, slot.timestamp())
            return
        assert rt.spec is not None
        rt.last_slot = slot.timestamp()
        if rt.spec.settings.overlap == "replace":
            rt.pending = ("schedule", slot.timestamp())
            self.runs.stop(rt, StopReason("stopped", f"replaced by the run for slot {slot.isoformat()}"))
            return
        reason = f"slot {slot.isoformat()} skipped: run {rt.run.id} is still running"
        log.warning("%s: %s", name, reason)
        self.store.consume_slot(name, slot.timestamp(), reason)
        self.logpump.note(name, rt.run.id, reason)

    def _schedulable(self, name: str, slot: float | None = None) -> StrategyRuntime | None:
        """The strategy if it may fire now (and ``slot`` is newer than any it has used)."""
        rt = self.runtimes.get(name)
        if rt is None or rt.spec is None or not rt.enabled or rt.invalid_reason is not None or rt.removed or self._shutting_down:
            return None
        if slot is not None and rt.last_slot is not None and slot <= rt.last_slot:
            return None
        return rt

    def _file_present(self, rt: StrategyRuntime) -> bool:
        # Deleted a moment ago and the watcher has not seen it yet: nothing to run.
        if rt.spec is not None and rt.spec.path.exists():
            return True
        log.info("%s: strategy file is gone; not launching", rt.name)
        return False

    def _too_late(self, rt: StrategyRuntime, slot: float) -> bool:
        """Drop (and record) a slot that can no longer start within its misfire grace."""
        grace = rt.spec.settings.misfire_grace if rt.spec is not None else None
        if grace is None or time.time() - slot <= grace:
            return False
        self._missed(rt.name, datetime.fromtimestamp(slot, timezone.utc))
        return True

    def _queue_launch(self, rt: StrategyRuntime, slot: float) -> None:
        # Fires that arrive together (many strategies on one slot) are recorded
        # in one transaction: one fsync for the burst instead of one per run.
        if any(queued is rt for queued, _ in self._fire_queue):
            return
        rt.last_slot = slot
        self._fire_queue.append((rt, slot))
        if len(self._fire_queue) == 1:
            self._loop.call_soon(self._flush_fire_queue)

    def _flush_fire_queue(self) -> None:
        queued, self._fire_queue = self._fire_queue, []
        ready = [
            (rt, slot) for rt, slot in queued
            if self._schedulable(rt.name) is rt and rt.run is None and self._file_present(rt) and not self._too_late(rt, slot)
        ]
        if not ready:
            return
        now = time.time()
        ids = self.store.begin_runs([(rt.name, "schedule", slot, now) for rt, slot in ready])
        for (rt, slot), run_id in zip(ready, ids):
            try:
                self.runs.spawn(rt, run_id, "schedule", slot, now)
            except Exception:  # one bad launch must not strand the rest of the burst
                log.exception("%s: launching run %d failed", rt.name, run_id)

    def _missed(self, name: str, slot: datetime) -> None:
        rt = self.runtimes.get(name)
        if rt is None or rt.spec is None:
            return
        late = time.time() - slot.timestamp()
        grace = rt.spec.settings.misfire_grace
        reason = f"slot {slot.isoformat()} missed by {late:.1f} s (misfire_grace {grace:g} s)" if grace is not None else f"slot {slot.isoformat()} missed"
        rt.last_slot = max(rt.last_slot or 0.0, slot.timestamp())
        self.store.consume_slot(name, slot.timestamp(), reason)
        self.logpump.note(name, 0, reason)

    def _launch(self, rt: StrategyRuntime, trigger: str, scheduled_at: float | None) -> ActiveRun | None:
        """Record a run, then start its process."""
        if self._shutting_down:
            return None
        started = time.time()
        run_id = self.store.begin_run(rt.name, trigger, scheduled_at, started)
        return self.runs.spawn(rt, run_id, trigger, scheduled_at, started)

    def _launch_request(self, rt: StrategyRuntime, run_id: int, trigger: str, scheduled_at: float | None, token: str) -> dict[str, Any]:
        spec = rt.spec
        assert spec is not None
        settings = spec.settings
        env = {**self._base_environment(), "TRADEHOST_STRATEGY": spec.name, "TRADEHOST_RUN_ID": str(run_id)}
        return {
            "run_id": run_id,
            "name": spec.name,
            "trigger": trigger,
            "scheduled_at": scheduled_at,
            # A scheduled run is started ahead of its slot and calls run() at the slot.
            "start_at": scheduled_at if trigger == "schedule" else None,
            "token": token,
            "run_endpoint": f"ipc://{self.config.run_socket}",
            "router": {"endpoint": self.config.router_endpoint, "timeout": self.config.router.request_timeout},
            "target": {
                "kind": "file",
                "name": spec.name,
                "path": str(spec.path),
                "package": spec.is_package,
                "strategies_dir": str(self.config.host.strategies_dir),
            },
            "settings": settings.model_dump(mode="json"),
            "limits": {"cpu_time": settings.cpu_time, "open_files": settings.open_files},
            "cwd": str(self.config.path.parent),
            "env": env,
            **self._sandbox_paths(),
        }

    # -- after a run ---------------------------------------------------------

    def _after_run(self, rt: StrategyRuntime, run: ActiveRun, outcome: Outcome, duration: float) -> None:
        """Decide what a strategy does once a run has ended."""
        if rt.removed:
            self._forget(rt)
            return
        pending, rt.pending = rt.pending, None
        if self._shutting_down or (run.stop is not None and run.stop.kind == "lost"):
            # A lost run is the fork server's failure, not the strategy's; its restart re-arms.
            rt.set_state(rt.resting_state)
            return
        if pending is not None and pending[1] is not None and self._schedulable(rt.name) is rt and not self._too_late(rt, pending[1]):
            if self._launch(rt, *pending) is not None:
                return
        rt.pending = None
        by_operator = run.stop is not None and run.stop.by_operator
        if rt.is_continuous and rt.enabled and rt.invalid_reason is None and not by_operator and run.trigger in ("continuous", "restart"):
            self._continuous_exited(rt, duration)
            return
        rt.set_state(rt.resting_state)
        if rt.enabled and not rt.fatal and self.scheduler.next_run(rt.name) is None:
            self._arm(rt, catch_up=False)  # e.g. started again while this run was stopping

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
            rt.fatal = True
            rt.set_state(State.FATAL)
            return
        delay = backoff_delay(rt.consecutive_failures, settings.restart_delay, settings.restart_delay_max)
        log.warning("%s: restarting in %.1f s (failure %d of %d allowed within %g s)", rt.name, delay, len(rt.failures), settings.max_failures, settings.failure_window)
        rt.set_state(State.BACKOFF)
        rt.backoff_timer = self._loop.call_later(delay, self._backoff_elapsed, rt)

    def _backoff_elapsed(self, rt: StrategyRuntime) -> None:
        rt.backoff_timer = None
        if rt.state is State.BACKOFF and rt.is_continuous and rt.enabled and rt.run is None and not self._shutting_down:
            if self._launch(rt, "restart", None) is None and rt.spec is not None:
                # No fork server right now: try again later rather than wait in BACKOFF for ever.
                rt.backoff_timer = self._loop.call_later(rt.spec.settings.restart_delay_max, self._backoff_elapsed, rt)

    def _cancel_backoff(self, rt: StrategyRuntime) -> None:
        if rt.backoff_timer is not None:
            rt.backoff_timer.cancel()
            rt.backoff_timer = None

    # -- fork server ---------------------------------------------------------

    def _on_forkserver_lost(self) -> None:
        self.runs.forkserver_lost()
        self._kill_own_strays()
        if not self._shutting_down:
            self._tasks.append(asyncio.create_task(self._restart_forkserver()))

    def _kill_own_strays(self) -> None:
        """Kill what the dead fork server left: as a subreaper we inherited its runs' descendants."""
        me = os.getpid()
        keep = {self.launcher.pid if self.launcher.alive else None, self.router.pid if self.router is not None else None}
        for _ in range(50):
            strays = [info.pid for info in proctable.scan() if info.ppid == me and info.pid not in keep]
            if not strays:
                return
            for pid in strays:
                for kill in (os.killpg, os.kill):
                    try:
                        kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                try:
                    os.waitpid(pid, 0)  # ours to reap; they were just killed
                except ChildProcessError:
                    pass
            log.warning("killed %d process(es) left behind by the fork server", len(strays))

    def _check_forkserver(self) -> None:
        """Replace a fork server that stopped answering (stopped, wedged): it would freeze every run."""
        if not self.launcher.alive:
            return
        silent = time.monotonic() - self.launcher.last_pong
        if silent > _PING_DEADLINE:
            log.error("the fork server (pid %s) has not answered for %.0f s; killing and restarting it", self.launcher.pid, silent)
            self.launcher.kill()
            return
        try:
            self.launcher.ping()
        except ForkServerError:
            pass

    async def _restart_forkserver(self) -> None:
        delay = 1.0
        while not self._shutting_down:
            try:
                await self.launcher.start()
                log.warning("fork server restarted (pid %s)", self.launcher.pid)
                for rt in self.runtimes.values():
                    if rt.is_continuous and rt.run is None and rt.backoff_timer is None and not rt.fatal:
                        if rt.state is State.BACKOFF:
                            rt.set_state(rt.resting_state)
                        self._arm(rt, catch_up=False)
                return
            except (ForkServerError, OSError, asyncio.TimeoutError) as exc:
                log.error("could not restart the fork server: %s; retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    # -- operator commands (called by host.commands) -------------------------

    def get(self, name: str) -> StrategyRuntime:
        rt = self.runtimes.get(name)
        if rt is None or rt.removed:
            raise ControlError(f"unknown strategy {name!r}", code="UNKNOWN_STRATEGY")
        return rt

    def _operable(self, name: str, *, valid: bool = True) -> StrategyRuntime:
        if self._shutting_down:
            raise ControlError("the supervisor is shutting down", code="SHUTTING_DOWN")
        rt = self.get(name)
        if valid and (rt.invalid_reason is not None or rt.spec is None):
            raise ControlError(f"{name} is invalid: {rt.invalid_reason}", code="INVALID")
        return rt

    def status(self, name: str | None = None) -> list[dict[str, Any]]:
        names = [self.get(name).name] if name is not None else sorted(n for n, rt in self.runtimes.items() if not rt.removed)
        return [self.runtimes[n].status(self.scheduler.next_run(n)) for n in names]

    def router_status(self) -> dict[str, Any]:
        """The router process as this supervisor knows it; ``managed`` False means ``[router] enabled = false`` (it runs elsewhere)."""
        router = self.router
        facts: dict[str, Any] = {"managed": router is not None, "endpoint": self.config.router_endpoint,
                                 "state": None, "pid": None, "started_at": None, "uptime": None, "restarts": None}
        if router is None:
            return facts
        if router.pid is not None:
            state = "running"
        elif self._shutting_down:
            state = "stopped"
        else:  # between an exit and the next spawn, or before the first one
            state = "starting" if router.started_at is None and router.restarts == 0 else "restarting"
        facts.update(state=state, pid=router.pid, restarts=router.restarts)
        if state == "running" and router.started_at is not None:
            facts.update(started_at=datetime.fromtimestamp(router.started_at, timezone.utc).isoformat(), uptime=round(time.time() - router.started_at, 3))
        return facts

    def start(self, name: str) -> dict[str, Any]:
        rt = self._operable(name)
        rt.intent += 1
        return self._start(rt)

    def _start(self, rt: StrategyRuntime) -> dict[str, Any]:
        name = rt.name
        self.store.record_event(name, "operator", "start")
        rt.enabled = True
        self.store.set_enabled(name, True)
        rt.fatal = False
        rt.failures.clear()
        rt.consecutive_failures = 0
        if rt.run is None:
            self._cancel_backoff(rt)
            if rt.is_continuous:
                self._launch(rt, "continuous", None)
            else:
                rt.set_state(State.IDLE)
                self._arm(rt, catch_up=False)
        # With a run still going (say, stopping), _after_run arms the strategy when it ends.
        self._status_dirty = True
        return rt.status(self.scheduler.next_run(name))

    async def stop(self, name: str, *, persist: bool = True) -> dict[str, Any]:
        rt = self._operable(name, valid=False)
        rt.intent += 1
        return await self._stop(rt, persist=persist)

    async def _stop(self, rt: StrategyRuntime, *, persist: bool) -> dict[str, Any]:
        name = rt.name
        if persist:
            self.store.record_event(name, "operator", "stop")
            rt.enabled = False
            self.store.set_enabled(name, False)
            self.scheduler.unschedule(name)
        self._cancel_backoff(rt)
        rt.pending = None
        run = rt.run
        if run is not None:
            self.runs.stop(rt, _BY_OPERATOR)
            await asyncio.wait_for(asyncio.shield(run.done), run.spec.settings.grace + 10)
        elif rt.state is not rt.resting_state and rt.state is not State.INVALID:
            rt.set_state(State.STOPPED if persist else State.IDLE)
        self._status_dirty = True
        return rt.status(self.scheduler.next_run(name))

    async def restart(self, name: str) -> dict[str, Any]:
        rt = self._operable(name)
        rt.intent += 1
        mine = rt.intent
        await self._stop(rt, persist=False)
        if rt.intent != mine:
            # Another start or stop came in while this run was stopping: the later command wins.
            return rt.status(self.scheduler.next_run(name))
        return self._start(self._operable(name))

    def trigger(self, name: str) -> dict[str, Any]:
        rt = self._operable(name)
        if rt.run is not None:
            raise ControlError(f"{name} is already running (run {rt.run.id}, pid {rt.run.pid})", code="CONFLICT")
        if not self._file_present(rt):
            raise ControlError(f"{name}: its file {rt.path} is gone", code="UNKNOWN_STRATEGY")
        self._cancel_backoff(rt)
        run = self._launch(rt, "manual", None)
        if run is None:
            raise ControlError(f"{name}: could not launch the run: {rt.last_error}", code="LAUNCH_FAILED")
        self.store.record_event(name, "operator", f"trigger (run {run.id})")
        return {"name": name, "run_id": run.id}

    def reload(self) -> dict[str, Any]:
        """Re-read supervisor.toml and rescan the folder; unchanged strategies are not touched."""
        if self._shutting_down:
            raise ControlError("the supervisor is shutting down", code="SHUTTING_DOWN")
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
            self._environment = None  # scrub_env may have changed
            self.watcher.debounce = self.config.host.debounce
            before = {name: (rt.spec, rt.invalid_reason) for name, rt in self.runtimes.items() if not rt.removed}
            sources = self.watcher.prime()
            for name, source in sorted(sources.items()):
                self._apply_source(name, source)
            for name in sorted(set(self.runtimes) - set(sources)):
                self._remove(name)
            after = {name: (rt.spec, rt.invalid_reason) for name, rt in self.runtimes.items() if not rt.removed}
            result = {
                "added": sorted(set(after) - set(before)),
                "changed": sorted(n for n in after if n in before and after[n] != before[n]),
                "removed": sorted(set(before) - set(after)),
                "warnings": warnings,
            }
            log.info("reloaded: %s", result)
            return result
        finally:
            self.notifier.reloaded(self._status_text())

    def _reload_from_signal(self) -> None:
        if not self._started or self._shutting_down:
            log.warning("SIGHUP ignored: the supervisor is %s", "shutting down" if self._shutting_down else "still starting")
            return
        try:
            self.reload()
        except ControlError as exc:
            log.error("%s", exc)

    async def _serve_control(self) -> None:
        from .control import serve_control

        await serve_control(self, self.config.control_socket)

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
        """Scheduler thread, control servers and fork server alive: the condition for a watchdog ping."""
        servers = [task for task in self._tasks if task.get_name() in ("control", "run-channel")]
        answering = time.monotonic() - self.launcher.last_pong < _PING_DEADLINE
        return self.scheduler.alive and all(not task.done() for task in servers) and self.launcher.alive and answering

    def _watchdog(self) -> None:
        if self.healthy():
            self.notifier.watchdog()
        else:
            log.error("not healthy (scheduler alive: %s, fork server alive: %s); withholding watchdog ping", self.scheduler.alive, self.launcher.alive)

    # -- shutdown ------------------------------------------------------------

    async def _stop_everything(self) -> None:
        self._shutting_down = True
        self._loop.remove_signal_handler(signal.SIGHUP)
        self.notifier.stopping()
        for task in self._tasks:
            if task.get_name() in ("watch", "prune"):
                task.cancel()
        if hasattr(self, "scheduler"):
            self.scheduler.shutdown()
        waits = []
        if hasattr(self, "runs"):
            log.info("stopping: %d active run(s)", len(self.runs.active))
            for rt in list(self.runs.active.values()):
                if rt.run is not None:
                    self.runs.stop(rt, StopReason("stopped", "supervisor shutting down"))
                    waits.append(rt.run.done)
        for rt in self.runtimes.values():
            self._cancel_backoff(rt)
        if waits:
            limit = max((rt.run.spec.settings.grace for rt in self.runs.active.values() if rt.run is not None), default=0.0) + self.config.host.shutdown_timeout
            _, pending = await asyncio.wait(waits, timeout=limit)
            if pending:
                log.error("%d run(s) did not stop in time; the fork server kills them as it exits", len(pending))
        if self.router is not None:
            # After the runs: a strategy in its grace period may still be cancelling orders.
            await self.router.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if hasattr(self, "launcher"):
            await self.launcher.close()
        if hasattr(self, "logpump"):
            await asyncio.to_thread(self.logpump.close)
        if hasattr(self, "store"):
            self.store.close()
        if self._lock.held:  # the sockets are ours only if the lock was
            for sock in (self.config.control_socket, self.config.run_socket):
                try:
                    sock.unlink()
                except FileNotFoundError:
                    pass
        zmq.asyncio.Context.instance().term()
        self._lock.release()
        log.info("supervisor stopped")


def _raise_open_file_limit() -> None:
    # Every run holds three pipes here, and ZeroMQ aborts the process when a
    # listener runs out of descriptors: take all the kernel allows.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20), hard))
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit above %d", soft)


def _timing(spec: StrategySpec) -> tuple[Any, ...]:
    settings = spec.settings
    return (spec.schedule, settings.misfire_grace, settings.coalesce)


_RESTART_ONLY = ("state_dir", "database", "strategies_dir", "preload", "log_max_bytes", "log_backups", "prelaunch", "watch_interval")


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
