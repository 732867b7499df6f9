"""``tradehost status``: the router block (pure rendering) and the verb against a real supervisor and router."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import psutil
import pytest
from tests.host.conftest import Host, wait_for

from host.commands.status import ROUTER_TIMEOUT, asks_router, render, render_router, router_view, split_reply

MANAGED = {"managed": True, "endpoint": "ipc:///s/router.sock", "state": "running", "pid": 4242,
           "started_at": "2026-11-21T20:00:00+00:00", "uptime": 3725.4, "restarts": 2}
REMOTE = {"managed": False, "endpoint": "tcp://10.0.0.5:5555", "state": None, "pid": None, "started_at": None, "uptime": None, "restarts": None}
ANSWER = {
    "trading_state": "ACTIVE", "strategy_states": {"zeta": "REDUCING", "alpha": "HALTED"}, "open_orders": 3,
    "requests": 40, "orders": 7, "errors": 1, "batches": 30, "uptime": 3700.0,
    "brokers": [
        {"name": "paper", "type": "paper", "capabilities": {"order_types": ["MARKET"]}, "feed": "random_walk"},
        {"name": "fx", "type": "oanda", "environment": "practice", "connected": False, "account_id": "101-1"},
    ],
}
ROW = {"name": "a", "state": "idle", "schedule": "@manual", "next_run": None, "pid": None, "runs": 0,
       "last_outcome": None, "last_exit_code": None, "last_error": None, "reason": None}


# ---------------------------------------------------------------- pure


def test_split_reply_reads_both_parts_and_the_bare_rows_of_an_older_supervisor() -> None:
    assert split_reply({"router": MANAGED, "strategies": [ROW]}) == (MANAGED, [ROW])
    assert split_reply([ROW]) == (None, [ROW])


@pytest.mark.parametrize(("process", "asked"), [
    (MANAGED, True), (REMOTE, True), (MANAGED | {"state": "restarting"}, False), (MANAGED | {"state": "stopped"}, False),
    (MANAGED | {"state": "starting"}, False),
])
def test_asks_router_only_when_a_managed_router_is_up_or_it_is_remote(process: dict[str, Any], asked: bool) -> None:
    assert asks_router(process) is asked


def test_router_view_keeps_the_process_and_sums_up_the_answer() -> None:
    view = router_view(MANAGED, ANSWER, None)
    assert {k: view[k] for k in MANAGED} == MANAGED  # the supervisor's uptime, not the router's
    assert view["answered"] is True and view["error"] is None
    assert (view["trading_state"], view["open_orders"], view["requests"], view["orders"], view["errors"]) == ("ACTIVE", 3, 40, 7, 1)
    assert view["strategy_states"] == {"zeta": "REDUCING", "alpha": "HALTED"}
    assert view["brokers"] == [  # an adapter that reports no connection is in-process: connected
        {"name": "paper", "type": "paper", "environment": None, "connected": True},
        {"name": "fx", "type": "oanda", "environment": "practice", "connected": False},
    ]
    assert "batches" not in view and json.loads(json.dumps(view)) == view


def test_router_view_of_a_router_that_did_not_answer_has_no_live_part() -> None:
    view = router_view(MANAGED, None, "the router did not answer status within 1 s")
    assert view["answered"] is False and view["error"] == "the router did not answer status within 1 s"
    assert all(view[k] is None for k in ("trading_state", "strategy_states", "brokers", "open_orders", "requests", "orders", "errors", "unhandled", "suppressed"))


def test_router_view_of_a_remote_router_takes_its_uptime_from_the_answer() -> None:
    assert router_view(REMOTE, ANSWER, None)["uptime"] == 3700.0
    assert router_view(REMOTE, None, "no router is listening on /s/router-admin.sock")["uptime"] is None


def test_render_router_answered() -> None:
    assert render_router(router_view(MANAGED, ANSWER, None)).splitlines() == [
        "router: running, pid 4242, up 1h 02m, restarts 2; trading ACTIVE (alpha HALTED, zeta REDUCING), open orders 3",
        "  brokers: paper (connected), fx (NOT CONNECTED)",
    ]
    bare = ANSWER | {"strategy_states": {}, "brokers": [], "open_orders": 0}
    assert render_router(router_view(MANAGED | {"restarts": 0}, bare, None)).splitlines() == [
        "router: running, pid 4242, up 1h 02m, restarts 0; trading ACTIVE, open orders 0",
        "  brokers: none",
    ]


def test_render_router_says_when_a_sender_went_over_its_budget() -> None:
    flooded = router_view(MANAGED, ANSWER | {"unhandled": 1200, "suppressed": 5400}, None)
    assert (flooded["unhandled"], flooded["suppressed"]) == (1200, 5400)
    assert render_router(flooded).splitlines()[-1] == (
        "  since start: 1200 requests answered unhandled (a sender over its budget), 5400 refusals audited only as counts"
        " (audit --kind request.suppressed)"
    )


def test_render_router_without_an_answer() -> None:
    silent = router_view(MANAGED, None, "the router did not answer status within 1 s")
    assert render_router(silent) == "router: running, pid 4242, up 1h 02m, restarts 2; no answer: the router did not answer status within 1 s"
    down = MANAGED | {"state": "restarting", "pid": None, "started_at": None, "uptime": None, "restarts": 3}
    assert render_router(router_view(down, None, None)) == "router: restarting, restarts 3"  # not asked: nothing to say about an answer
    assert render_router(MANAGED | {"state": "stopped", "pid": None, "uptime": None}) == "router: stopped, restarts 2"  # the supervisor's facts alone
    unreachable = router_view(REMOTE, None, "no router is listening on /s/router-admin.sock")
    assert render_router(unreachable) == "router: remote at tcp://10.0.0.5:5555; no answer: no router is listening on /s/router-admin.sock"
    assert render_router(router_view(REMOTE, ANSWER, None)).startswith("router: remote at tcp://10.0.0.5:5555, up 1h 01m; trading ACTIVE")
    assert "restart it" in render_router(None)


@pytest.mark.parametrize(("uptime", "text"), [(0.4, "0s"), (59.9, "59s"), (125, "2m 05s"), (3600, "1h 00m"), (90061, "1d 01h")])
def test_render_router_uptime(uptime: float, text: str) -> None:
    assert render_router(MANAGED | {"uptime": uptime}).startswith(f"router: running, pid 4242, up {text}, ")


def test_render_puts_the_router_block_above_the_strategy_table() -> None:
    lines = render({"router": router_view(MANAGED, ANSWER, None), "strategies": [ROW]}).splitlines()
    assert lines[0].startswith("router: running") and lines[1].startswith("  brokers:") and lines[2] == ""
    assert lines[3].split()[:2] == ["NAME", "STATE"] and lines[4].split()[:2] == ["a", "idle"]
    assert render({"router": None, "strategies": []}).endswith("\n\nno strategies")


# ---------------------------------------------------------------- a real supervisor and router

RESTING = """
    def run(ctx):
        ctx.buy("EUR_USD", 1, "LIMIT", limit_price="0.5")   # far below the market: it rests
