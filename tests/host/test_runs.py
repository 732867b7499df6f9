"""End-to-end: what a misbehaving run can do to the supervisor (nothing), through real processes."""

from __future__ import annotations

import time

import psutil
import pytest
from tests.host.conftest import Host, wait_for

pytestmark = pytest.mark.e2e


def assert_responsive(host: Host, within: float = 2.0) -> None:
    started = time.monotonic()
    result = host.cli("status")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < within, "the control channel answered late"


def test_garbage_and_lies_on_the_status_descriptor(host: Host) -> None:
    host.write_strategy("liar", """
        def run(ctx):
            import os
            os.write(3, b"y" * 200_000 + b"\\n")   # a line longer than anything we keep
            os.write(3, b'\\x00\\xff not json\\n{"event": "entered", "t": "soon"}\\n[1, 2]\\n')
            os.write(3, b'{"event": "result", "outcome": "failed", "error": 123}\\n')
            os.write(3, b'{"event": "result", "outcome": "failed", "error": "' + b"x" * 5000 + b'\\\\nline two"}\\n')
            raise ValueError("the real error")
    """)
    host.start()
    host.cli("trigger", "liar")
    run, = host.finished_runs("liar", 1)
    # The first well-formed result wins: a forged one only misleads about the strategy itself.
    assert run["outcome"] == "failed" and run["exit_code"] == 1
    assert run["error"] is None or (len(run["error"]) <= 500 and "\n" not in run["error"])
    row = host.status()["liar"]
    assert row["state"] == "idle" and row["pid"] is None and "\n" not in (row["last_error"] or "")
    assert host.cli("trigger", "liar").returncode == 0, "no phantom run is left behind"


def test_a_descendant_flooding_the_status_descriptor_does_not_wedge_the_loop(host: Host) -> None:
    host.write_strategy("flooder", """
        def run(ctx):
            import os
            if os.fork() == 0:
                os.setsid()
                while True:
                    try:
                        os.write(3, b"{}\\n" * 20000)
                    except OSError:
                        os._exit(0)
    """)
    host.write_strategy("healthy", """
        SCHEDULE = "* * * * * *"
        def run(ctx):
            pass
    """)
    host.start()
    host.cli("trigger", "flooder")
    host.finished_runs("flooder", 1)
    assert_responsive(host)
    before = len(host.runs("healthy"))
    wait_for(lambda: len(host.runs("healthy")) >= before + 2, 6, message="other strategies to keep running")
    wait_for(lambda: not [p for p in host.host_processes() if p.environ().get("TRADEHOST_STRATEGY") == "flooder"], 5, message="the escaped flooder to be swept")


def test_setsid_descendants_count_against_the_process_limit(host: Host) -> None:
    host.write_strategy("escaper", """
        MAX_PROCS = 5
        def run(ctx):
            import os, time
            for _ in range(12):
                if os.fork() == 0:
                    os.setsid()
                    time.sleep(60)
                    os._exit(0)
            time.sleep(60)
    """)
    host.start()
    host.cli("trigger", "escaper")
    run, = host.finished_runs("escaper", 1, timeout=10)
    assert run["outcome"] == "procs" and "process limit 5" in run["error"]
    wait_for(lambda: not [p for p in host.host_processes() if p.environ().get("TRADEHOST_STRATEGY") == "escaper"], 5, message="escaped children to be killed")


def test_many_threads_do_not_trip_the_memory_limit(host: Host) -> None:
    host.write_strategy("threaded", """
        MEMORY = "200MB"
        def run(ctx):
            import threading, time
            threads = [threading.Thread(target=time.sleep, args=(0.5,)) for _ in range(64)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            print("64 threads done")
    """)
    host.start()
    host.cli("trigger", "threaded")
    run, = host.finished_runs("threaded", 1)
    assert run["outcome"] == "ok", run
    assert "64 threads done" in host.log("threaded")


