"""Tests for host.router.journal: the order journal written to a real SQLite file and read back by a new Journal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, select

from host.router.journal import Journal, Marks, StrategyPosition, TradingDays, mark_positions
from host.router.records import OrderRecord, client_order_id, day_of
from host.router.tables import fills_table, metadata, orders_table, router_state_table, strategy_positions_table
from host.trading.model import Fill, OrderType, Quote, Side, TimeInForce
from host.trading.states import OrderStatus

S = OrderStatus
D = Decimal
DAY = 86_400.0
T0 = 1_714_521_600.0  # 2024-05-01 00:00:00 UTC
NOW = T0 + 12 * 3600  # noon


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = create_engine(f"sqlite:///{tmp_path}/t.db")
    metadata.create_all(made)
    yield made
    made.dispose()


def new_order(journal: Journal, strategy: str, request_id: str, side: Side, quantity: str, now: float, *,
              status: OrderStatus = S.ACCEPTED, broker: str = "paper", instrument: str = "EUR_USD") -> OrderRecord:
    day, seq = journal.next_seq(strategy, now)
    record = OrderRecord(
        client_order_id=client_order_id(strategy, day, seq), strategy=strategy, request_id=request_id, day=day, seq=seq,
        run_id=1, broker=broker, instrument=instrument, side=side, type=OrderType.MARKET, quantity=D(quantity),
        limit_price=None, stop_price=None, time_in_force=TimeInForce.GTC, stop_loss=None, take_profit=None, tag=None,
        status=status, created_at=now, updated_at=now,
    )
    journal.add(record)
    return record


def execute(journal: Journal, record: OrderRecord, trade_id: str, quantity: str, price: str, commission: str = "0", *, at: float) -> Decimal:
    """What the engine does with a new fill: fold it into the record, book it, and mark the record changed."""
    f = Fill(trade_id=trade_id, quantity=D(quantity), price=D(price), commission=D(commission), at=datetime.fromtimestamp(at, UTC))
    record.add_fill(f)
    if record.filled_quantity >= record.quantity:
        record.status = S.FILLED
    else:
        record.status = S.PARTIALLY_FILLED
    realised = journal.record_fill(record, f)
    journal.touch(record)
    return realised


def flush(engine: Engine, journal: Journal, now: float) -> None:
    with engine.begin() as conn:
        journal.flush(conn, now)


def rows(engine: Engine, table: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(table)))


def reopen(engine: Engine, now: float, **kwargs: Any) -> Journal:
    journal = Journal(engine, **kwargs)
    journal.load(now)
    return journal


@pytest.fixture
def journal(engine: Engine) -> Journal:
    return reopen(engine, NOW)


# -- in memory ----------------------------------------------------------------------------------


def test_next_seq_counts_per_strategy_and_utc_day(journal: Journal) -> None:
    assert journal.next_seq("a", NOW) == ("20240501", 1)
    assert journal.next_seq("a", NOW) == ("20240501", 2)
    assert journal.next_seq("b", NOW) == ("20240501", 1)
    assert journal.next_seq("a", T0 + DAY) == ("20240502", 1)
    assert journal.next_seq("a", T0 + DAY - 0.5) == ("20240501", 3)


def test_add_indexes_by_id_and_request(journal: Journal) -> None:
    record = new_order(journal, "sma", "r1.1", Side.BUY, "10", NOW)
    assert journal.orders[record.client_order_id] is record
    assert journal.by_request[("sma", "r1.1")] is record
    assert journal.get(record.client_order_id) is record
    assert journal.pending


def test_positions_follow_average_cost(journal: Journal) -> None:
    buy = new_order(journal, "sma", "r1", Side.BUY, "10", NOW)
    assert execute(journal, buy, "t1", "4", "1.10", at=NOW) == 0
    assert execute(journal, buy, "t2", "6", "1.20", at=NOW) == 0
    assert journal.positions[("sma", "paper", "EUR_USD")] == StrategyPosition(D("10"), D("11.60"), D("0"))
    assert journal.positions[("sma", "paper", "EUR_USD")].average_price == D("1.16")
    sell = new_order(journal, "sma", "r2", Side.SELL, "15", NOW)
    # reduce: 4 closed at 1.21 against 1.16
    assert execute(journal, sell, "t3", "4", "1.21", "0.02", at=NOW) == D("0.20")
    assert journal.position("sma", "paper", "EUR_USD") == D("6")
    # flip: 6 closed at 1.26 (realises 0.60), 5 opened short at 1.26
    assert execute(journal, sell, "t4", "11", "1.26", "0.03", at=NOW) == D("0.60")
    position = journal.positions[("sma", "paper", "EUR_USD")]
    assert (position.quantity, position.average_price) == (D("-5"), D("1.26"))
    assert position.realised_pnl == D("0.20") + D("0.60") - D("0.05")
    assert sell.status == S.FILLED and sell.filled_quantity == D("15")


def test_positions_are_per_strategy_broker_and_instrument(journal: Journal) -> None:
    a = new_order(journal, "a", "r1", Side.BUY, "5", NOW)
    b = new_order(journal, "b", "r1", Side.SELL, "2", NOW)
    c = new_order(journal, "a", "r2", Side.BUY, "1", NOW, broker="other")
    d = new_order(journal, "a", "r3", Side.BUY, "7", NOW, instrument="USD_JPY")
    for i, record in enumerate((a, b, c, d)):
        execute(journal, record, f"t{i}", str(record.quantity), "1.5", at=NOW)
    assert journal.position("a", "paper", "EUR_USD") == D("5")
    assert journal.position("b", "paper", "EUR_USD") == D("-2")
    assert journal.position("a", "other", "EUR_USD") == D("1")
    assert journal.position("a", "paper", "USD_JPY") == D("7")
    assert journal.position("zzz", "paper", "EUR_USD") == D("0")
    assert journal.global_position("paper", "EUR_USD") == D("3")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from("ab"), st.sampled_from(["EUR_USD", "USD_JPY"]), st.sampled_from(list(Side)), st.integers(1, 9)), max_size=25),
       st.integers(-5, 5))
def test_net_positions_and_unrealised_match_a_recount(engine: Engine, trades: list[tuple[str, str, Side, int]], external: int) -> None:
    journal = Journal(engine)
    journal.load(NOW)
    for n, (strategy, instrument, side, quantity) in enumerate(trades):
        record = new_order(journal, strategy, f"h{n}", side, str(quantity), NOW, instrument=instrument)
        execute(journal, record, f"h{n}", str(quantity), str(100 + n), at=NOW)
    journal.set_position("EXTERNAL", "paper", "EUR_USD", D(external), D(1))
    journal.set_position("EXTERNAL", "paper", "EUR_USD", D(external * 2), D(1))  # replaced, not added
    journal.last_price.update({("paper", "EUR_USD"): D("101.5"), ("paper", "USD_JPY"): D("99")})
    for instrument in ("EUR_USD", "USD_JPY", "GBP_USD"):
        recount = sum((p.quantity for (s, b, i), p in journal.positions.items() if i == instrument), D(0))
        assert journal.global_position("paper", instrument) == recount
    for strategy in ("a", "b", "EXTERNAL", None):
        expected = sum((p.quantity * journal.last_price[(b, i)] - p.cost for (s, b, i), p in journal.positions.items() if strategy in (None, s)), D(0))
        assert journal.unrealised(strategy) == expected


def test_realised_pnl_is_exactly_the_cash_pnl_after_adding_at_several_prices(journal: Journal) -> None:
    """An average price would be 20/13 after 6 @ 1 and 7 @ 2, rounded to 28 digits; the cost keeps it exact."""
    buy = new_order(journal, "sma", "r1", Side.BUY, "14", NOW)
    for trade_id, quantity, price in (("t1", "6", "1"), ("t2", "7", "2"), ("t3", "1", "1")):
        execute(journal, buy, trade_id, quantity, price, at=NOW)
    position = journal.positions[("sma", "paper", "EUR_USD")]
    assert (position.quantity, position.cost, position.average_price) == (D(14), D(21), D("1.5"))
    journal.last_price[("paper", "EUR_USD")] = D(2)
    assert journal.unrealised("sma") == D(7)
    sell = new_order(journal, "sma", "r2", Side.SELL, "14", NOW)
    assert execute(journal, sell, "t4", "14", "2", at=NOW) == D(7)
    assert position == StrategyPosition(D(0), D(0), D(7))


def test_day_pnl_is_realised_after_commission_plus_unrealised(journal: Journal) -> None:
    buy = new_order(journal, "sma", "r1", Side.BUY, "10", NOW)
    execute(journal, buy, "t1", "10", "2", "0.5", at=NOW)
    sell = new_order(journal, "sma", "r2", Side.SELL, "4", NOW)
    execute(journal, sell, "t2", "4", "2.5", "0.25", at=NOW + 1)
    # realised 4 * 0.5 = 2, commissions 0.75; 6 left at 2, marked at 2.5 → 3
    assert journal.day_pnl("sma", NOW + 2) == D("2") - D("0.75") + D("3")
    assert journal.unrealised("sma") == D("3")
    assert journal.day_pnl(None, NOW + 2) == D("4.25")
    assert journal.day_pnl("other", NOW + 2) == 0


def test_mark_positions_values_the_priced_and_names_the_unpriced() -> None:
    positions = [
        (("a", "paper", "EUR_USD"), StrategyPosition.at_average(D(10), D("1.1"))),
        (("b", "fx", "EUR_USD"), StrategyPosition.at_average(D(-5), D("1.2"))),
        (("b", "fx", "DE30_EUR"), StrategyPosition.at_average(D(2), D(100))),
        (("EXTERNAL", "fx", "DE30_EUR"), StrategyPosition.at_average(D(-1), D(90))),  # the same instrument is named once
        (("a", "paper", "USD_JPY"), StrategyPosition()),  # flat: nothing to price
    ]
    prices = {("paper", "EUR_USD"): D("1.2"), ("fx", "EUR_USD"): D("1.3")}
    # 10 × (1.2 − 1.1) + (−5) × (1.3 − 1.2); DE30_EUR at fx has no price: unknown, not zero.
    assert mark_positions(positions, prices) == Marks(D("0.5"), (("fx", "DE30_EUR"),))
    assert mark_positions([], prices) == Marks(D(0), ())


def test_mark_positions_leaves_out_brokers_no_longer_configured() -> None:
    positions = [(("a", "gone", "EUR_USD"), StrategyPosition(D(1), D(1))), (("a", "fx", "EUR_USD"), StrategyPosition(D(1), D(1)))]
    assert mark_positions(positions, {}, brokers={"fx"}).unpriced == (("fx", "EUR_USD"),)
    assert mark_positions(positions, {}).unpriced == (("fx", "EUR_USD"), ("gone", "EUR_USD"))


def test_a_quote_marks_its_instrument_at_the_mid(journal: Journal) -> None:
    buy = new_order(journal, "sma", "r1", Side.BUY, "10", NOW, broker="fx")
    execute(journal, buy, "t1", "10", "2", at=NOW)
    journal.last_price.clear()  # as after a restart: the position is there, its price is not
    assert journal.marks("sma") == Marks(D(0), (("fx", "EUR_USD"),))
    quote = Quote(broker="fx", instrument="EUR_USD", bid=D("1.5"), ask=D("1.6"), at=datetime.fromtimestamp(NOW, UTC))
    assert journal.record_quote("fx", quote) == D("1.55")
    assert journal.marks("sma") == Marks(D("-4.5"), ())
    assert journal.day_pnl("sma", NOW) == journal.realised_today("sma", NOW) + D("-4.5")


def test_day_pnl_starts_again_on_a_new_day(journal: Journal) -> None:
    buy = new_order(journal, "sma", "r1", Side.BUY, "1", NOW)
    execute(journal, buy, "t1", "1", "2", at=NOW)
    sell = new_order(journal, "sma", "r2", Side.SELL, "1", NOW)
    execute(journal, sell, "t2", "1", "3", at=NOW)
    assert journal.day_pnl("sma", NOW) == D("1")
    assert journal.day_pnl("sma", T0 + DAY + 1) == 0


def test_a_fill_of_a_new_day_resets_the_day_and_a_late_one_of_yesterday_is_not_today(journal: Journal) -> None:
    buy = new_order(journal, "sma", "r1", Side.BUY, "3", NOW)
    execute(journal, buy, "t1", "3", "2", at=NOW)
    sell = new_order(journal, "sma", "r2", Side.SELL, "3", NOW)
    execute(journal, sell, "t2", "1", "3", at=NOW)
    execute(journal, sell, "t3", "1", "4", at=T0 + DAY + 10)  # tomorrow: yesterday's profit no longer counts
    assert journal.day == "20240502"
    assert journal.day_realised["sma"] == D("2")
    execute(journal, sell, "t4", "1", "5", at=NOW + 5)  # reported late, executed yesterday
    assert journal.day_realised["sma"] == D("2")
    assert journal.positions[("sma", "paper", "EUR_USD")].realised_pnl == D("1") + D("2") + D("3")


def test_open_orders_drops_finished_ones(journal: Journal) -> None:
    a = new_order(journal, "a", "r1", Side.BUY, "2", NOW)
    b = new_order(journal, "a", "r2", Side.BUY, "2", NOW)
    c = new_order(journal, "b", "r1", Side.BUY, "2", NOW, status=S.PENDING_CANCEL)
    d = new_order(journal, "b", "r2", Side.BUY, "2", NOW, status=S.DENIED)
    assert {r.client_order_id for r in journal.open_orders()} == {a.client_order_id, b.client_order_id, c.client_order_id}
    assert journal.open_orders("b") == [c]
    execute(journal, a, "t1", "2", "1", at=NOW)
    c.status = S.CANCELED
    journal.touch(c)
    assert journal.open_orders() == [b]
    assert d.client_order_id not in {r.client_order_id for r in journal.open_orders()}
    assert journal.get(a.client_order_id) is a  # still known, just not open


def test_recent_keeps_open_orders_and_recent_finished_ones(journal: Journal) -> None:
    old_open = new_order(journal, "a", "r1", Side.BUY, "1", NOW - 3600)
    old_done = new_order(journal, "a", "r2", Side.BUY, "1", NOW - 3600, status=S.CANCELED)
    fresh = new_order(journal, "a", "r3", Side.BUY, "1", NOW, status=S.REJECTED)
    new_order(journal, "b", "r1", Side.BUY, "1", NOW)
    recent = journal.recent("a", NOW - 60)
    assert old_open in recent and fresh in recent and old_done not in recent and len(recent) == 2


# -- persistence -------------------------------------------------------------------------------------


def build_day(journal: Journal) -> dict[str, OrderRecord]:
    """sma: buys 10, 6 filled (open); sells 4 (filled, realises 0.20 - 0.01). rev: sells 5 (filled)."""
    r1 = new_order(journal, "sma", "req-1", Side.BUY, "10", NOW)
    execute(journal, r1, "t1", "6", "1.10", "0.03", at=NOW + 1)
    r2 = new_order(journal, "sma", "req-2", Side.SELL, "4", NOW + 2)
    execute(journal, r2, "t2", "4", "1.15", "0.01", at=NOW + 3)
    r3 = new_order(journal, "rev", "req-1", Side.SELL, "5", NOW + 4)
    execute(journal, r3, "t3", "5", "1.2", at=NOW + 5)
    r4 = new_order(journal, "sma", "req-3", Side.BUY, "1", NOW + 6, status=S.DENIED)
    journal.put_state("halted", '{"halted": false}')
    return {"r1": r1, "r2": r2, "r3": r3, "r4": r4}


def test_flush_writes_orders_fills_positions_and_state(engine: Engine, journal: Journal) -> None:
    records = build_day(journal)
    flush(engine, journal, NOW + 10)
    assert not journal.pending
    orders = {r.client_order_id: r for r in rows(engine, orders_table)}
    assert set(orders) == {r.client_order_id for r in records.values()}
    r1 = orders[records["r1"].client_order_id]
    assert (r1.status, r1.filled_quantity, r1.average_price, r1.commission) == ("PARTIALLY_FILLED", "6", "1.10", "0.03")
    fills = {f.trade_id: f for f in rows(engine, fills_table)}
    assert set(fills) == {"t1", "t2", "t3"}
    assert (fills["t2"].client_order_id, fills["t2"].side, fills["t2"].realised_pnl, fills["t2"].at) == (records["r2"].client_order_id, "SELL", "0.20", NOW + 3)
    assert fills["t1"].realised_pnl == "0"
    positions = {(p.strategy, p.instrument): (p.quantity, p.average_price, p.realised_pnl, p.updated_at, p.cost) for p in rows(engine, strategy_positions_table)}
    assert positions == {("sma", "EUR_USD"): ("2", "1.10", "0.16", NOW + 10, "2.20"), ("rev", "EUR_USD"): ("-5", "1.2", "0", NOW + 10, "-6.0")}
    assert [(s.key, s.value) for s in rows(engine, router_state_table)] == [("halted", '{"halted": false}')]


def test_flush_of_nothing_writes_nothing(engine: Engine, journal: Journal) -> None:
    assert not journal.pending
    flush(engine, journal, NOW)
    assert rows(engine, orders_table) == [] and rows(engine, strategy_positions_table) == []


def test_changes_after_a_flush_are_updates(engine: Engine, journal: Journal) -> None:
    records = build_day(journal)
    flush(engine, journal, NOW + 10)
    r1 = records["r1"]
    execute(journal, r1, "t4", "4", "1.12", at=NOW + 20)
    journal.put_state("halted", '{"halted": true}')
    assert journal.pending
    flush(engine, journal, NOW + 30)
    row = next(r for r in rows(engine, orders_table) if r.client_order_id == r1.client_order_id)
    assert (row.status, row.filled_quantity, row.average_price, row.updated_at) == ("FILLED", "10", str(r1.average_price), r1.updated_at)
    assert len(rows(engine, orders_table)) == 4 and len(rows(engine, fills_table)) == 4
    assert [(s.key, s.value, s.updated_at) for s in rows(engine, router_state_table)] == [("halted", '{"halted": true}', NOW + 30)]
    sma = next(p for p in rows(engine, strategy_positions_table) if p.strategy == "sma")
    assert (sma.quantity, D(sma.average_price)) == ("6", (D("2") * D("1.10") + D("4") * D("1.12")) / 6)


def test_a_new_journal_restores_everything(engine: Engine, journal: Journal) -> None:
    records = build_day(journal)
    flush(engine, journal, NOW + 10)
    later = NOW + 60
    loaded = reopen(engine, later)
    assert set(loaded.orders) == set(journal.orders)
    for cid, record in journal.orders.items():
        assert loaded.orders[cid].to_wire() == record.to_wire()
        assert loaded.orders[cid] is not record
    assert [r.client_order_id for r in loaded.open_orders()] == [records["r1"].client_order_id]
    assert loaded.by_request[("sma", "req-2")].client_order_id == records["r2"].client_order_id
    assert loaded.by_request[("rev", "req-1")].client_order_id == records["r3"].client_order_id
    assert loaded.positions == journal.positions
    assert dict(loaded.day_realised) == dict(journal.day_realised) == {"sma": D("0.20") - D("0.04"), "rev": D("0")}
    assert loaded.seen("paper", "t1") and loaded.seen("paper", "t3")
    assert not loaded.seen("paper", "t9") and not loaded.seen("other", "t1")
    assert loaded.day == "20240501"


def test_restored_day_pnl_is_todays_realised(engine: Engine, journal: Journal) -> None:
    """Positions closed: nothing unrealised, so the day's P&L is the same before and after a restart."""
    buy = new_order(journal, "sma", "r1", Side.BUY, "3", NOW)
    execute(journal, buy, "t1", "3", "10", "0.1", at=NOW)
    sell = new_order(journal, "sma", "r2", Side.SELL, "3", NOW)
    execute(journal, sell, "t2", "3", "9.5", "0.1", at=NOW + 1)
    flush(engine, journal, NOW + 2)
    before = journal.day_pnl("sma", NOW + 5)
    assert before == D("-1.5") - D("0.2")
    assert reopen(engine, NOW + 5).day_pnl("sma", NOW + 5) == before
    assert reopen(engine, T0 + DAY + 5).day_pnl("sma", T0 + DAY + 5) == 0  # a new day


