"""The fork server: a clean, single-threaded process that forks every run.

The supervisor starts it once as a fresh interpreter (``python -m
host.forkserver FD PRELOAD``). It imports the run-time modules and the
configured preloads, freezes the garbage collector so that children share
those pages, and then only forks, reaps and reports. Forking from here rather
than from the supervisor avoids forking a multi-threaded process (scheduler,
log pump, ZeroMQ I/O threads), and costs a few milliseconds instead of a new
interpreter per run.

Protocol on the SOCK_SEQPACKET socket (one JSON object per packet)::

    server → supervisor  {"op": "hello", "pid": N, "preload_errors": [...]}
    supervisor → server  {"op": "launch", "run_id": N, ...request}  + 3 fds (stdout, stderr, status write ends)
                         {"op": "signal", "run_id": N, "signal": S}   to the run's process group
                         {"op": "sweep"}   kill strays now (the supervisor saw some)
                         {"op": "ping", "n": K}
    server → supervisor  {"op": "pong", "n": K}
    server → supervisor  {"op": "started", "run_id": N, "pid": P}
                         {"op": "failed", "run_id": N, "error": "..."}
                         {"op": "exited", "run_id": N, "pid": P, "status": S, "maxrss": B, "cpu": T}

End of file on the socket means the supervisor is gone: the server kills
whatever is left of its runs and exits.

Only the fork server signals runs: it knows whether a run's leader has been
reaped, so a signal can never reach a recycled pid. When a leader exits, the
server kills the rest of its process group while the zombie still holds the
group id, then reaps it. Both directions of the socket are non-blocking with
queues, so neither side can stall the other in a burst of launches.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import time
import traceback
from collections import deque
from typing import Any

from . import runner, sandbox
from .child import Limits, confine, set_child_subreaper, set_parent_death_signal

__all__ = ["main"]

MAX_PACKET = 256 * 1024
_DEFERRED_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
_SWEEP_INTERVAL = 0.25
_SWEEPS_AFTER_EXIT = 8
_RUNTIME_MODULES = ("host.runner", "host.context", "host.runchannel", "zmq", "asyncio", "json", "logging")


class _Outbox:
    """Messages to the supervisor, sent as the socket accepts them."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.queue: deque[bytes] = deque()

    def send(self, message: dict[str, Any]) -> None:
        self.queue.append(json.dumps(message).encode())
        self.flush()

    def flush(self) -> None:
        while self.queue:
            try:
                self.sock.send(self.queue[0])
            except BlockingIOError:
                return
            self.queue.popleft()


def _preload(modules: list[str]) -> list[str]:
    errors = []
    for name in (*_RUNTIME_MODULES, *modules):
        try:
            importlib.import_module(name)
        except Exception as exc:  # a broken preload must not keep every strategy from running
            errors.append(f"{name}: {runner.error_summary(exc)}")
    return errors


def _child(sock: socket.socket, request: dict[str, Any], fds: list[int], wakeup: tuple[int, int], ruleset: int | None) -> None:
    code = 70
    try:
        sock.detach()
        for fd in wakeup:
            os.close(fd)
        confine(pipes=fds, parent_pid=request["_parent"], limits=Limits.from_request(request.get("limits", {})), cwd=request["cwd"], env=request["env"], ruleset=ruleset)
        code = runner.run_target(request)
    except BaseException:
        try:
            traceback.print_exc()
        except BaseException:
            pass
    finally:
        os._exit(code)


def _launch(
    outbox: _Outbox, request: dict[str, Any], fds: list[int], wakeup: tuple[int, int], children: dict[int, int], rulesets: sandbox.Rulesets,
) -> None:
    run_id = request["run_id"]
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        outbox.send({"op": "failed", "run_id": run_id, "error": f"expected 3 descriptors, got {len(fds)}"})
        return
    protect = request.get("protect")
    try:
        ruleset = None if protect is None else rulesets.get(protect, request.get("readonly") or (), request.get("writable") or ())
    except OSError as exc:
        # Never run a strategy unconfined that was meant to be confined.
        for fd in fds:
            os.close(fd)
        outbox.send({"op": "failed", "run_id": run_id, "error": f"the run's sandbox could not be built: {exc}"})
        return
    request["_parent"] = os.getpid()
    try:
        pid = os.fork()
    except OSError as exc:
        for fd in fds:
            os.close(fd)
        outbox.send({"op": "failed", "run_id": run_id, "error": f"fork failed: {exc.strerror}"})
        return
    if pid == 0:
        _child(outbox.sock, request, fds, wakeup, ruleset)
    for fd in fds:
        os.close(fd)
    children[pid] = run_id
    outbox.send({"op": "started", "run_id": run_id, "pid": pid})


def _signal_run(request: dict[str, Any], children: dict[int, int]) -> None:
    for pid, run_id in children.items():
        if run_id == request.get("run_id"):
            _signal_group(pid, int(request["signal"]))
            return


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        try:
            os.kill(pid, signum)  # the child has not called setsid yet
        except ProcessLookupError:
            pass


