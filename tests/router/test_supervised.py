"""The router as the supervisor runs it: started with the host, restarted when it dies, reached through ctx."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from host import sandbox
from tests.host.conftest import Host, wait_for

pytestmark = pytest.mark.e2e

TRADER = """
    import time
    from host.trading.errors import TradingError

    SCHEDULE = "@continuous"
    GRACE = 2

    def run(ctx):
        n = 0
        while not ctx.stopping.is_set():
            n += 1
            try:
                order = ctx.buy("EUR_USD", 1, request_id=f"{ctx.run_id}-{n}")
                ctx.logger.info("order %s %s", order.client_order_id, order.status)
            except TradingError as exc:
                ctx.logger.info("refused %s", exc.code)
            ctx.sleep(0.05)
"""


def router_pid(host: Host) -> int | None:
    for process in host.host_processes():
        try:
            if "host.router" in " ".join(process.cmdline()):
                return process.pid
        except psutil.Error:
            continue
    return None


def fills(host: Host) -> int:
    try:
        return host.query("SELECT count(*) FROM fills WHERE strategy = 'trader'")[0][0]
    except Exception:
        return 0


def test_strategies_trade_through_the_router_the_supervisor_runs_and_restarts(host: Host) -> None:
    host.write_config("[host]\nwatch_interval = 0.1\n[router]\nrequest_timeout = 15\n")
    host.write_strategy("trader", TRADER)
    host.start()
    wait_for(lambda: fills(host) >= 5, 20, message="the strategy's orders to fill")
    pid = wait_for(lambda: router_pid(host), 10, message="the router process")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: (router_pid(host) or pid) != pid, 20, message="the supervisor to restart the router")
    before = fills(host)
    wait_for(lambda: fills(host) >= before + 5, 30, message="orders to flow again through the new router")
    assert host.status()["trader"]["state"] == "running"  # the run reconnected by itself
    assert len(host.runs("trader")) == 1  # and was never restarted
    assert "refused CONNECTION_ERROR" not in host.log("trader")
    orders = host.query("SELECT count(*), count(DISTINCT request_id) FROM orders WHERE strategy = 'trader'")[0]
    assert orders[0] == orders[1]  # no request became two orders across the restart
    assert orders[0] == fills(host)
    assert host.cli("audit", "verify").returncode == 0
    assert host.stop() == 0
    assert router_pid(host) is None


HALTER = """
    import json, os
    import zmq

    SCHEDULE = "@continuous"

    def run(ctx):
        state = os.path.join(os.getcwd(), "state")
        found = {}
        admin = zmq.Context.instance().socket(zmq.DEALER)
        admin.setsockopt(zmq.LINGER, 0)
        admin.connect("ipc://" + os.path.join(state, "router-admin.sock"))
        admin.send(json.dumps({"v": 1, "id": "h1", "op": "halt", "body": {}}).encode())
        found["halt"] = json.loads(admin.recv())["error"]["code"] if admin.poll(5000) else "no answer"
        try:  # the router is up by now, its token written
            open(os.path.join(state, "router-admin.token")).read()
            found["read_token"] = "ok"
        except OSError as exc:
            found["read_token"] = type(exc).__name__
        found["order"] = str(ctx.buy("EUR_USD", 1).status)
        print("FOUND " + json.dumps(found, sort_keys=True), flush=True)
        while not ctx.sleep(1):
            pass
"""


def test_a_strategy_cannot_halt_trading_through_the_routers_admin_socket(host: Host) -> None:
    host.write_config("[host]\nwatch_interval = 0.1\n")
    host.write_strategy("halter", HALTER)
    host.start()
    line = wait_for(lambda: next((l for l in host.log("halter").splitlines() if "FOUND " in l), None), 30, message="the strategy to report")
    found = line.split("FOUND ", 1)[1]
    assert '"halt": "UNAUTHORIZED"' in found and '"order": "FILLED"' in found, found
    assert f'"read_token": "{"PermissionError" if sandbox.abi() else "ok"}"' in found, found
    assert host.cli("resume").returncode == 0, "the operator's CLI still reaches the admin socket"
    assert host.stop() == 0
