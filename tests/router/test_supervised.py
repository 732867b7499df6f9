"""The router as the supervisor runs it: started with the host, restarted when it dies, reached through ctx."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

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