def test_orderly_shutdown_leaves_no_escaped_process(host: Host) -> None:
    host.write_strategy("daemonizer", """
        SCHEDULE = "@continuous"
        def run(ctx):
            import subprocess
            # No marker in its environment, its own session: only the process tree knows it.
            subprocess.Popen(["sleep", "600"], env={}, start_new_session=True)
            while ctx.sleep(0.1):
                pass
    """)
    host.start()
    host.wait_state("daemonizer", "running")
    wait_for(lambda: any(p.name() == "sleep" for p in psutil.Process(host.process.pid).children(recursive=True)), 5, message="the daemon to start")
    sleepers = [p for p in psutil.Process(host.process.pid).children(recursive=True) if p.name() == "sleep"]
    assert host.stop() == 0
    wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in sleepers), 5, message="the escaped daemon to die with the host")


def test_a_strategy_named_like_a_stdlib_module_shadows_nothing(host: Host) -> None:
    host.write_strategy("statistics", "def run(ctx):\n    print('I am a strategy')\n")
    host.write_strategy("user", """
        def run(ctx):
            import statistics
            print("stdev", statistics.stdev([1, 2, 3, 4]))
    """)
    host.start()
    host.cli("trigger", "user")
    host.cli("trigger", "statistics")
    run, = host.finished_runs("user", 1)
    assert run["outcome"] == "ok", run
    assert "stdev 1.29" in host.log("user")
    assert host.finished_runs("statistics", 1)[0]["outcome"] == "ok"


def test_a_burst_of_200_strategies_on_one_slot(host: Host) -> None:
    for index in range(200):
        host.write_strategy(f"s{index:03d}", """
            SCHEDULE = "*/5 * * * * *"
            def run(ctx):
                pass
        """)
    host.start()
    first = time.time()
    next_slot = (int(first) // 5 + 1) * 5
    if next_slot - first < 1:
        next_slot += 5
    time.sleep(max(0, next_slot - time.time()))
    assert_responsive(host, within=5)

    def fired() -> bool:
        rows = host.query("SELECT COUNT(*) FROM runs WHERE scheduled_at = ? AND outcome = 'ok'", float(next_slot))
        return rows[0][0] == 200

    wait_for(fired, 15, 0.2, "all 200 runs of the slot to finish")
    assert host.stop() == 0


def test_flooding_the_run_channel_costs_the_supervisor_little(host: Host) -> None:
    host.write_strategy("hammer", """
        def run(ctx):
            import json, zmq
            for i in range(16):
                ctx.state[f"k{i}"] = "v" * 60_000
            context = zmq.Context()
            sockets = [context.socket(zmq.DEALER) for _ in range(4)]
            for sock in sockets:
                sock.connect(ctx._channel._endpoint)
            request = json.dumps({"v": 1, "token": ctx._channel._token, "op": "state.items"}).encode()
            for _ in range(1000):
                for sock in sockets:
                    sock.send(request)   # and never read a reply
            import time
            time.sleep(3)
    """)
    host.start()
    supervisor = psutil.Process(host.process.pid)
    before = supervisor.memory_info().rss
    host.cli("trigger", "hammer")
    host.wait_state("hammer", "running")
    time.sleep(1.5)
    assert_responsive(host)
    run, = host.finished_runs("hammer", 1, timeout=15)
    assert run["outcome"] == "ok", run
    assert supervisor.memory_info().rss - before < 200 * 1024 * 1024


def fork_server(host: Host) -> psutil.Process:
    supervisor = psutil.Process(host.process.pid)
    return [p for p in supervisor.children() if "host.forkserver" in " ".join(p.cmdline())][0]


def test_a_stopped_fork_server_is_replaced(host: Host) -> None:
    host.write_strategy("ticker", """
        SCHEDULE = "* * * * * *"
        def run(ctx):
            pass
    """)
    host.start()
    host.finished_runs("ticker", 1)
    # From outside: a run's sandbox keeps strategies from signalling the fork server (tests/host/test_sandbox.py).
    fork_server(host).suspend()
    time.sleep(1)
    assert "not answered" not in host.stderr()
    wait_for(lambda: "has not answered" in host.stderr() or "has not started run" in host.stderr(), 15, message="the frozen fork server to be noticed")
    count = len(host.runs("ticker"))
    wait_for(lambda: len([r for r in host.runs("ticker") if r["outcome"] == "ok"]) > count, 15, message="runs to resume on a new fork server")


def test_a_killed_fork_server_takes_every_descendant_with_it(host: Host) -> None:
    host.write_strategy("parent", """
        SCHEDULE = "@continuous"
        def run(ctx):
            import subprocess, time
            subprocess.Popen(["sleep", "601"])
            subprocess.Popen(["sleep", "602"], start_new_session=True, env={})
            while True:
                time.sleep(0.1)
    """)
    host.start()
    host.wait_state("parent", "running")
    supervisor = psutil.Process(host.process.pid)
    wait_for(lambda: len([p for p in supervisor.children(recursive=True) if p.name() == "sleep"]) == 2, 5, message="the sleeps")
    sleepers = [p for p in supervisor.children(recursive=True) if p.name() == "sleep"]
    server = fork_server(host)
    server.kill()
    wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in sleepers), 10, message="the descendants to die")
    host.wait_state("parent", "running", timeout=15)
    assert host.runs("parent")[0]["outcome"] == "lost"


