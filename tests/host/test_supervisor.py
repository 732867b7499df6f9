"""End-to-end: a real `tradehost run`, real fork server, real ZeroMQ, a real SQLite file."""

from __future__ import annotations

import os
import signal
import stat
import time

import psutil
import pytest
from tests.host.conftest import Host, wait_for

pytestmark = pytest.mark.e2e

OK = """
SCHEDULE = "* * * * * *"
def run(ctx):
    print("tick", ctx.run_id)
"""


def test_cron_runs_each_second_with_its_slot_and_history(host: Host) -> None:
    host.write_strategy("ticker", """
        SCHEDULE = "* * * * * *"
        def run(ctx):
            print("slot", ctx.scheduled_at.isoformat(), "trigger", ctx.trigger)
    """)
    host.start()
    runs = host.finished_runs("ticker", 3, timeout=6)
    slots = [run["scheduled_at"] for run in runs]
    assert all(slot == int(slot) for slot in slots), "six-field cron slots fall on whole seconds"
    assert slots == sorted(set(slots))
    assert all(run["outcome"] == "ok" and run["exit_code"] == 0 and run["peak_rss"] > 0 for run in runs)
    # Prelaunch: the process starts ahead of its slot, but run() never begins before it.
    assert all(run["started_at"] < run["scheduled_at"] <= run["entered_at"] for run in runs[1:]), runs
    row = host.status()["ticker"]
    assert row["schedule"] == "* * * * * *" and row["next_run"] is not None and row["runs"] >= 3
    assert "trigger schedule" in host.log("ticker")


def test_crash_is_recorded_and_other_strategies_keep_running(host: Host) -> None:
    host.write_strategy("crasher", """
        SCHEDULE = "* * * * * *"
        def run(ctx):
            raise ValueError("boom")
    """)
    host.write_strategy("healthy", OK)
    host.write_strategy("broken", "SCHEDULE = '* * * * * *'\ndef run(ctx)\n    pass\n")
    host.start()
    crashed = host.finished_runs("crasher", 2)
    assert crashed[0]["outcome"] == "failed" and crashed[0]["exit_code"] == 1
    assert crashed[0]["error"] == "ValueError: boom"
    host.finished_runs("healthy", 2)
    rows = host.status()
    assert rows["crasher"]["last_error"] == "ValueError: boom" and rows["crasher"]["last_exit_code"] == 1
    assert rows["broken"]["state"] == "invalid"
    assert "broken.py:2" in rows["broken"]["reason"] and "syntax" in rows["broken"]["reason"]
    assert "\n" not in rows["broken"]["reason"]
    assert 'raise ValueError("boom")' in host.log("crasher"), "the traceback lands in the strategy's log"
    assert host.process is not None and host.process.poll() is None


def test_hang_past_timeout_is_stopped_even_when_it_ignores_sigterm(host: Host) -> None:
    host.write_strategy("polite", """
        TIMEOUT = 0.5
        def run(ctx):
            import time
            time.sleep(60)
    """)
    host.write_strategy("stubborn", """
        TIMEOUT = 0.5
        GRACE = 0.5
        def run(ctx):
            import signal, time
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:
                time.sleep(0.1)
    """)
    host.start()
    for name in ("polite", "stubborn"):
        assert host.cli("trigger", name).returncode == 0
    polite, = host.finished_runs("polite", 1, timeout=10)
    stubborn, = host.finished_runs("stubborn", 1, timeout=10)
    assert polite["outcome"] == "timeout" and "0.5 s" in polite["error"]
    assert polite["exit_code"] == 0, "SIGTERM raised StopRequested inside run(); the run unwound cleanly"
    assert stubborn["outcome"] == "timeout" and stubborn["signal"] == signal.SIGKILL
    assert stubborn["ended_at"] - stubborn["started_at"] < 5
    assert host.status()["stubborn"]["state"] == "idle"


def test_memory_hog_is_killed_with_a_clear_reason(host: Host) -> None:
    host.write_strategy("hog", """
        MEMORY = "100MB"
        def run(ctx):
            import time
            chunks = []
            while True:
                chunks.append(bytearray(8 * 1024 * 1024))  # zero-filled pages count once touched
                for chunk in chunks[-1:]:
                    chunk[::4096] = b"x" * len(chunk[::4096])
                time.sleep(0.01)
    """)
    host.write_strategy("healthy", OK)
    host.start()
    host.cli("trigger", "hog")
    run, = host.finished_runs("hog", 1, timeout=15)
    assert run["outcome"] == "memory", run
    assert "memory limit 100 MiB" in run["error"] or "MemoryError" in run["error"]
    assert host.status()["hog"]["last_error"] == run["error"]
    assert all(r["outcome"] == "ok" for r in host.finished_runs("healthy", 1))