def test_restored_journal_does_not_reuse_a_client_order_id(engine: Engine, journal: Journal) -> None:
    build_day(journal)
    flush(engine, journal, NOW + 10)
    loaded = reopen(engine, NOW + 60)
    assert loaded.next_seq("sma", NOW + 60) == ("20240501", 4)
    assert loaded.next_seq("rev", NOW + 60) == ("20240501", 2)
    assert loaded.next_seq("new", NOW + 60) == ("20240501", 1)
    assert loaded.next_seq("sma", T0 + DAY) == ("20240502", 1)
    record = new_order(loaded, "sma", "req-4", Side.BUY, "1", NOW + 61)
    assert record.client_order_id == "sma-20240501-5"
    flush(engine, loaded, NOW + 62)  # a reused id would violate the primary key
    assert len(rows(engine, orders_table)) == 5


def test_next_seq_after_reload_counts_orders_outside_the_window(engine: Engine) -> None:
    journal = reopen(engine, NOW, window=60)
    old = new_order(journal, "sma", "req-1", Side.BUY, "1", T0 + 60, status=S.CANCELED)
    flush(engine, journal, T0 + 61)
    loaded = reopen(engine, NOW, window=60)
    assert old.client_order_id not in loaded.orders
    assert loaded.next_seq("sma", NOW) == ("20240501", 2)


