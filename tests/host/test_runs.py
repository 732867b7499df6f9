"""End-to-end: what a misbehaving run can do to the supervisor (nothing), through real processes."""

from __future__ import annotations

import time

import psutil
import pytest
from conftest import Host, wait_for

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
            os.write(3, b'\\x00\\xff not json\\n{"event": "entered", "t": "soon"}\\n[1, 2]\\n')
            os.write(3, b'{"event": "result", "outcome": "failed", "error": 123}\\n')
            os.write(3, b'{"event": "result", "outcome": "ok", "error": "' + b"x" * 5000 + b'\\\\nline two"}\\n')
            os.write(3, b"y" * 200_000)   # an endless line
            raise ValueError("the real error")
    """)
    host.start()
    host.cli("trigger", "liar")
    run, = host.finished_runs("liar", 1)
    assert run["outcome"] == "failed" and run["exit_code"] == 1
    assert run["error"] == "ValueError: the real error" or len(run["error"]) <= 500
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