def test_grandchildren_die_with_their_run_and_process_limit_holds(host: Host) -> None:
    host.write_strategy("spawner", """
        def run(ctx):
            import os, time
            for _ in range(3):
                if os.fork() == 0:
                    time.sleep(120)
                    os._exit(0)
            print("parent done")
    """)
    host.write_strategy("forkbomb", """
        MAX_PROCS = 10
        def run(ctx):
            import os, time
            for _ in range(40):
                if os.fork() == 0:
                    time.sleep(120)
                    os._exit(0)
                time.sleep(0.01)
            time.sleep(120)
    """)
    host.start()
    host.cli("trigger", "spawner")
    run, = host.finished_runs("spawner", 1)
    assert run["outcome"] == "ok"
    wait_for(lambda: not [p for p in host.host_processes() if p.environ().get("TRADEHOST_STRATEGY") == "spawner"], 5, message="grandchildren to be killed")
    host.cli("trigger", "forkbomb")
    bomb, = host.finished_runs("forkbomb", 1, timeout=15)
    assert bomb["outcome"] == "procs" and "process limit 10" in bomb["error"]
    wait_for(lambda: not [p for p in host.host_processes() if p.environ().get("TRADEHOST_STRATEGY") == "forkbomb"], 5, message="fork bomb to be cleaned up")


def test_drop_in_change_and_removal_without_restart(host: Host) -> None:
    host.write_strategy("first", OK)
    host.start()
    assert set(host.status()) == {"first"}
    dropped = time.monotonic()
    host.write_strategy("second", """
        SCHEDULE = "* * * * * *"
        def run(ctx):
            print("version one")
    """)
    host.wait_state("second", "idle", "starting", "running", timeout=5)
    assert time.monotonic() - dropped < 2.0, "a dropped file is picked up within 2 seconds"
    wait_for(lambda: "version one" in host.log("second"), 5, message="first version to run")
    host.write_strategy("second", """
        SCHEDULE = "* * * * * *"
        def run(ctx):
            print("version two")
    """)
    wait_for(lambda: "version two" in host.log("second"), 5, message="the changed file to apply from the next run")
    (host.strategies / "second.py").unlink()
    wait_for(lambda: "second" not in host.status(), 5, message="removed strategy to be unregistered")
    assert host.status()["first"]["state"] in ("idle", "starting", "running")


def test_invalid_then_fixed_file_and_status_reason(host: Host) -> None:
    host.write_strategy("typo", """
        SCHEDULE = "61 * * * *"
        def run(ctx):
            pass
    """)
    host.start()
    row = host.wait_state("typo", "invalid")
    assert row["reason"].startswith(str(host.strategies / "typo.py") + ":2") and "61" in row["reason"]
    assert host.cli("start", "typo").returncode == 1
    host.write_strategy("typo", """
        SCHEDULE = "1 * * * *"
        def run(ctx):
            pass
    """)
    row = host.wait_state("typo", "idle", timeout=5)
    assert row["reason"] is None and row["next_run"].endswith(":01:00+00:00")


def test_stop_during_a_run_persists_across_restart(host: Host) -> None:
    host.write_strategy("sleeper", """
        SCHEDULE = "* * * * * *"
        def run(ctx):
            import time
            print("started")
            time.sleep(60)
    """)
    host.start()
    host.wait_state("sleeper", "running")
    result = host.cli("stop", "sleeper")
    assert result.returncode == 0, result.stderr
    assert "sleeper: stopped" in result.stdout
    run = host.runs("sleeper")[-1]
    assert run["outcome"] == "stopped" and run["ended_at"] is not None
    assert host.status()["sleeper"]["next_run"] is None
    host.stop()
    host.start()
    time.sleep(1.5)
    row = host.status()["sleeper"]
    assert row["state"] == "stopped" and len(host.runs("sleeper")) == 1
    assert host.cli("start", "sleeper").returncode == 0
    host.wait_state("sleeper", "running", timeout=5)


