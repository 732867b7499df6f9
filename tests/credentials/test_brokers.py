"""``tradehost brokers``: one row per configured broker, from the router's answer or the configuration alone."""

from __future__ import annotations

from typing import Any

from host.config import Config
from host.router.admin import broker_row, render_brokers

DESCRIBED: dict[str, Any] = {
    "name": "fx", "type": "vault", "environment": "practice", "connected": False, "last_call_ms": 12.5, "last_call_at": 1.0,
    "capabilities": {"order_types": ["LIMIT", "MARKET"], "time_in_force": ["GTC"], "fractional_units": False, "hedging": True,
                     "brackets": False, "modify": True, "instruments": 42},
}


def test_a_broker_the_router_runs_shows_its_description(config: Config) -> None:
    row = broker_row("fx", config.brokers["fx"], DESCRIBED, router_running=True)
    assert {k: row[k] for k in ("environment", "started", "connected", "last_call_ms", "last_call_at", "instruments")} == {
        "environment": "practice", "started": True, "connected": False, "last_call_ms": 12.5, "last_call_at": "1970-01-01T00:00:01+00:00",
        "instruments": 42,
    }
    assert "instruments" not in row["capabilities"] and row["adapter"] is DESCRIBED


def test_an_adapter_that_reports_no_connection_counts_as_connected(config: Config) -> None:
    described = {"name": "paper", "type": "paper", "capabilities": {"instruments": 9}}
    row = broker_row("paper", config.brokers["paper"], described, router_running=True)
    assert (row["connected"], row["instruments"], row["environment"], row["last_call_ms"]) == (True, 9, None, None)


def test_without_a_router_only_the_configuration_is_shown(config: Config) -> None:
    rows = [broker_row(name, entry, None, router_running=False) for name, entry in config.brokers.items()]
    assert [(r["name"], r["type"], r["started"], r["connected"], r["capabilities"]) for r in rows] == [
        ("paper", "paper", False, False, None), ("fx", "vault", False, False, None),
    ]
    lines = render_brokers(rows).splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "ENVIRONMENT", "CONNECTED", "LAST", "CALL", "INSTRUMENTS", "CAPABILITIES"]
    assert lines[2].split() == ["fx", "vault", "-", "not", "started", "-", "-", "-"]
    assert lines[-1] == "the router is not running: the configuration only"


def test_the_table_shows_latency_and_capabilities(config: Config) -> None:
    lines = render_brokers([broker_row("fx", config.brokers["fx"], DESCRIBED, router_running=True)]).splitlines()
    assert lines[1].split() == ["fx", "vault", "practice", "no", "12.5", "ms", "42", "LIMIT,MARKET;", "GTC;", "modify,hedging"]
    assert len(lines) == 2