def _reap(outbox: _Outbox, children: dict[int, int]) -> bool:
    """Reap every exited child; True if a run ended."""
    ended = False
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return ended
        if info is None:
            return ended
        pid = info.si_pid
        run_id = children.pop(pid, None)
        if run_id is not None:
            # The unreaped leader still holds its group id: nothing else can own it.
            _signal_group(pid, signal.SIGKILL)
        _, status, usage = os.wait4(pid, 0)
        if run_id is not None:
            ended = True
            outbox.send({
                "op": "exited", "run_id": run_id, "pid": pid, "status": status,
                "maxrss": usage.ru_maxrss * 1024, "cpu": usage.ru_utime + usage.ru_stime,
            })


def _supervisor_died(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _sweep_strays(children: dict[int, int]) -> None:
    """Kill our children that are not runs nor in a live run's process group.

    Descendants that left their run's group (setsid) re-parent to us, the
    subreaper, when their parent dies; a run's processes must stay in its tree.
    """
    for pid in _children_of(os.getpid()):
        if pid in children:
            continue
        try:
            group = os.getpgid(pid)
        except ProcessLookupError:
            continue
        if group not in children:
            _signal_group(pid, signal.SIGKILL)


def _kill_descendants(runs: list[int], timeout: float = 5.0) -> None:
    """Kill every run's process group, then every process still our child (re-parented strays), and reap them.

    Killing a process re-parents its children to us, and that can lag the kill:
    keep looking until none has appeared for a moment, not just until the first
    empty look.
    """
    for pid in runs:
        _signal_group(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        mine = _children_of(os.getpid())
        if not mine:
            now = time.monotonic()
            if quiet_since is None:
                quiet_since = now
            elif now - quiet_since > 0.05:
                return
            time.sleep(0.005)
            continue
        quiet_since = None
        for pid in mine:
            _signal_group(pid, signal.SIGKILL)
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        time.sleep(0.005)


def _children_of(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == parent:
                found.append(int(entry))
    return found


def serve(sock: socket.socket, preload: list[str]) -> None:
    """Run the fork server loop until the supervisor closes its end."""
    # If the supervisor dies, even by SIGKILL, take every run and its descendants
    # down with us before exiting (the finally below), rather than leave them to init.
    signal.signal(signal.SIGUSR1, _supervisor_died)
    set_parent_death_signal(signal.SIGUSR1)
    set_child_subreaper()
    # Terminal signals belong to the supervisor; it decides when runs stop.
    # Blocked rather than ignored: a child inherits the mask, so a stop sent
    # between its fork and its set-up stays pending instead of being lost.
    signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED_SIGNALS)
    errors = _preload(preload)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    gc.collect()
    gc.freeze()  # keep collector passes from touching (and so copying) inherited pages
    children: dict[int, int] = {}
    rulesets = sandbox.Rulesets()
    sock.setblocking(False)
    outbox = _Outbox(sock)
    outbox.send({"op": "hello", "pid": os.getpid(), "preload_errors": errors})
    sweeps = 0  # strays show up shortly after a run ends; look a few times, then sleep
    try:
        while True:
            writers: list[socket.socket] = [sock] if outbox.queue else []
            readers: list[socket.socket | int] = [sock, wake_r]
            ready, writable, _ = select.select(readers, writers, [], _SWEEP_INTERVAL if sweeps else None)
            if writable:
                outbox.flush()
            if wake_r in ready:
                try:
                    os.read(wake_r, 4096)
                except BlockingIOError:
                    pass
                if _reap(outbox, children):
                    sweeps = _SWEEPS_AFTER_EXIT
            if sweeps:
                sweeps -= 1
                _sweep_strays(children)
            if sock in ready and not _receive(sock, outbox, (wake_r, wake_w), children, rulesets):
                return
    finally:
        _kill_descendants(list(children))


def _receive(sock: socket.socket, outbox: _Outbox, wakeup: tuple[int, int], children: dict[int, int], rulesets: sandbox.Rulesets) -> bool:
    """Handle every request waiting on the socket; False once the supervisor has gone."""
    while True:
        try:
            message, fds, _flags, _addr = socket.recv_fds(sock, MAX_PACKET, 8)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not message:
            return False
        request = json.loads(message)
        op = request.get("op")
        if op == "launch":
            _launch(outbox, request, fds, wakeup, children, rulesets)
            continue
        for fd in fds:
            os.close(fd)
        if op == "signal":
            _signal_run(request, children)
        elif op == "sweep":
            _sweep_strays(children)
        elif op == "ping":
            outbox.send({"op": "pong", "n": request.get("n")})


def main(argv: list[str]) -> None:
    sock = socket.socket(fileno=int(argv[1]))
    serve(sock, json.loads(argv[2]) if len(argv) > 2 else [])


if __name__ == "__main__":
    main(sys.argv)