def test_supervisor_sigkill_then_restart(host: Host) -> None:
    host.write_strategy("every", """
        SCHEDULE = "* * * * * *"
        def run(ctx):
            import os, time
            if os.fork() == 0:      # a grandchild that would outlive everything
                time.sleep(300)
                os._exit(0)
            time.sleep(0.6)
    """)
    host.write_strategy("forever", """
        SCHEDULE = "@continuous"
        def run(ctx):
            import time
            while True:
                time.sleep(1)
    """)
    host.write_strategy("parked", OK)
    host.start()
    assert host.cli("stop", "parked").returncode == 0
    host.wait_state("forever", "running")
    host.finished_runs("every", 1)
    host.wait_state("every", "running", timeout=5)
    host.kill()
    # Parent-death signals take the fork server, every run and their descendants down at once.
    try:
        wait_for(lambda: not host.host_processes(), 10, message="every run process and descendant to die with the supervisor")
    except AssertionError:
        survivors = [(p.pid, p.ppid(), os.getpgid(p.pid), p.status(), round(time.time() - p.create_time(), 2), p.environ().get("TRADEHOST_STRATEGY")) for p in host.host_processes()]
        raise AssertionError(f"still alive 10 s after the supervisor was killed: {survivors}") from None
    host.start()
    # Leftover grandchildren of the killed host were cleaned up on start.
    time.sleep(0.5)
    leftovers = [p for p in host.host_processes() if p.create_time() < psutil.Process(host.process.pid).create_time() - 0.01]
    assert not leftovers, leftovers
    time.sleep(2.5)
    runs = host.runs("every")
    slots = [run["scheduled_at"] for run in runs]
    assert len(slots) == len(set(slots)), "no cron slot ran twice"
    assert [run for run in runs if run["outcome"] == "lost"], "the run cut off by SIGKILL is recorded as lost"
    assert host.status()["parked"]["state"] == "stopped"
    assert host.status()["forever"]["state"] == "running"


def test_continuous_backoff_then_fatal_then_operator_start(host: Host) -> None:
    host.write_strategy("flappy", """
        SCHEDULE = "@continuous"
        RESTART_DELAY = 0.1
        RESTART_DELAY_MAX = 0.4
        MAX_FAILURES = 4
        def run(ctx):
            raise RuntimeError("cannot connect")
    """)
    host.start()
    row = host.wait_state("flappy", "fatal", timeout=10)
    runs = host.runs("flappy")
    assert len(runs) == 4
    gaps = [b["started_at"] - a["ended_at"] for a, b in zip(runs, runs[1:])]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.4 - 0.05, gaps
    assert "RuntimeError: cannot connect" in row["last_error"] and "gave up" in row["last_error"]
    time.sleep(1)
    assert len(host.runs("flappy")) == 4, "fatal means no more restarts"
    assert host.cli("start", "flappy").returncode == 0
    wait_for(lambda: len(host.runs("flappy")) > 4, 5, message="operator start to retry")


def test_operator_stop_of_continuous_is_not_a_failure(host: Host) -> None:
    host.write_strategy("loop", """
        SCHEDULE = "@continuous"
        MAX_FAILURES = 1
        def run(ctx):
            while ctx.sleep(0.1):
                pass
    """)
    host.start()
    first = host.wait_state("loop", "running")
    assert host.cli("restart", "loop").returncode == 0
    second = host.wait_state("loop", "running")
    assert second["pid"] != first["pid"]
    assert host.cli("stop", "loop").returncode == 0
    assert host.status()["loop"]["state"] == "stopped"
    assert [run["outcome"] for run in host.runs("loop")] == ["stopped", "stopped"]


def test_overlap_skip_is_recorded_and_runs_never_overlap(host: Host) -> None:
    host.write_strategy("slow", """
        SCHEDULE = "* * * * * *"
        def run(ctx):
            import time
            time.sleep(1.6)
    """)
    host.start()
    runs = host.finished_runs("slow", 2, timeout=10)
    for earlier, later in zip(runs, runs[1:]):
        assert later["started_at"] >= earlier["ended_at"]
    skips = host.query("SELECT detail FROM events WHERE strategy = 'slow' AND kind = 'skip'")
    assert skips and "still running" in skips[0][0]