def test_a_double_forked_escapee_is_swept_while_its_run_goes_on(host: Host) -> None:
    host.write_strategy("sneaky", """
        SCHEDULE = "@continuous"
        def run(ctx):
            import os, time
            if os.fork() == 0:
                if os.fork() == 0:
                    os.setsid()
                    time.sleep(1)   # by now re-parented to the fork server
                    hog = bytearray(300 * 1024 * 1024)
                    hog[::4096] = b"x" * len(hog[::4096])
                    time.sleep(600)
                os._exit(0)
            while True:
                time.sleep(0.1)
    """)
    host.start()
    host.wait_state("sneaky", "running")

    def escapees() -> list[psutil.Process]:
        server = fork_server(host)
        run_pid = host.status()["sneaky"]["pid"]
        return [p for p in server.children() if p.pid != run_pid]

    time.sleep(2.5)
    assert not escapees(), "a process that left its run's tree and group does not survive"
    assert host.status()["sneaky"]["state"] == "running"


def test_timeout_counts_from_the_slot_not_from_the_prelaunch(host: Host) -> None:
    host.write_config("[host]\nwatch_interval = 0.1\nprelaunch = 1.5\n")
    host.write_strategy("quick", """
        SCHEDULE = "*/2 * * * * *"
        TIMEOUT = 1
        def run(ctx):
            import time
            time.sleep(0.3)
    """)
    host.start()
    runs = host.finished_runs("quick", 2, timeout=10)
    assert all(run["outcome"] == "ok" for run in runs), runs


def test_reloads_inside_the_prelaunch_window_never_run_a_slot_twice(host: Host) -> None:
    host.write_config("[host]\nwatch_interval = 0.1\nprelaunch = 0.8\n")
    host.write_strategy("steady", """
        SCHEDULE = "* * * * * *"
        def run(ctx):
            pass
    """)
    host.start()
    deadline = time.monotonic() + 5
    grace = 30
    while time.monotonic() < deadline:
        grace = 60 if grace == 30 else 30
        host.write_config(f"[host]\nwatch_interval = 0.1\nprelaunch = 0.8\n\n[strategies.steady]\nmisfire_grace = {grace}\n")
        assert host.cli("reload").returncode == 0
        time.sleep(0.2)
    slots = [run["scheduled_at"] for run in host.runs("steady")]
    assert len(slots) >= 3 and len(slots) == len(set(slots)), slots
    skipped = host.query("SELECT detail FROM events WHERE strategy = 'steady' AND kind = 'skip'")
    assert not skipped, skipped
