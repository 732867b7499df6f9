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
    server → supervisor  {"op": "started", "run_id": N, "pid": P}
                         {"op": "failed", "run_id": N, "error": "..."}
                         {"op": "exited", "run_id": N, "pid": P, "status": S, "maxrss": B, "cpu": T}

End of file on the socket means the supervisor is gone: the server exits.
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
import traceback
from typing import Any

from . import runner
from .child import Limits, confine, set_child_subreaper, set_parent_death_signal

__all__ = ["main"]

_MAX_PACKET = 256 * 1024
_RUNTIME_MODULES = ("host.runner", "host.context", "host.runchannel", "zmq", "asyncio", "json", "logging")


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.send(json.dumps(message).encode())


def _preload(modules: list[str]) -> list[str]:
    errors = []
    for name in (*_RUNTIME_MODULES, *modules):
        try:
            importlib.import_module(name)
        except Exception as exc:  # a broken preload must not keep every strategy from running
            errors.append(f"{name}: {runner.error_summary(exc)}")
    return errors


def _child(sock: socket.socket, request: dict[str, Any], fds: list[int], wakeup: tuple[int, int]) -> None:
    code = 70
    try:
        sock.detach()
        for fd in wakeup:
            os.close(fd)
        confine(pipes=fds, parent_pid=request["_parent"], limits=Limits.from_request(request.get("limits", {})), cwd=request["cwd"], env=request["env"])
        code = runner.run_target(request)
    except BaseException:
        try:
            traceback.print_exc()
        except BaseException:
            pass
    finally:
        os._exit(code)


def _launch(sock: socket.socket, request: dict[str, Any], fds: list[int], wakeup: tuple[int, int], children: dict[int, int]) -> None:
    run_id = request["run_id"]
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        _send(sock, {"op": "failed", "run_id": run_id, "error": f"expected 3 descriptors, got {len(fds)}"})
        return
    request["_parent"] = os.getpid()
    try:
        pid = os.fork()
    except OSError as exc:
        for fd in fds:
            os.close(fd)
        _send(sock, {"op": "failed", "run_id": run_id, "error": f"fork failed: {exc.strerror}"})
        return
    if pid == 0:
        _child(sock, request, fds, wakeup)
    for fd in fds:
        os.close(fd)
    children[pid] = run_id
    _send(sock, {"op": "started", "run_id": run_id, "pid": pid})


def _reap(sock: socket.socket, children: dict[int, int]) -> None:
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        run_id = children.pop(pid, None)
        if run_id is None:
            continue  # an orphaned grandchild re-parented to us as subreaper
        _send(sock, {
            "op": "exited", "run_id": run_id, "pid": pid, "status": status,
            "maxrss": usage.ru_maxrss * 1024, "cpu": usage.ru_utime + usage.ru_stime,
        })


def serve(sock: socket.socket, preload: list[str]) -> None:
    """Run the fork server loop until the supervisor closes its end."""
    set_parent_death_signal(signal.SIGKILL)
    set_child_subreaper()
    # Terminal signals belong to the supervisor; it decides when runs stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    errors = _preload(preload)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    gc.collect()
    gc.freeze()  # keep collector passes from touching (and so copying) inherited pages
    children: dict[int, int] = {}
    _send(sock, {"op": "hello", "pid": os.getpid(), "preload_errors": errors})
    while True:
        ready, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in ready:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
            _reap(sock, children)
        if sock in ready:
            message, fds, _flags, _addr = socket.recv_fds(sock, _MAX_PACKET, 8)
            if not message:
                return
            request = json.loads(message)
            if request.get("op") == "launch":
                _launch(sock, request, fds, (wake_r, wake_w), children)
            else:
                for fd in fds:
                    os.close(fd)


def main(argv: list[str]) -> None:
    sock = socket.socket(fileno=int(argv[1]))
    serve(sock, json.loads(argv[2]) if len(argv) > 2 else [])


if __name__ == "__main__":
    main(sys.argv)