def test_overlap_replace_stops_the_old_run(host: Host) -> None:
    host.write_strategy("fresh", """
        SCHEDULE = "* * * * * *"
        OVERLAP = "replace"
        GRACE = 0.2
        def run(ctx):
            import time
            time.sleep(30)
    """)
    host.start()
    runs = host.finished_runs("fresh", 2, timeout=10)
    assert runs[0]["outcome"] == "stopped"
    assert runs[1]["started_at"] >= runs[0]["ended_at"]


def test_trigger_manual_and_conflict(host: Host) -> None:
    host.write_strategy("manual", """
        def run():
            import time
            time.sleep(1)
    """)
    host.start()
    row = host.status()["manual"]
    assert row["schedule"] == "@manual" and row["next_run"] is None and row["state"] == "idle"
    first = host.cli("trigger", "manual")
    assert first.returncode == 0 and "started run" in first.stdout
    second = host.cli("trigger", "manual")
    assert second.returncode == 1 and "already running" in second.stderr
    assert second.stderr.count("\n") == 1
    run, = host.finished_runs("manual", 1)
    assert run["trigger"] == "manual" and run["outcome"] == "ok"


def test_unknown_name_and_no_supervisor_are_one_line_errors(host: Host) -> None:
    result = host.cli("status")
    assert result.returncode == 1 and "no supervisor is running" in result.stderr and result.stderr.count("\n") == 1
    host.write_strategy("only", OK)
    host.start()
    for verb in ("start", "stop", "restart", "trigger"):
        result = host.cli(verb, "nosuch")
        assert result.returncode == 1 and "unknown strategy 'nosuch'" in result.stderr and result.stderr.count("\n") == 1


def test_broken_config_stops_run_before_anything_runs(host: Host) -> None:
    host.write_strategy("only", OK)
    host.write_config("""
        [host]
        watch_interval = 0.1

        [strategies.only]
        timout = 5
    """)
    result = host.cli("run")
    assert result.returncode == 2
    assert "supervisor.toml:6" in result.stderr and "strategies.only.timout" in result.stderr
    assert not (host.state / "tradehost.db").exists(), "nothing ran"


def test_reload_and_sighup_leave_unchanged_strategies_alone(host: Host) -> None:
    host.write_strategy("steady", """
        SCHEDULE = "@continuous"
        def run(ctx):
            while ctx.sleep(0.2):
                pass
    """)
    host.write_strategy("tuned", """
        SCHEDULE = "0 12 * * *"
        def run(ctx):
            pass
    """)
    host.start()
    pid = host.wait_state("steady", "running")["pid"]
    host.write_config("""
        [host]
        watch_interval = 0.1

        [strategies.tuned]
        schedule = "0 13 * * *"
    """)
    result = host.cli("reload")
    assert result.returncode == 0 and "changed: tuned" in result.stdout, result.stdout
    rows = host.status()
    assert rows["tuned"]["next_run"].endswith("T13:00:00+00:00")
    assert rows["steady"]["pid"] == pid
    host.write_config("""
        [host]
        watch_interval = 0.1

        [strategies.tuned]
        schedule = "0 14 * * *"
    """)
    assert host.process is not None
    host.process.send_signal(signal.SIGHUP)
    wait_for(lambda: host.status()["tuned"]["next_run"].endswith("T14:00:00+00:00"), 5, message="SIGHUP reload")
    assert host.status()["steady"]["pid"] == pid
    host.write_config("[host]\nwatch_interval = 0.1\n[strategies.tuned]\nschedule = 5\n")
    result = host.cli("reload")
    assert result.returncode == 1 and "reload refused" in result.stderr and "supervisor.toml:4: strategies.tuned.schedule" in result.stderr
    host.process.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in host.stderr(), 5, message="the supervisor to refuse the broken config")
    assert host.status()["tuned"]["next_run"].endswith("T14:00:00+00:00"), "a bad reload changes nothing"


def test_ctx_state_persists_across_runs_and_restarts(host: Host) -> None:
    host.write_strategy("counter", """
        def run(ctx):
            ctx.state["n"] = ctx.state.get("n", 0) + 1
            print("n =", ctx.state["n"])
            try:
                ctx.state["bad"] = object()
            except Exception as exc:
                print("refused:", type(exc).__name__, exc)
    """)
    host.start()
    host.cli("trigger", "counter")
    host.finished_runs("counter", 1)
    host.cli("trigger", "counter")
    host.finished_runs("counter", 2)
    host.stop()
    host.start()
    host.cli("trigger", "counter")
    host.finished_runs("counter", 3)
    log = host.log("counter")
    assert "n = 1" in log and "n = 2" in log and "n = 3" in log
    assert "refused: StateError" in log and "JSON" in log


