from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine

from brokers.base import ExecutionReport
from host.config import load_config
from host.router.app import Router
from host.router.journal import Journal
from host.router.reconcile import EXTERNAL, describe_error, external_client_order_id, position_gaps, reconcile
from host.router.tables import metadata
from host.router.records import day_of
from host.statedir import prepare_state_dir
from host.strategy_file import EXTERNAL_OWNER
from host.trading.errors import InvalidInstrument
from host.trading.model import Order, OrderType, Position, Side, TimeInForce
from host.trading.states import OrderStatus

D = Decimal


def held(instrument: str, quantity: str) -> Position:
    return Position(broker="b", instrument=instrument, quantity=D(quantity), average_price=D(1), realised_pnl=D(0), unrealised_pnl=D(0), market_price=None)


def test_position_gaps_book_only_what_the_strategies_do_not_explain() -> None:
    gaps = position_gaps([held("EUR_USD", "10"), held("GBP_USD", "-3")], {"EUR_USD": D(4), "USD_JPY": D(2)}, {"GBP_USD": D(-3)})
    # EUR_USD: 10 held, 4 booked → EXTERNAL 6; GBP_USD already right; USD_JPY booked but not held → EXTERNAL -2.
    assert gaps == {"EUR_USD": D(6), "USD_JPY": D(-2)}


def test_a_stale_external_position_is_closed() -> None:
    assert position_gaps([], {}, {"EUR_USD": D(5)}) == {"EUR_USD": D(0)}


@given(
    st.dictionaries(st.sampled_from(["A", "B", "C"]), st.integers(-50, 50)),
    st.dictionaries(st.sampled_from(["A", "B", "C"]), st.integers(-50, 50)),
    st.dictionaries(st.sampled_from(["A", "B", "C"]), st.integers(-50, 50)),
)
def test_after_booking_the_gaps_the_books_add_up(broker: dict[str, int], booked: dict[str, int], external: dict[str, int]) -> None:
    positions = [held(i, str(q)) for i, q in broker.items()]
    ours = {i: D(q) for i, q in booked.items()}
    theirs = {i: D(q) for i, q in external.items()}
    theirs.update(position_gaps(positions, ours, theirs))
    for instrument in set(broker) | set(booked) | set(external):
        assert ours.get(instrument, D(0)) + theirs.get(instrument, D(0)) == D(broker.get(instrument, 0))
    assert position_gaps(positions, ours, theirs) == {}


def test_external_ids_keep_the_brokers_own_client_id() -> None:
    report = ExecutionReport(client_order_id="", status=OrderStatus.ACCEPTED, raw_status="NEW", broker_order_id="991")
    assert external_client_order_id("fx", report) == "EXTERNAL-fx-991"
    assert external_client_order_id("fx", ExecutionReport(client_order_id="web-1", status=OrderStatus.ACCEPTED, raw_status="NEW")) == "web-1"


def test_external_is_not_a_strategy_name() -> None:
    assert EXTERNAL == EXTERNAL_OWNER


# -- through the router -------------------------------------------------------------------


def _order(cid: str, side: str, quantity: str, type: str = "MARKET", limit: str | None = None) -> Order:
    now = datetime.now(UTC)
    return Order(
        client_order_id=cid, request_id=cid, strategy="by-hand", run_id=None, broker="paper", broker_order_id=None,
        instrument="EUR_USD", side=Side(side), type=OrderType(type), quantity=D(quantity), limit_price=None if limit is None else D(limit),
        stop_price=None, time_in_force=TimeInForce.GTC, stop_loss=None, take_profit=None, tag=None, status=OrderStatus.INITIALIZED,
        raw_status=None, filled_quantity=D(0), average_price=None, commission=D(0), error=None, created_at=now, updated_at=now,
    )


async def _started(config_path: Path) -> Router:
    config = load_config(config_path)
    prepare_state_dir(config.host.state_dir)
    router = Router(config, os.urandom(32))
    await router.start()
    return router


async def _close(router: Router) -> None:
    for adapter in router.adapters.values():
        await adapter.stop()
    router.engine.close()
    router.server.close()
    router.database.dispose()


def test_orders_and_positions_nobody_here_placed_are_booked_to_external_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "supervisor.toml").write_text('[router]\nenabled = false\n[brokers.paper]\ntype = "paper"\n')
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "supervisor.toml"

    async def scenario() -> None:
        # Orders reach the paper account without the router: a fill and a resting limit far from the market.
        router = await _started(config)
        paper = router.adapters["paper"]
        await paper.submit(_order("by-hand-1", "BUY", "7"))
        await paper.submit(_order("by-hand-2", "BUY", "3", "LIMIT", "0.50000"))
        router.audit.record("test.setup", {})
        router.engine.commit()  # the paper book is persisted with the router's next commit
        await _close(router)

        router = await _started(config)
        journal = router.journal
        external = journal.get("by-hand-2")
        assert external is not None and external.strategy == EXTERNAL and external.status == OrderStatus.ACCEPTED
        assert external.limit_price == D("0.50000") and external.quantity == D(3)
        assert journal.position(EXTERNAL, "paper", "EUR_USD") == D(7)
        assert journal.global_position("paper", "EUR_USD") == D(7)
        await _close(router)

        # Nothing changed at the broker: a second start books nothing new.
        router = await _started(config)
        assert router.journal.position(EXTERNAL, "paper", "EUR_USD") == D(7)
        await _close(router)

    asyncio.run(scenario())
    with sqlite3.connect(tmp_path / "state" / "tradehost.db") as db:
        rows = [r[0] for r in db.execute("SELECT detail FROM audit WHERE kind = 'reconcile' ORDER BY seq")]
        kinds = [r[0] for r in db.execute("SELECT kind FROM audit WHERE strategy = 'EXTERNAL'")]
    assert len(rows) == 3
    assert '"external_orders":["by-hand-2"]' in rows[1] and '"external_positions":{"EUR_USD":"7"}' in rows[1]
    assert '"external_orders":[]' in rows[2] and '"updated":["by-hand-2"]' in rows[2] and '"external_positions":{}' in rows[2]
    assert kinds.count("order.external") == 1