def test_old_finished_orders_are_not_loaded_but_can_be_found(engine: Engine) -> None:
    journal = reopen(engine, T0, window=3600)
    done = new_order(journal, "sma", "old-done", Side.BUY, "2", T0 + 10)
    execute(journal, done, "t-old", "2", "1.5", "0.01", at=T0 + 11)
    working = new_order(journal, "sma", "old-open", Side.BUY, "2", T0 + 20)
    fresh = new_order(journal, "sma", "fresh", Side.BUY, "2", NOW - 100, status=S.CANCELED)
    flush(engine, journal, T0 + 30)

    loaded = reopen(engine, NOW, window=3600)
    assert done.client_order_id not in loaded.orders
    assert ("sma", "old-done") not in loaded.by_request
    assert not loaded.seen("paper", "t-old")
    assert working.client_order_id in loaded.orders and loaded.open_orders() == [loaded.orders[working.client_order_id]]
    assert fresh.client_order_id in loaded.orders

    found = loaded.get(done.client_order_id)
    assert found is not None and found.to_wire() == done.to_wire()
    assert [f.trade_id for f in found.fills] == ["t-old"]
    assert loaded.get(done.client_order_id) is found  # indexed now
    assert loaded.by_request[("sma", "old-done")] is found
    assert loaded.seen("paper", "t-old")
    assert loaded.get("nope-20240501-1") is None