def test_strategies_never_see_credentials_or_notify_socket(host: Host, tmp_path: object) -> None:
    host.write_strategy("snoop", """
        def run(ctx):
            import os
            print("ENV", sorted(os.environ))
    """)
    host.start(env={"NOTIFY_SOCKET": "/nonexistent/notify", "OANDA_API_KEY": "secret-1", "MY_SERVICE_TOKEN": "secret-2", "HARMLESS": "1"})
    host.cli("trigger", "snoop")
    host.finished_runs("snoop", 1)
    log = host.log("snoop")
    assert "'HARMLESS'" in log and "TRADEHOST_RUN_ID" in log
    for secret in ("NOTIFY_SOCKET", "OANDA_API_KEY", "MY_SERVICE_TOKEN"):
        assert secret not in log


def test_sockets_and_state_are_owner_only(host: Host) -> None:
    host.write_strategy("only", OK)
    host.start()
    assert stat.S_IMODE(os.stat(host.state).st_mode) == 0o700
    for name in ("control.sock", "run.sock"):
        assert stat.S_IMODE(os.stat(host.state / name).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(host.state / "tradehost.db").st_mode) & 0o077 == 0


def test_megabytes_of_output_rotate_and_do_not_disturb(host: Host) -> None:
    host.write_config("""
        [host]
        watch_interval = 0.1
        log_max_bytes = 1000000
        log_backups = 2
    """)
    host.write_strategy("chatty", """
        def run(ctx):
            import sys
            line = "x" * 199 + "\\n"
            for _ in range(100_000):     # 20 MB
                sys.stdout.write(line)
    """)
    host.write_strategy("healthy", OK)
    host.start()
    host.cli("trigger", "chatty")
    started = time.monotonic()
    assert host.cli("status").returncode == 0
    assert time.monotonic() - started < 2, "control stays responsive during the flood"
    run, = host.finished_runs("chatty", 1, timeout=30)
    assert run["outcome"] == "ok"
    logs = sorted(p.name for p in (host.state / "logs").iterdir() if p.name.startswith("chatty"))
    assert logs == ["chatty.log", "chatty.log.1", "chatty.log.2"]
    assert all((host.state / "logs" / name).stat().st_size <= 1_100_000 for name in logs)
    assert host.finished_runs("healthy", 2)


def test_no_two_supervisors_on_one_state_dir(host: Host) -> None:
    host.write_strategy("only", OK)
    host.start()
    result = host.cli("run")
    assert result.returncode == 1 and "already running" in result.stderr
    assert host.cli("status").returncode == 0, "the refused second supervisor left the first one's sockets alone"
    assert (host.state / "control.sock").exists() and (host.state / "run.sock").exists()


def test_clean_shutdown_stops_runs_and_leaves_nothing(host: Host) -> None:
    host.write_strategy("forever", """
        SCHEDULE = "@continuous"
        def run(ctx):
            while ctx.sleep(0.1):
                pass
    """)
    host.start()
    host.wait_state("forever", "running")
    assert host.stop() == 0
    assert not host.host_processes()
    assert host.runs("forever")[-1]["outcome"] == "stopped"
    assert not (host.state / "control.sock").exists()