"""
IDLE = "def run():\n    pass\n"


def router_json(host: Host) -> dict[str, Any]:
    result = host.cli_here("status", "--router", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def start_with_router(host: Host) -> dict[str, Any]:
    host.write_config("[host]\nwatch_interval = 0.1\ndebounce = 0.2\n")  # [router] enabled, the default
    host.start()
    router = wait_for(lambda: (r := router_json(host))["answered"] and r, 30, 0.1, "the router to answer")
    assert "host.router" in " ".join(psutil.Process(router["pid"]).cmdline())
    return router


@pytest.mark.e2e
def test_status_shows_the_router_the_supervisor_runs(host: Host) -> None:
    host.write_strategy("rest", RESTING)
    router = start_with_router(host)
    assert (router["managed"], router["state"], router["restarts"], router["trading_state"], router["open_orders"]) == (True, "running", 0, "ACTIVE", 0)
    assert router["brokers"] == [{"name": "paper", "type": "paper", "environment": None, "connected": True}]
    assert host.cli("trigger", "rest").returncode == 0
    assert host.finished_runs("rest")[0]["outcome"] == "ok"
    assert host.cli("halt", "rest").returncode == 0

    text = host.cli("status")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"router: running, pid {router['pid']}, up ") and lines[0].endswith(", restarts 0; trading ACTIVE (rest HALTED), open orders 1")
    assert lines[1] == "  brokers: paper (connected)" and lines[2] == ""
    assert lines[3].split()[:2] == ["NAME", "STATE"] and lines[4].split()[:2] == ["rest", "idle"]

    rows = json.loads(host.cli("status", "--json").stdout)
    assert isinstance(rows, list) and [row["name"] for row in rows] == ["rest"]  # unchanged: strategies only
    one = host.cli("status", "rest")
    assert one.returncode == 0 and "router" not in one.stdout and one.stdout.split()[:2] == ["NAME", "STATE"]
    both = host.cli("status", "rest", "--router")
    assert both.returncode == 2 and "not both" in both.stderr

    os.kill(router["pid"], signal.SIGKILL)
    again = wait_for(lambda: (r := router_json(host))["pid"] not in (None, router["pid"]) and r["answered"] and r, 30, 0.1, "the restarted router")
    assert (again["state"], again["restarts"], again["open_orders"], again["strategy_states"]) == ("running", 1, 1, {"rest": "HALTED"})


@pytest.mark.e2e
def test_status_says_the_router_did_not_answer_and_still_lists_strategies(host: Host) -> None:
    host.write_strategy("idle", IDLE)
    router = start_with_router(host)
    os.kill(router["pid"], signal.SIGSTOP)  # alive, holding its lock and sockets, answering nobody
    try:
        began = time.monotonic()
        text = host.cli_here("status")
        took = time.monotonic() - began
        began = time.monotonic()
        rows = host.cli_here("status", "--json")
        json_took = time.monotonic() - began
        silent = router_json(host)
    finally:
        os.kill(router["pid"], signal.SIGCONT)
    assert text.returncode == 0, text.stderr
    assert ROUTER_TIMEOUT <= took < ROUTER_TIMEOUT + 2.0, took
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"router: running, pid {router['pid']}, ")
    assert lines[0].endswith(f"; no answer: the router did not answer status within {ROUTER_TIMEOUT:g} s")
    assert lines[1] == "" and lines[3].split()[:2] == ["idle", "idle"]
    assert rows.returncode == 0 and [r["name"] for r in json.loads(rows.stdout)] == ["idle"]
    assert json_took < ROUTER_TIMEOUT, "status --json does not ask the router"
    assert (silent["state"], silent["answered"], silent["trading_state"], silent["brokers"]) == ("running", False, None, None)
    assert silent["error"] == f"the router did not answer status within {ROUTER_TIMEOUT:g} s"
    wait_for(lambda: router_json(host)["answered"], 10, 0.1, "the router to answer again")


@pytest.mark.e2e
def test_status_with_a_remote_router(host: Host) -> None:
    host.write_strategy("idle", IDLE)
    host.start()  # the harness's config: [router] enabled = false
    router = router_json(host)
    assert (router["managed"], router["state"], router["pid"], router["restarts"], router["answered"]) == (False, None, None, None, False)
    assert router["error"] == f"no router is listening on {host.state / 'router-admin.sock'}"
    lines = host.cli("status").stdout.splitlines()
    assert lines[0] == f"router: remote at ipc://{host.state / 'router.sock'}; no answer: {router['error']}"
    assert lines[1] == "" and lines[3].split()[:2] == ["idle", "idle"]

    # `tradehost router` on this machine, with this state dir: it answers.
    with open(host.root / "router.stderr", "wb") as err:
        process = subprocess.Popen([sys.executable, "-m", "host", "router", "--config", str(host.config)],
                                   cwd=host.root, env=host.env, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    try:
        remote = wait_for(lambda: (r := router_json(host))["answered"] and r, 30, 0.1, "the router started by hand to answer")
        assert (remote["managed"], remote["pid"], remote["trading_state"]) == (False, None, "ACTIVE") and remote["uptime"] >= 0
        first = host.cli("status").stdout.splitlines()[0]
        assert first.startswith(f"router: remote at ipc://{host.state / 'router.sock'}, up ") and first.endswith("; trading ACTIVE, open orders 0")
    finally:
        process.terminate()
        process.wait(30)