def test_find_request_looks_in_the_database_unless_recent_only(engine: Engine) -> None:
    journal = reopen(engine, T0, window=3600)
    old = new_order(journal, "sma", "old-req", Side.BUY, "1", T0 + 10, status=S.FILLED)
    flush(engine, journal, T0 + 20)
    loaded = reopen(engine, NOW, window=3600)
    assert loaded.find_request("sma", "old-req", recent_only=True) is None
    found = loaded.find_request("sma", "old-req", recent_only=False)
    assert found is not None and found.client_order_id == old.client_order_id
    assert loaded.find_request("sma", "old-req", recent_only=True) is found  # indexed once found
    assert loaded.find_request("other", "old-req", recent_only=False) is None
    assert loaded.find_request("sma", "never", recent_only=False) is None


def test_an_order_changed_after_reload_is_updated_not_inserted(engine: Engine, journal: Journal) -> None:
    records = build_day(journal)
    flush(engine, journal, NOW + 10)
    loaded = reopen(engine, NOW + 20)
    r1 = loaded.orders[records["r1"].client_order_id]
    assert not loaded.seen("paper", "t5")
    execute(loaded, r1, "t5", "4", "1.10", at=NOW + 21)
    flush(engine, loaded, NOW + 22)
    again = reopen(engine, NOW + 30)
    assert again.orders[r1.client_order_id].status == S.FILLED and again.open_orders() == []
    assert again.position("sma", "paper", "EUR_USD") == D("6")
    assert [f.trade_id for f in again.orders[r1.client_order_id].fills] == ["t1", "t5"]