def test_systemd_notifications_through_a_real_datagram_socket(host: Host) -> None:
    import socket

    path = host.root / "notify.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(10)
    host.write_strategy("every", OK)
    host.write_strategy("broken", "def nope(:\n")
    try:
        process = host.start(env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"}, wait=False)
        messages: list[str] = []

        def received(prefix: str) -> str:
            while True:
                message = receiver.recv(4096).decode()
                messages.append(message)
                if message.startswith(prefix) or f"\n{prefix}" in message:
                    return message

        ready = received("READY=1")
        assert f"MAINPID={process.pid}" in ready and "1 invalid" in ready
        received("WATCHDOG=1")
        received("WATCHDOG=1")
        status = received("STATUS=")
        assert "invalid" in status
        host.stop()
        received("STOPPING=1")
    finally:
        receiver.close()


FLAPPY = """
    SCHEDULE = "@continuous"
    RESTART_DELAY = 30
    RESTART_DELAY_MAX = 60
    MAX_FAILURES = {failures}
    def run(ctx):
        raise RuntimeError("down")
"""


def test_every_verb_in_every_state_is_legal(host: Host) -> None:
    host.write_strategy("idle_cron", 'SCHEDULE = "0 0 1 1 *"\ndef run(ctx):\n    pass\n')
    host.write_strategy("running_loop", 'SCHEDULE = "@continuous"\nGRACE = 0.5\ndef run(ctx):\n    import time\n    while True:\n        time.sleep(0.1)\n')
    host.write_strategy("in_backoff", FLAPPY.format(failures=10))
    host.write_strategy("gave_up", FLAPPY.format(failures=1))
    host.write_strategy("broken", "def run(:\n")
    host.write_strategy("parked", 'def run(ctx):\n    pass\n')
    host.start()
    assert host.cli("stop", "parked").returncode == 0
    host.wait_state("in_backoff", "backoff")
    host.wait_state("gave_up", "fatal")
    host.wait_state("running_loop", "running")
    states = {name: row["state"] for name, row in host.status().items()}
    assert states == {"idle_cron": "idle", "running_loop": "running", "in_backoff": "backoff", "gave_up": "fatal", "broken": "invalid", "parked": "stopped"}
    for verb in ("restart", "stop", "start", "trigger", "stop", "restart", "start"):
        for name in states:
            result = host.cli_here(verb, name)  # 42 commands: in this process, not 42 interpreters
            assert "illegal" not in result.stderr and "INTERNAL" not in result.stderr and "failed:" not in result.stderr, (verb, name, result.stderr)
            if name == "broken" and verb != "stop":  # stopping an invalid strategy keeps it off once fixed
                assert result.returncode == 1 and "invalid" in result.stderr
            if verb == "trigger":
                host.wait_state(name, "idle", "running", "stopped", "fatal", "backoff", "invalid", timeout=10)
    assert "illegal" not in host.stderr().lower()
    assert host.process is not None and host.process.poll() is None


def test_start_while_a_stop_is_in_flight_rearms_the_strategy(host: Host) -> None:
    host.write_strategy("slowstop", """
        SCHEDULE = "* * * * * *"
        GRACE = 2
        def run(ctx):
            import signal, time
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            time.sleep(30)
    """)
    host.start()
    host.wait_state("slowstop", "running")
    import subprocess, sys
    stopping = subprocess.Popen([sys.executable, "-m", "host", "stop", "slowstop", "--config", str(host.config)], cwd=host.root, env=host.env)
    host.wait_state("slowstop", "stopping")
    assert host.cli("start", "slowstop").returncode == 0
    assert stopping.wait(20) == 0
    row = wait_for(lambda: (r := host.status()["slowstop"])["next_run"] and r, 5, message="the schedule to come back")
    assert row["enabled"] is True


def test_continuous_turned_manual_during_backoff_does_not_run(host: Host) -> None:
    host.write_strategy("switcher", FLAPPY.format(failures=10).replace("RESTART_DELAY = 30", "RESTART_DELAY = 3"))
    host.start()
    host.wait_state("switcher", "backoff")
    host.write_strategy("switcher", "def run(ctx):\n    print('manual run')\n")
    host.wait_state("switcher", "idle", timeout=5)
    time.sleep(3.5)  # past the moment the backoff would have restarted it
    assert [run["trigger"] for run in host.runs("switcher")] == ["continuous"]


def test_trigger_of_a_fatal_continuous_strategy_stays_fatal(host: Host) -> None:
    host.write_strategy("dead", FLAPPY.format(failures=1))
    host.start()
    host.wait_state("dead", "fatal")
    assert host.cli("trigger", "dead").returncode == 0
    host.finished_runs("dead", 2)
    time.sleep(1)
    assert host.status()["dead"]["state"] == "fatal"
    assert [run["trigger"] for run in host.runs("dead")] == ["continuous", "manual"]


def test_no_new_work_while_shutting_down(host: Host) -> None:
    host.write_strategy("lingering", """
        SCHEDULE = "@continuous"
        GRACE = 3
        def run(ctx):
            import signal, time
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:
                time.sleep(0.1)
    """)
    host.write_strategy("other", "def run(ctx):\n    pass\n")
    host.start()
    host.wait_state("lingering", "running")
    assert host.process is not None
    host.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    result = host.cli("trigger", "other")
    assert result.returncode == 1 and "shutting down" in result.stderr
    assert host.process.wait(20) == 0
    assert host.runs("other") == []
