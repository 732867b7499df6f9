#!/usr/bin/env python3
"""Where does the time between a cron slot and run() go? A probe, not a benchmark.

Runs a real supervisor (same code, same fork server, same child path) with
timestamps wrapped around each step, for one strategy on ``* * * * * *``,
and prints each segment's distribution::

    .venv/bin/python benchmarks/profile_launch.py                 # 30 samples
    .venv/bin/python benchmarks/profile_launch.py --sync NORMAL   # what-if: SQLite synchronous=NORMAL
    .venv/bin/python benchmarks/profile_launch.py --burst 100     # 100 strategies on */5 s

The supervisor runs as ``python profile_launch.py --serve CONFIG`` (host.cli
with wrappers installed) and its fork server as ``python profile_launch.py
--forkserver FD PRELOAD`` (host.forkserver with wrappers installed). Nothing
under host/ is modified; the wrappers only read the clock and append lines to
files in the run's temp folder. ``--sync`` replaces the SQLite pragma hook for
this experiment only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
PROBE_ENV = "THPROBE_DIR"
SYNC_ENV = "THPROBE_SYNC"

STRATEGY = '''\
import os
import time

SCHEDULE = {schedule!r}
TIMEOUT = 30
PARAMS = {{"out": {out!r}}}


def run(ctx):
    entered = time.time()
    line = f"{{ctx.name}} {{ctx.run_id}} {{ctx.scheduled_at.timestamp()!r}} {{entered!r}}\\n"
    fd = os.open(os.path.join(ctx.params["out"], "entries.txt"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, line.encode())
    os.close(fd)
'''


def _append(name: str, record: dict) -> None:
    folder = os.environ.get(PROBE_ENV)
    if not folder:
        return
    fd = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)


# ------------------------------------------------------------------ supervisor side


def serve(config: str) -> int:
    sys.path.insert(0, str(REPO))
    import subprocess as sp

    import host.store as store
    from host import cli
    from host.launcher import Launcher
    from host.scheduler import LaunchExecutor
    from host.store import Store
    from host.supervisor import Supervisor

    sync = os.environ.get(SYNC_ENV)
    if sync:
        def pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={sync}")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()
        store._sqlite_pragmas = pragmas  # looked up when Store() registers the hook

    # The fork server is started as `python -m host.forkserver FD PRELOAD`; start this file instead.
    real_popen = sp.Popen

    class ProbePopen(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, args, *a, **kw):
            if isinstance(args, list) and args[1:3] == ["-m", "host.forkserver"]:
                args = [args[0], str(HERE), "--forkserver", *args[3:]]
            super().__init__(args, *a, **kw)

    sp.Popen = ProbePopen

    pending: dict[str, dict] = {}   # strategy name -> timestamps before the run id exists
    by_run: dict[int, dict] = {}

    real_submit = LaunchExecutor.submit_job

    def submit_job(self, job, run_times):
        pending.setdefault(job.id, {})["aps_submit"] = time.time()
        return real_submit(self, job, run_times)

    LaunchExecutor.submit_job = submit_job

    real_fire = Supervisor._fire

    def fire(self, name, slot):
        pending.setdefault(name, {})["loop_fire"] = time.time()
        return real_fire(self, name, slot)

    Supervisor._fire = fire

    current: dict = {}
    real_begin = Store.begin_run

    def begin_run(self, name, trigger, scheduled_at, started_at):
        t0 = time.time()
        run_id = real_begin(self, name, trigger, scheduled_at, started_at)
        current.update(run_id=run_id, begin_run=time.time() - t0)
        return run_id

    Store.begin_run = begin_run

    real_request = Supervisor._launch_request

    def launch_request(self, *a, **kw):
        t0 = time.time()
        try:
            return real_request(self, *a, **kw)
        finally:
            current["launch_request"] = time.time() - t0

    Supervisor._launch_request = launch_request

    real_send = Launcher.launch

    def launch(self, request, fds):
        t0 = time.time()
        try:
            return real_send(self, request, fds)
        finally:
            current["send_at"] = time.time()
            current["send"] = current["send_at"] - t0

    Launcher.launch = launch

    from host.logpump import LogPump
    from host.runtime import StrategyRuntime

    def timed(cls, attr, key):
        real = getattr(cls, attr)

        def wrapper(*a, **kw):
            t0 = time.time()
            try:
                return real(*a, **kw)
            finally:
                current[key] = current.get(key, 0.0) + time.time() - t0

        setattr(cls, attr, wrapper)

    timed(LogPump, "add", "logpump_add")
    timed(StrategyRuntime, "set_state", "set_state")

    real_launch = Supervisor._launch

    def _launch(self, rt, trigger, scheduled_at):
        current.clear()
        t0 = time.time()
        run = real_launch(self, rt, trigger, scheduled_at)
        t1 = time.time()
        record = dict(pending.pop(rt.name, {}))
        record.update(current, name=rt.name, slot=scheduled_at, launch_start=t0, launch_total=t1 - t0)
        if run is not None:
            by_run[run.id] = record
        return run

    Supervisor._launch = _launch

    real_pid = Store.set_run_pid

    def set_run_pid(self, run_id, pid):
        t0 = time.time()
        try:
            return real_pid(self, run_id, pid)
        finally:
            if run_id in by_run:
                by_run[run_id]["started_msg_at"] = t0
                by_run[run_id]["set_run_pid"] = time.time() - t0

    Store.set_run_pid = set_run_pid

    try:
        return cli.main(["run", "--config", config])
    finally:
        for run_id, record in by_run.items():
            _append("supervisor.jsonl", {"run_id": run_id, **record})


# ------------------------------------------------------------------ fork server side


def forkserver(argv: list[str]) -> None:
    sys.path.insert(0, str(REPO))
    import host.forkserver as fs
    from host import runner

    state: dict = {}
    real_launch = fs._launch

    def launch(sock, request, fds, wakeup, children):
        state.clear()
        state.update(run_id=request.get("run_id"), recv=time.time())
        real_launch(sock, request, fds, wakeup, children)
        state["parent_done"] = time.time()
        _append("forkserver.jsonl", dict(state))

    fs._launch = launch

    real_fork = os.fork

    def fork():
        state["fork_call"] = time.time()
        pid = real_fork()
        if pid == 0:
            state["child_start"] = time.time()
        else:
            state["fork_return"] = time.time()
        return pid

    os.fork = fork

    real_confine = fs.confine

    def confine(**kw):
        try:
            return real_confine(**kw)
        finally:
            state["confined"] = time.time()

    fs.confine = confine

    real_load = runner.load_target

    def load_target(target):
        state["load_start"] = time.time()
        try:
            return real_load(target)
        finally:
            state["load_done"] = time.time()

    runner.load_target = load_target

    real_report = runner._report

    def report(event):
        if event.get("event") == "entered":
            state["entered_event"] = event.get("t")
        real_report(event)
        if event.get("event") == "result":
            _append("child.jsonl", dict(state))  # after run(): off the measured path

    runner._report = report
    fs.main([sys.argv[0], *argv])


# ------------------------------------------------------------------ driver


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def drive(args: argparse.Namespace) -> int:
    root = Path(tempfile.mkdtemp(prefix="thp", dir="/tmp"))
    try:
        (root / "s").mkdir()
        (root / "out").mkdir()
        (root / "probe").mkdir()
        count = args.burst or 1
        schedule = "*/5 * * * * *" if args.burst else "* * * * * *"
        text = STRATEGY.format(schedule=schedule, out=str(root / "out"))
        for i in range(count):
            (root / "s" / f"p{i:03d}.py").write_text(text)
        config = root / "supervisor.toml"
        config.write_text('[host]\nstrategies_dir = "s"\nstate_dir = "st"\n')
        env = dict(os.environ, **{PROBE_ENV: str(root / "probe")})
        if args.sync:
            env[SYNC_ENV] = args.sync
        tradehost = str(REPO / ".venv" / "bin" / "tradehost")
        with open(root / "supervisor.log", "wb") as logf:
            proc = subprocess.Popen([PYTHON, str(HERE), "--serve", str(config)], env=env, stdout=logf, stderr=subprocess.STDOUT)
            try:
                for _ in range(300):
                    if subprocess.run([tradehost, "status", "--config", str(config)], capture_output=True).returncode == 0:
                        break
                    time.sleep(0.1)
                ready = time.time()
                wanted = args.samples * count
                deadline = ready + args.samples * (5 if args.burst else 1) * 1.5 + 20
                while time.time() < deadline:
                    path = root / "out" / "entries.txt"
                    lines = path.read_text().splitlines() if path.exists() else []
                    if sum(1 for line in lines if float(line.split()[2]) >= ready + 2) >= wanted:
                        break
                    time.sleep(0.5)
                time.sleep(1.5)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        entries = {}
        for line in (root / "out" / "entries.txt").read_text().splitlines():
            name, run_id, slot, entered = line.split()
            if float(slot) >= ready + 2:
                entries[int(run_id)] = (float(slot), float(entered))
        sup = {r["run_id"]: r for r in load_jsonl(root / "probe" / "supervisor.jsonl")}
        fsv = {r["run_id"]: r for r in load_jsonl(root / "probe" / "forkserver.jsonl")}
        child = {r["run_id"]: r for r in load_jsonl(root / "probe" / "child.jsonl")}
        segments: dict[str, list[float]] = {}

        def add(label: str, value: float | None) -> None:
            if value is not None:
                segments.setdefault(label, []).append(value)

        per_run: dict[int, dict[str, float]] = {}
        for run_id, (slot, entered) in entries.items():
            s, f, c = sup.get(run_id), fsv.get(run_id), child.get(run_id)
            if not (s and f and c):
                continue
            mine = per_run.setdefault(run_id, {})

            def add(label: str, value: float | None, _mine=mine) -> None:
                if value is not None:
                    segments.setdefault(label, []).append(value)
                    _mine[label] = value
            add("slot → APScheduler thread submits", s.get("aps_submit", 0) - slot if "aps_submit" in s else None)
            add("submit → event loop _fire", s["loop_fire"] - s["aps_submit"] if "loop_fire" in s and "aps_submit" in s else None)
            add("_fire → _launch", s["launch_start"] - s["loop_fire"] if "loop_fire" in s else None)
            add("  begin_run (SQLite INSERT + commit)", s.get("begin_run"))
            add("  _launch_request (dict, model_dump, env)", s.get("launch_request"))
            add("  Launcher.launch (JSON + sendmsg)", s.get("send"))
            add("  LogPump.add", s.get("logpump_add"))
            add("  rt.set_state (incl. its log line)", s.get("set_state"))
            add("  rest of _launch (pipes, token, add_reader)", s["launch_total"] - sum(s.get(k, 0.0) for k in ("begin_run", "launch_request", "send", "logpump_add", "set_state")))
            add("_launch total", s["launch_total"])
            add("send → fork server recv", f["recv"] - s["send_at"])
            add("recv → fork()", f["fork_call"] - f["recv"])
            add("fork() → child running", c["child_start"] - c["fork_call"])
            add("fork() → parent returns", f["fork_return"] - f["fork_call"])
            add("child: confine()", c["confined"] - c["child_start"])
            add("child: logging + Context", c["load_start"] - c["confined"])
            add("child: load_target (import strategy file)", c["load_done"] - c["load_start"])
            add("child: entered report → run() first line", entered - c["load_done"])
            add("TOTAL slot → run() entered", entered - slot)
            add("(set_run_pid commit, after the fork, on the loop)", s.get("set_run_pid"))
        if args.worst and not args.burst:
            total = "TOTAL slot → run() entered"
            for run_id in sorted(per_run, key=lambda i: per_run[i].get(total, 0.0), reverse=True)[: args.worst]:
                parts = ", ".join(f"{k.strip()} {v * 1000:.1f}" for k, v in per_run[run_id].items() if k != total and v >= 0.002)
                print(f"slow run {run_id}: total {per_run[run_id][total] * 1000:.1f} ms; segments ≥ 2 ms: {parts}")
        if args.burst:
            print(f"burst of {count}: per firing, slot → last _launch end and → last run() entered")
            for slot in sorted({v[0] for v in entries.values()}):
                ids = [i for i, v in entries.items() if v[0] == slot]
                ends = [sup[i]["launch_start"] + sup[i]["launch_total"] - slot for i in ids if i in sup]
                begins = [sup[i]["begin_run"] for i in ids if i in sup and "begin_run" in sup[i]]
                print(f"  {len(ids)} runs: last _launch end {max(ends) * 1000:.0f} ms, last entered {max(entries[i][1] - slot for i in ids) * 1000:.0f} ms, "
                      f"sum begin_run {sum(begins) * 1000:.0f} ms, sum _launch {sum(sup[i]['launch_total'] for i in ids if i in sup) * 1000:.0f} ms")
        print(f"{'segment':52} {'n':>4} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8}")
        for label, values in segments.items():
            print(f"{label:52} {len(values):4d} {pct(values, 50) * 1000:8.2f} {pct(values, 90) * 1000:8.2f} {max(values) * 1000:8.2f}")
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        return serve(sys.argv[2])
    if len(sys.argv) > 1 and sys.argv[1] == "--forkserver":
        forkserver(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=30, help="runs (firings with --burst) to sample")
    parser.add_argument("--sync", choices=["OFF", "NORMAL", "FULL"], help="override SQLite synchronous (what-if)")
    parser.add_argument("--burst", type=int, help="N strategies on */5 s instead of one on every second")
    parser.add_argument("--worst", type=int, default=3, help="list the segments of the N slowest runs")
    parser.add_argument("--keep", action="store_true")
    return drive(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