def test_fills_are_loaded_in_time_order(engine: Engine, journal: Journal) -> None:
    record = new_order(journal, "sma", "r1", Side.BUY, "3", NOW)
    for trade_id, at in (("z", NOW + 1), ("a", NOW + 2), ("m", NOW + 3)):
        execute(journal, record, trade_id, "1", "1", at=at)
    flush(engine, journal, NOW + 5)
    assert [f.trade_id for f in reopen(engine, NOW + 6).orders[record.client_order_id].fills] == ["z", "a", "m"]


# -- trading days ----------------------------------------------------------------------------------

FX_DAY_START = 22 * 3600  # 22:00 UTC


def fx_bounds(calls: list[float]) -> Any:
    def bounds(now: float) -> tuple[float, float]:
        calls.append(now)
        start = (now - FX_DAY_START) // DAY * DAY + FX_DAY_START
        return start, start + DAY

    return bounds


def test_trading_days_compute_bounds_once_per_day() -> None:
    calls: list[float] = []
    days = TradingDays(fx_bounds(calls))
    first = days(NOW)
    assert first == f"{T0 - 2 * 3600:.0f}"  # the day began at 22:00 the evening before
    for t in (NOW + 1, NOW + 3600, T0 + FX_DAY_START - 0.001):
        assert days(t) == first
    assert calls == [NOW]
    second = days(T0 + FX_DAY_START)  # the boundary belongs to the next day
    assert second == f"{T0 + FX_DAY_START:.0f}" and second != first and len(calls) == 2
    assert days(T0 + FX_DAY_START + 5) == second and len(calls) == 2
    assert days(NOW) == first and len(calls) == 3  # going back recomputes


