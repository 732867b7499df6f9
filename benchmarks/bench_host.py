#!/usr/bin/env python3
"""Benchmark the strategy host: launch latency, burst launches, memory, idle CPU.

Run from the repository root::

    .venv/bin/python benchmarks/bench_host.py            # full run, about 4 minutes
    .venv/bin/python benchmarks/bench_host.py --quick    # about 1 minute
    .venv/bin/python benchmarks/bench_host.py --output /tmp/report.md

Every figure comes from real supervisors started as subprocesses
(``tradehost run --config ...``) on throw-away folders under /tmp; nothing
needs the network. The report (markdown) is printed and, with --output,
written to a file.

Measured:

1. cron fire -> run() entered: a strategy on ``* * * * * *`` records
   ``time.time()`` as the first statement of ``run(ctx)`` minus
   ``ctx.scheduled_at`` (the cron slot). The runs table splits the same runs
   into slot -> run recorded (``started_at``; negative: the run is started
   ``prelaunch`` seconds ahead of its slot) and recorded -> runner about to
   call run() (``entered_at``).
1b. the same with ``prelaunch = 0``: each run forked at its slot.
2. the same strategy file run the way a fresh-interpreter platform runs it:
   ``subprocess.Popen([python, "-c", <import the usual modules, import the
   file, call run>])``; latency from just before ``Popen`` to run() entered.
3. 100 strategies on the same ``*/5 * * * * *`` slot: slot -> the last of
   the 100 entering run().
4. unique memory (USS) of a trivial ``@continuous`` run process, beside a
   fresh interpreter that imports the usual modules and sleeps.
5. idle CPU of the supervisor and its fork server with 100 registered cron
   strategies that do not fire during the measurement.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
_VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(_VENV_BIN / "python") if (_VENV_BIN / "python").exists() else sys.executable
TRADEHOST = str(_VENV_BIN / "tradehost") if (_VENV_BIN / "tradehost").exists() else (shutil.which("tradehost") or "tradehost")
USUAL_IMPORTS = "zmq, pydantic, sqlalchemy, psutil, croniter, apscheduler"
MB = 1024 * 1024

# ------------------------------------------------------------------ strategies

# The entry time is the first statement of run(); everything after it is bookkeeping.
RECORDING_STRATEGY = '''\
import os
import time

SCHEDULE = {schedule!r}
TIMEOUT = 30
PARAMS = {{"out": {out!r}}}


def run(ctx):
    entered = time.time()
    line = f"{{ctx.name}} {{ctx.run_id}} {{ctx.scheduled_at.timestamp()!r}} {{entered!r}}\\n"
    fd = os.open(os.path.join(ctx.params["out"], "entries.txt"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
'''

CONTINUOUS_STRATEGY = '''\
SCHEDULE = "@continuous"


def run(ctx):
    while ctx.sleep(1):
        pass
'''

IDLE_STRATEGY = '''\
SCHEDULE = "0 0 1 1 *"
TIMEOUT = 30


def run(ctx):
    pass
'''

# What a fresh-interpreter platform does per run: new python, the usual imports,
# import the strategy file, call run(ctx). argv: path, out dir, fire time, run id.
FRESH_RUN = f'''\
import {USUAL_IMPORTS}
import importlib.util, sys, types
from datetime import datetime, timezone
path, out, fire, run_id = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
spec = importlib.util.spec_from_file_location("fresh_strategy", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
ctx = types.SimpleNamespace(name="fresh", run_id=run_id, trigger="schedule",
                            scheduled_at=datetime.fromtimestamp(fire, timezone.utc), params={{"out": out}})
module.run(ctx)
'''

FRESH_IDLE = f'''\
import {USUAL_IMPORTS}
import sys, time
sys.stdout.write("ready\\n")
sys.stdout.flush()
time.sleep(600)
'''

# ------------------------------------------------------------------ helpers


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def mib(value: float) -> str:
    return f"{value / MB:.1f} MiB"


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "min": min(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def read_entries(out: Path) -> list[tuple[str, int, float, float]]:
    """(name, run_id, slot, entered) lines written by RECORDING_STRATEGY."""
    path = out / "entries.txt"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            rows.append((parts[0], int(parts[1]), float(parts[2]), float(parts[3])))
    return rows


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = psutil.virtual_memory().total
    except Exception:  # pragma: no cover - informational only
        mem = 0
    return {
        "cpu": model,
        "cores": f"{os.cpu_count()} logical ({psutil.cpu_count(logical=False) or '?'} physical)",
        "memory": f"{mem / 1024**3:.1f} GiB",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "kernel": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "bytecode": "PYTHONDONTWRITEBYTECODE=1 (no .pyc written)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "default (.pyc caches written)",
    }


def code_version() -> str:
    """The commit under test (read-only git queries); "+ local changes" if host/ differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "host"], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head or 'unknown'}{' + local changes in host/' if dirty else ''}"