def test_an_external_order_is_filed_under_the_calendar_day_like_every_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # orders.day is String(8) YYYYMMDD: the risk trading-day label (epoch seconds, ten digits) would overflow
    # it on a database that enforces lengths, and the commit after reconciliation would stop the router.
    (tmp_path / "supervisor.toml").write_text('[router]\nenabled = false\n[risk]\nday_start = "17:00 America/New_York"\n[brokers.paper]\ntype = "paper"\n')
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "supervisor.toml"

    async def scenario() -> None:
        router = await _started(config)
        await router.adapters["paper"].submit(_order("by-hand-9", "BUY", "3", "LIMIT", "0.50000"))
        router.audit.record("test.setup", {})
        router.engine.commit()
        await _close(router)

        router = await _started(config)
        external = router.journal.get("by-hand-9")
        assert external is not None and external.strategy == EXTERNAL
        assert external.day == day_of(external.created_at)
        await _close(router)

    asyncio.run(scenario())


class _Broker:
    """The two reads reconciliation makes, answered from lists."""

    name = "b"

    def __init__(self, held: list[Position]) -> None:
        self.held = held

    async def open_orders(self) -> list[ExecutionReport]:
        return []

    async def positions(self) -> list[Position]:
        return self.held


def test_what_the_broker_pushed_meanwhile_is_applied_before_positions_are_compared(tmp_path: Path) -> None:
    database = create_engine(f"sqlite:///{tmp_path / 't.db'}")
    metadata.create_all(database)
    journal = Journal(database)
    journal.load(0.0)
    engine = cast(Any, SimpleNamespace(journal=journal))

    def settle() -> None:  # the fill of a strategy's order, queued while its lookup ran
        journal.set_position("trend", "b", "EUR_USD", D(4), D(1))

    result = asyncio.run(reconcile(cast(Any, _Broker([held("EUR_USD", "4")])), engine, settle=settle))
    assert result.positions == {}  # all 4 are the strategy's: nothing booked to EXTERNAL
    assert journal.position(EXTERNAL, "b", "EUR_USD") == D(0)


# -- errors, and pricing at a restart -------------------------------------------------------------


def test_describe_error_is_one_bounded_line() -> None:
    assert describe_error(InvalidInstrument("no XAU_USD")) == "InvalidInstrument: INVALID_INSTRUMENT: no XAU_USD"
    assert len(describe_error(RuntimeError("x" * 2000))) == 500


def test_a_restarted_router_prices_external_positions_and_ignores_a_broker_it_no_longer_has(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "supervisor.toml").write_text(
        '[router]\nenabled = false\n[risk]\nmax_daily_loss = 1000\n[brokers.paper]\ntype = "paper"\n'
    )
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "supervisor.toml"

    async def scenario() -> None:
        router = await _started(config)
        await router.adapters["paper"].submit(_order("by-hand-1", "BUY", "7"))  # becomes EXTERNAL's at the next start
        router.journal.set_position("old", "gone", "AAPL", D(3), D(150))  # held at a broker since removed
        router.audit.record("test.setup", {})
        router.engine.commit()
        await _close(router)

        router = await _started(config)
        assert router.journal.position(EXTERNAL, "paper", "EUR_USD") == D(7)
        assert ("paper", "EUR_USD") in router.journal.last_price
        assert ("gone", "AAPL") not in router.journal.last_price
        # The unreachable AAPL position is recorded, but does not stop the router's strategies from trading.
        exposure = router.engine._exposure("sma", "paper", "EUR_USD", time.time())
        assert exposure.global_unpriced == ()
        await _close(router)

    asyncio.run(scenario())
    with sqlite3.connect(tmp_path / "state" / "tradehost.db") as db:
        rows = {kind: json.loads(detail) for kind, detail in db.execute("SELECT kind, detail FROM audit WHERE kind LIKE 'reconcile.%' ORDER BY seq")}
    assert set(rows["reconcile.prices"]["prices"]) == {"EUR_USD"} and rows["reconcile.prices"]["broker"] == "paper"
    assert rows["reconcile.unpriced"] == {"broker": "gone", "errors": {"AAPL": "broker is no longer configured"}}