def test_journal_with_a_trading_day_restores_pnl_since_the_day_began(engine: Engine) -> None:
    """A fill at 23:00 UTC belongs to the next FX day; with the UTC day it would be yesterday's."""
    day = TradingDays(fx_bounds([]))
    journal = reopen(engine, T0 - 3 * 3600, trading_day=day)
    buy = new_order(journal, "fx", "r1", Side.BUY, "2", T0 - 3 * 3600)
    execute(journal, buy, "t1", "2", "1", at=T0 - 3 * 3600)  # 21:00: the previous trading day
    sell = new_order(journal, "fx", "r2", Side.SELL, "1", T0 - 3 * 3600)
    execute(journal, sell, "t2", "1", "3", at=T0 - 3 * 3600 + 60)  # realised 2, previous day
    sell2 = new_order(journal, "fx", "r3", Side.SELL, "1", T0 - 3600)
    execute(journal, sell2, "t3", "1", "5", at=T0 - 3600)  # 23:00: realised 4, the new trading day
    flush(engine, journal, T0 - 3000)
    assert journal.day_realised["fx"] == D("4")
    assert reopen(engine, T0 + 3600, trading_day=TradingDays(fx_bounds([]))).day_pnl("fx", T0 + 3600) == D("4")
    assert reopen(engine, T0 + 3600).day_pnl("fx", T0 + 3600) == 0  # by UTC day, all of it was yesterday
    assert day_of(T0 - 3600) == "20240430"