class Busy:
    """Whole-machine CPU use (all processes, % of all cores) over a phase: shows competing load."""

    def __init__(self) -> None:
        self.start = psutil.cpu_times()

    def percent(self) -> float:
        end = psutil.cpu_times()
        idle = lambda t: t.idle + getattr(t, "iowait", 0.0)  # noqa: E731
        total = sum(end) - sum(self.start)
        return 100.0 * (1 - (idle(end) - idle(self.start)) / total) if total > 0 else 0.0


# ------------------------------------------------------------------ a supervisor under test


class Host:
    """One supervisor on its own folder: strategies/ (``s``), state (``st``), config."""

    def __init__(self, root: Path, strategies: dict[str, str], host_options: str = "") -> None:
        self.root = root
        self.strategies_dir = root / "s"
        self.state_dir = root / "st"
        self.out = root / "out"
        self.config = root / "supervisor.toml"
        self.strategies_dir.mkdir(parents=True)
        self.out.mkdir()
        for name, text in strategies.items():
            (self.strategies_dir / f"{name}.py").write_text(text)
        # out/ is where the benchmark's strategies write; the rest of the project folder is read-only to runs.
        self.config.write_text('[host]\nstrategies_dir = "s"\nstate_dir = "st"\nwritable = ["out"]\n' + host_options)
        if len(str(self.state_dir / "control.sock")) >= 100:
            raise SystemExit(f"temporary path too long for a unix socket: {self.state_dir}")
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_at: float | None = None
        self._log = None

    def start(self, timeout: float = 60.0) -> float:
        """Start the supervisor and return the time its status first answered."""
        self._log = open(self.root / "supervisor.log", "wb")
        self.proc = subprocess.Popen(
            [TRADEHOST, "run", "--config", str(self.config)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"supervisor exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self._cli("status").returncode == 0:
                self.ready_at = time.time()
                return self.ready_at
            time.sleep(0.1)
        raise RuntimeError(f"supervisor not ready after {timeout:g} s:\n{self.log_tail()}")

    def _cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([TRADEHOST, *args, "--config", str(self.config)], capture_output=True, text=True, timeout=60)

    def status(self) -> list[dict[str, Any]]:
        result = self._cli("status", "--json")
        if result.returncode != 0:
            raise RuntimeError(f"tradehost status failed: {result.stderr.strip()}")
        return json.loads(result.stdout)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def forkserver_pid(self) -> int | None:
        try:
            for child in psutil.Process(self.pid).children():
                if "host.forkserver" in " ".join(child.cmdline()):
                    return child.pid
        except psutil.Error:
            pass
        return None

    def stop(self, timeout: float = 60.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def runs(self) -> list[sqlite3.Row]:
        db = self.state_dir / "tradehost.db"
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute("SELECT * FROM runs ORDER BY id").fetchall()
        finally:
            conn.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.root / "supervisor.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class Results:
    machine: dict[str, str] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    latency_at_slot: dict[str, Any] = field(default_factory=dict)
    fresh: dict[str, Any] = field(default_factory=dict)
    burst: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    idle: dict[str, Any] = field(default_factory=dict)
    busy: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ 1. fire -> run() latency


def bench_latency(root: Path, samples: int, warmup: float, prelaunch: float | None = None) -> dict[str, Any]:
    """``prelaunch`` None keeps the default; 0 forks each run at its slot rather than ahead of it."""
    out_dir = root / "out"
    options = "" if prelaunch is None else f"prelaunch = {prelaunch}\n"
    host = Host(root, {"lat": RECORDING_STRATEGY.format(schedule="* * * * * *", out=str(out_dir))}, options)
    try:
        ready = host.start()
        first_slot = ready + warmup
        log(f"latency: supervisor pid {host.pid} ready; collecting {samples} samples (slots after a {warmup:g} s warm-up)")
        deadline = time.time() + warmup + samples * 1.5 + 30
        while time.time() < deadline:
            entries = [e for e in read_entries(out_dir) if e[2] >= first_slot]
            if len(entries) >= samples:
                break
            time.sleep(0.5)
        time.sleep(1.2)  # let the last run finish so the runs table has entered_at
    finally:
        host.stop()
    entries = sorted((e for e in read_entries(out_dir) if e[2] >= first_slot), key=lambda e: e[2])[:samples]
    if not entries:
        raise RuntimeError(f"no latency samples recorded:\n{host.log_tail()}")
    ids = {e[1] for e in entries}
    rows = [r for r in host.runs() if r["id"] in ids]
    latencies = [e[3] - e[2] for e in entries]
    fire = [r["started_at"] - r["scheduled_at"] for r in rows]
    launch = [r["entered_at"] - r["started_at"] for r in rows if r["entered_at"] is not None]
    runner_to_run = {r["id"]: r["entered_at"] for r in rows if r["entered_at"] is not None}
    call = [e[3] - runner_to_run[e[1]] for e in entries if e[1] in runner_to_run]
    slots = [e[2] for e in entries]
    missing = int(round(slots[-1] - slots[0])) + 1 - len(set(slots))
    by_id = {r["id"]: r for r in rows}
    slowest = []
    for name, run_id, slot, entered in sorted(entries, key=lambda e: e[3] - e[2], reverse=True)[:3]:
        row = by_id.get(run_id)
        slowest.append({
            "slot": datetime.fromtimestamp(slot, timezone.utc).strftime("%H:%M:%S"),
            "total": entered - slot,
            "fire": row["started_at"] - slot if row else None,
            "launch": row["entered_at"] - row["started_at"] if row and row["entered_at"] is not None else None,
        })
    return {
        "slowest": slowest,
        "latency": summary(latencies),
        "fire": summary(fire) if fire else None,
        "launch": summary(launch) if launch else None,
        "call": summary(call) if call else None,
        "missing_slots": missing,
        "raw_ms": [round(x * 1000, 2) for x in latencies],
    }


def bench_fresh(root: Path, samples: int) -> dict[str, Any]:
    out_dir = root / "out"
    out_dir.mkdir(parents=True)
    strategy = root / "fresh_strategy.py"
    strategy.write_text(RECORDING_STRATEGY.format(schedule="* * * * * *", out=str(out_dir)))
    log(f"fresh interpreter: {samples} runs of `{Path(PYTHON).name} -c <import {USUAL_IMPORTS}; import file; run(ctx)>`")
    # One untimed run first to warm the page cache (both paths compile the strategy file each
    # run when PYTHONDONTWRITEBYTECODE is set; otherwise both find its bytecode cache).
    subprocess.run([PYTHON, "-c", FRESH_RUN, str(strategy), str(out_dir), str(time.time()), "0"], check=True, cwd=root)
    (out_dir / "entries.txt").unlink(missing_ok=True)
    totals = []
    for i in range(1, samples + 1):
        fire = time.time()
        proc = subprocess.Popen([PYTHON, "-c", FRESH_RUN, str(strategy), str(out_dir), repr(fire), str(i)], cwd=root)
        proc.wait()
        totals.append(time.time() - fire)
        if proc.returncode != 0:
            raise RuntimeError(f"fresh interpreter run failed with {proc.returncode}")
        time.sleep(0.1)
    entries = read_entries(out_dir)
    latencies = [e[3] - e[2] for e in entries]
    return {"latency": summary(latencies), "process_total": summary(totals), "raw_ms": [round(x * 1000, 2) for x in latencies]}


# ------------------------------------------------------------------ 3. 100 strategies on one slot


def bench_burst(root: Path, count: int, firings: int, period: int) -> dict[str, Any]:
    out_dir = root / "out"
    text = RECORDING_STRATEGY.format(schedule=f"*/{period} * * * * *", out=str(out_dir))
    host = Host(root, {f"b{i:03d}": text for i in range(count)})
    try:
        ready = host.start()
        first_slot = ready + 1.0
        log(f"burst: supervisor pid {host.pid} ready with {count} strategies on */{period} s; waiting for {firings} firings")
        deadline = time.time() + (firings + 2) * period + 30
        while time.time() < deadline:
            by_slot: dict[float, int] = {}
            for e in read_entries(out_dir):
                if e[2] >= first_slot:
                    by_slot[e[2]] = by_slot.get(e[2], 0) + 1
            # A slot is settled when all runs entered, or 5 s after it with stragglers counted as missing.
            settled = [s for s, n in by_slot.items() if n >= count or time.time() > s + period]
            if len(settled) >= firings:
                break
            time.sleep(0.5)
        time.sleep(1.5)
    finally:
        host.stop()
    entries = [e for e in read_entries(out_dir) if e[2] >= first_slot]
    rows = host.runs()
    slots = sorted({e[2] for e in entries})[:firings]
    per_firing = []
    for slot in slots:
        entered = sorted(e[3] - slot for e in entries if e[2] == slot)
        started = sorted(r["started_at"] - slot for r in rows if r["scheduled_at"] == slot)
        per_firing.append({
            "slot": datetime.fromtimestamp(slot, timezone.utc).strftime("%H:%M:%S"),
            "runs": len(entered),
            "launched": len(started),
            "first": entered[0],
            "median": percentile(entered, 50),
            "last": entered[-1],
            "last_launch_started": started[-1] if started else None,
        })
    skipped = sum(1 for r in rows if r["outcome"] not in (None, "ok"))
    return {"count": count, "period": period, "firings": per_firing, "not_ok_runs": skipped}


# ------------------------------------------------------------------ 4. memory of one run process


def _memory_of(pid: int) -> dict[str, int]:
    info = psutil.Process(pid).memory_full_info()
    return {"uss": info.uss, "pss": getattr(info, "pss", 0), "rss": info.rss}


def bench_memory(root: Path, settle: float) -> dict[str, Any]:
    host = Host(root, {"idle_loop": CONTINUOUS_STRATEGY})
    result: dict[str, Any] = {}
    try:
        host.start()
        deadline = time.time() + 30
        pid = None
        while time.time() < deadline:
            row = next((r for r in host.status() if r["name"] == "idle_loop"), None)
            if row and row.get("pid") and row.get("state") == "running":
                pid = row["pid"]
                break
            time.sleep(0.2)
        if pid is None:
            raise RuntimeError(f"continuous strategy never reported a pid:\n{host.log_tail()}")
        time.sleep(settle)
        samples = []
        for _ in range(3):
            samples.append(_memory_of(pid))
            time.sleep(0.3)
        result["run"] = {k: statistics.median(s[k] for s in samples) for k in ("uss", "pss", "rss")}
        result["run_pid"] = pid
        fs = host.forkserver_pid()
        if fs is not None:
            result["forkserver"] = _memory_of(fs)
        result["supervisor"] = _memory_of(host.pid)
    finally:
        host.stop()
    log("memory: fresh interpreter with the usual imports")
    proc = subprocess.Popen([PYTHON, "-c", FRESH_IDLE], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=root)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(settle)
        result["fresh"] = _memory_of(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    return result


# ------------------------------------------------------------------ 5. idle CPU


def _cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def bench_idle(root: Path, count: int, settle: float, duration: float) -> dict[str, Any]:
    host = Host(root, {f"i{i:03d}": IDLE_STRATEGY for i in range(count)})
    try:
        host.start()
        registered = len(host.status())
        time.sleep(settle)
        sup = psutil.Process(host.pid)
        fs_pid = host.forkserver_pid()
        fs = psutil.Process(fs_pid) if fs_pid is not None else None
        log(f"idle: {registered} strategies registered; sampling supervisor {sup.pid} and fork server {fs_pid} for {duration:g} s")
        t0 = time.monotonic()
        s0 = _cpu_seconds(sup)
        f0 = _cpu_seconds(fs) if fs else 0.0
        time.sleep(duration)
        s1 = _cpu_seconds(sup)
        f1 = _cpu_seconds(fs) if fs else 0.0
        elapsed = time.monotonic() - t0
        threads = sup.num_threads()
    finally:
        host.stop()
    return {
        "registered": registered,
        "duration": elapsed,
        "supervisor_pct": (s1 - s0) / elapsed * 100,
        "forkserver_pct": (f1 - f0) / elapsed * 100,
        "total_pct": (s1 - s0 + f1 - f0) / elapsed * 100,
        "supervisor_threads": threads,
    }


# ------------------------------------------------------------------ report


def verdict(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def render(r: Results, command: str, args: argparse.Namespace) -> str:
    out: list[str] = []
    add = out.append
    add("## Strategy host benchmark")
    add("")
    add(f"Command: `{command}`  ")
    add(f"Date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    add("")
    add("| Machine | |")
    add("|---|---|")
    for key in ("code", "cpu", "cores", "memory", "python", "kernel", "bytecode", "load"):
        label = {"load": "load average at start", "code": "code (git)"}.get(key, key)
        add(f"| {label} | {r.machine[key]} |")
    add("")

    add("| # | Figure | Measured | Target | |")
    add("|---|---|---|---|---|")
    lat = r.latency.get("latency")
    if lat:
        add(f"| 1 | cron slot → run() entered, p50 (n={lat['n']}) | {ms(lat['p50'])} | ≤ 5 ms | {verdict(lat['p50'] <= 0.005)} |")
        add(f"| 1 | cron slot → run() entered, p99 | {ms(lat['p99'])} | ≤ 20 ms | {verdict(lat['p99'] <= 0.020)} |")
        add(f"| 1 | cron slot → run() entered, p90 / max | {ms(lat['p90'])} / {ms(lat['max'])} | – | |")
    at_slot = r.latency_at_slot.get("latency")
    if at_slot:
        add(f"| 1b | same with `prelaunch = 0` (forked at the slot, not ahead of it), p50 / p99 (n={at_slot['n']}) | {ms(at_slot['p50'])} / {ms(at_slot['p99'])} | – | |")
    fresh = r.fresh.get("latency")
    if fresh and (at_slot or lat):
        # Like for like: a fork at the slot (1b) against a new interpreter at the slot.
        base, label = (at_slot, "forked at the slot (1b)") if at_slot else (lat, "with prelaunch (1)")
        add(f"| 2 | fresh interpreter per run: fire → run() entered, p50 / p99 (n={fresh['n']}) | {ms(fresh['p50'])} / {ms(fresh['p99'])} | comparison | "
            f"the host {label} is {fresh['p50'] / base['p50']:.0f}× (p50) / {fresh['p99'] / base['p99']:.0f}× (p99) faster |")
    if r.burst.get("firings"):
        worst = max(f["last"] for f in r.burst["firings"])
        complete = all(f["runs"] == r.burst["count"] for f in r.burst["firings"])
        add(f"| 3 | {r.burst['count']} strategies on one slot: slot → last run() entered, worst of {len(r.burst['firings'])} firings | "
            f"{ms(worst)}{'' if complete else ' (some runs missing)'} | ≤ 1 s | {verdict(worst <= 1.0 and complete)} |")
    if r.memory.get("run"):
        uss = r.memory["run"]["uss"]
        add(f"| 4 | USS of one @continuous run process | {mib(uss)} | ≤ 10 MB | {verdict(uss <= 10 * 1000 * 1000)} |")
        add(f"| 4 | its RSS (mostly shared with the fork server) | {mib(r.memory['run']['rss'])} | – | |")
        if r.memory.get("fresh"):
            f = r.memory["fresh"]
            add(f"| 4 | fresh `python -c 'import {USUAL_IMPORTS}'` USS / RSS | {mib(f['uss'])} / {mib(f['rss'])} | comparison | host run is {f['uss'] / uss:.1f}× smaller (USS) |")
    if r.idle:
        add(f"| 5 | idle CPU, supervisor + fork server, {r.idle['registered']} cron strategies, {r.idle['duration']:.0f} s | {r.idle['total_pct']:.2f} % of one core | < 2 % | {verdict(r.idle['total_pct'] < 2.0)} |")
    add("")

    add("### Details")
    add("")
    if lat:
        add("**1. Latency breakdown** (same runs; `started_at`/`entered_at` from the runs table):")
        add("")
        add("| segment | n | min | p50 | p90 | p99 | max |")
        add("|---|---|---|---|---|---|---|")

        def row(label: str, s: dict[str, float] | None) -> None:
            if s:
                add(f"| {label} | {s['n']} | {ms(s['min'])} | {ms(s['p50'])} | {ms(s['p90'])} | {ms(s['p99'])} | {ms(s['max'])} |")

        row("slot → run() entered (strategy's own clock)", lat)
        row("slot → run recorded (`started_at`; negative = ahead of the slot)", r.latency.get("fire"))
        row("run recorded → runner about to call run() (`entered_at`)", r.latency.get("launch"))
        row("runner `entered` → first statement of run()", r.latency.get("call"))
        if fresh:
            row("fresh interpreter: fire → run() entered", fresh)
            row("fresh interpreter: fire → process exited", r.fresh.get("process_total"))
        if r.latency.get("slowest"):
            add("")
            parts = []
            for x in r.latency["slowest"]:
                split = f" (slot → `_launch` {ms(x['fire'])}, `_launch` → runner {ms(x['launch'])})" if x["fire"] is not None and x["launch"] is not None else ""
                parts.append(f"{x['slot']} {ms(x['total'])}{split}")
            add("Slowest samples: " + "; ".join(parts) + ".")
        if r.latency.get("missing_slots"):
            add("")
            add(f"{r.latency['missing_slots']} slot(s) in the sampled range produced no run.")
        add("")
    if r.burst.get("firings"):
        add(f"**3. {r.burst['count']} strategies on `*/{r.burst['period']} * * * * *`**, per firing (times after the slot):")
        add("")
        add("| slot (UTC) | runs entered | first entered | median entered | last entered | last `_launch` started |")
        add("|---|---|---|---|---|---|")
        for f in r.burst["firings"]:
            last_launch = ms(f["last_launch_started"]) if f["last_launch_started"] is not None else "–"
            add(f"| {f['slot']} | {f['runs']}/{r.burst['count']} | {ms(f['first'])} | {ms(f['median'])} | {ms(f['last'])} | {last_launch} |")
        if r.burst.get("not_ok_runs"):
            add("")
            add(f"{r.burst['not_ok_runs']} run(s) did not end `ok`.")
        add("")
    if r.memory.get("run"):
        add("**4. Memory** (psutil `memory_full_info`, median of 3 samples after settling):")
        add("")
        add("| process | USS | PSS | RSS |")
        add("|---|---|---|---|")
        for label, key in (("@continuous run process", "run"), ("fork server", "forkserver"), ("supervisor", "supervisor"), (f"fresh python importing {USUAL_IMPORTS}", "fresh")):
            m = r.memory.get(key)
            if m:
                add(f"| {label} | {mib(m['uss'])} | {mib(m['pss'])} | {mib(m['rss'])} |")
        add("")
    if r.idle:
        add(f"**5. Idle CPU** over {r.idle['duration']:.1f} s: supervisor {r.idle['supervisor_pct']:.2f} % "
            f"({r.idle['supervisor_threads']} threads), fork server {r.idle['forkserver_pct']:.2f} %.")
        add("")
    if r.busy:
        names = {"1": "1 latency", "1b": "1b latency, prelaunch = 0", "2": "2 fresh interpreter", "3": "3 burst", "4": "4 memory", "5": "5 idle CPU"}
        add("**Whole-machine CPU busy during each phase** (all processes incl. the host under test, % of all cores; "
            "anything well above the host's own share is competing load):")
        add("")
        add("| phase | busy |")
        add("|---|---|")
        for key, value in r.busy.items():
            add(f"| {names.get(key, key)} | {value:.1f} % |")
        add("")
    for note in r.notes:
        add(f"- {note}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples and shorter waits (about 1 minute)")
    parser.add_argument("--samples", type=int, help="latency samples (default 60, --quick 15)")
    parser.add_argument("--fresh-samples", type=int, help="fresh-interpreter samples (default: same as --samples, at least 20)")
    parser.add_argument("--firings", type=int, help="burst firings (default 5, --quick 3)")
    parser.add_argument("--strategies", type=int, default=100, help="strategies in the burst and idle tests (default 100)")
    parser.add_argument("--idle-seconds", type=float, help="idle CPU measurement (default 30, --quick 10)")
    parser.add_argument("--only", default="1,1b,2,3,4,5", help="comma-separated subset of measurements, e.g. 1,2")
    parser.add_argument("--output", type=Path, help="also write the markdown report here")
    parser.add_argument("--json", type=Path, help="also write all figures, including raw samples, as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, databases)")
    args = parser.parse_args(argv)
    samples = args.samples or (15 if args.quick else 60)
    fresh_samples = args.fresh_samples or max(20, samples)
    firings = args.firings or (3 if args.quick else 5)
    idle_seconds = args.idle_seconds or (10.0 if args.quick else 30.0)
    only = {part.strip() for part in args.only.split(",")}

    if sys.platform != "linux":
        raise SystemExit("the host runs on Linux only")
    exe = os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO) + os.sep) else sys.executable
    command = " ".join([exe, "benchmarks/bench_host.py", *(argv if argv is not None else sys.argv[1:])])
    results = Results(machine=machine())
    results.machine["code"] = code_version()
    root = Path(tempfile.mkdtemp(prefix="thb", dir="/tmp"))
    log(f"working in {root}")
    try:
        phases = [
            ("1", "latency", lambda: bench_latency(root / "a", samples, warmup=2.0)),
            ("1b", "latency_at_slot", lambda: bench_latency(root / "a0", samples, warmup=2.0, prelaunch=0)),
            ("2", "fresh", lambda: bench_fresh(root / "b", fresh_samples)),
            ("3", "burst", lambda: bench_burst(root / "c", args.strategies, firings, period=5)),
            ("4", "memory", lambda: bench_memory(root / "d", settle=1.5)),
            ("5", "idle", lambda: bench_idle(root / "e", args.strategies, settle=3.0 if args.quick else 5.0, duration=idle_seconds)),
        ]
        for key, attr, action in phases:
            if key in only:
                busy = Busy()
                setattr(results, attr, action())
                results.busy[key] = busy.percent()
    finally:
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    report = render(results, command, args)
    print(report)
    if args.json:
        args.json.write_text(json.dumps(dataclasses.asdict(results), indent=1, default=str))
    if args.output:
        args.output.write_text(report)
        log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
