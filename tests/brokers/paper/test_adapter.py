"""The paper broker as the router drives it: a real SQLite file, a controlled clock, quotes from a CSV or the random walk."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy
from pydantic import ValidationError

from brokers.base import AdapterServices, ExecutionReport
from brokers.paper import PaperBroker, PaperOptions
from brokers.paper import adapter as adapter_module
from brokers.paper.tables import accounts_table, history_table, orders_table
from brokers.registry import adapter_class
from host.errors import ConfigError
from host.sqlprep import Prepared
from host.trading.errors import InsufficientFunds, InvalidInstrument, InvalidPrice, InvalidQuantity, OrderNotFound
from host.trading.model import Order, OrderChanges, OrderType, Side, TimeInForce
from host.trading.states import OrderStatus

D = Decimal
S = OrderStatus
T0 = datetime(2024, 3, 5, 12, 0, tzinfo=UTC).timestamp()
R = TypeVar("R")


class Clock:
    """Wall-clock seconds the test moves by hand."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def drive(coro: Coroutine[Any, Any, R]) -> R:
    """Run a broker call the way the router does when the broker is atomic: it must not suspend."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("the call suspended")


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def order(
    cid: str,
    side: str = "BUY",
    quantity: str = "1",
    type: str = "MARKET",
    limit: str | None = None,
    stop: str | None = None,
    tif: str = "GTC",
    instrument: str = "EUR_USD",
    stop_loss: str | None = None,
    take_profit: str | None = None,
    trailing_stop: str | None = None,
) -> Order:
    now = datetime.now(UTC)
    return Order(
        client_order_id=cid, request_id=cid, strategy="s1", run_id=None, broker="paper", broker_order_id=None,
        instrument=instrument, side=Side(side), type=OrderType(type), quantity=D(quantity),
        limit_price=None if limit is None else D(limit), stop_price=None if stop is None else D(stop),
        time_in_force=TimeInForce(tif), stop_loss=None if stop_loss is None else D(stop_loss),
        take_profit=None if take_profit is None else D(take_profit), tag="t", status=S.INITIALIZED, raw_status=None,
        filled_quantity=D(0), average_price=None, commission=D(0), error=None, created_at=now, updated_at=now,
        trailing_stop=None if trailing_stop is None else D(trailing_stop),
    )  # fmt: skip


class Bench:
    """A paper broker on a SQLite file in tmp_path, with its clock and the reports it emitted."""

    def __init__(self, tmp_path: Path, clock: Clock | None = None, **options: Any) -> None:
        self.tmp_path = tmp_path
        self.clock = clock or Clock()
        self.emitted: list[ExecutionReport] = []
        self.engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/t.db")
        self.options = PaperOptions(**options)
        self.broker = PaperBroker("paper", self.options, AdapterServices(engine=self.engine, emit=self.emitted.append, clock=self.clock))

    async def start(self) -> PaperBroker:
        await self.broker.start()
        return self.broker

    def persist(self) -> None:
        with self.engine.begin() as conn:
            self.broker.persist(conn)

    def restarted(self) -> Bench:
        """A new broker on the same file and clock (after ``persist`` and ``stop``)."""
        return Bench(self.tmp_path, self.clock, **self.options.model_dump())

    def submit(self, o: Order) -> ExecutionReport:
        return drive(self.broker.submit(o))

    def at(self, seconds: float) -> None:
        self.clock.t = T0 + seconds


def csv_feed(tmp_path: Path, *rows: str, loop: bool = False) -> dict[str, Any]:
    """A CSV feed whose first row plays at T0 (the first start); rows are ``seconds,instrument,bid,ask[,sizes]``."""
    path = tmp_path / "quotes.csv"
    lines = ["timestamp,instrument,bid,ask" + (",bid_size,ask_size" if rows and rows[0].count(",") == 5 else "")]
    for row in rows:
        seconds, rest = row.split(",", 1)
        lines.append(f"{1_000_000 + float(seconds)},{rest}")
    path.write_text("\n".join(lines) + "\n")
    return {"kind": "csv", "path": str(path), "loop": loop}


FLAT_EURUSD = ("0,EUR_USD,1.10000,1.10010",)


# ----------------------------------------------------------------- options


def test_options_defaults_and_registry() -> None:
    options = PaperOptions()
    assert (options.currency, options.starting_balance, options.leverage, options.latency) == ("USD", D(100000), D(1), 0.0)
    assert options.feed.kind == "random_walk" and options.slippage.model == "none"
    assert adapter_class("paper") is PaperBroker
    specs = options.instrument_specs()
    assert {"EUR_USD", "GBP_USD", "USD_JPY", "AUD_USD", "BTC-USD", "ETH-USD", "AAPL", "MSFT", "SPY"} <= set(specs)
    assert specs["USD_JPY"].tick == D("0.001") and specs["BTC-USD"].lot == D("0.00000001") and specs["BTC-USD"].min == D("0.00001")


def test_options_read_decimals_from_strings_ints_and_floats() -> None:
    options = PaperOptions.model_validate(
        {"starting_balance": 2500.5, "leverage": 3, "commission": {"per_unit": "0.005", "percent": 0.1, "minimum": 1}, "slippage": {"model": "percent", "value": 0.1}}
    )
    assert options.starting_balance == D("2500.5")
    assert options.commission.percent == D("0.1")  # not 0.1000000000000000055…
    assert options.slippage.model == "percent" and options.slippage.value == D("0.1")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"bogus": 1}, "bogus"),
        ({"commission": {"per_unit": 1, "extra": 2}}, "extra"),
        ({"slippage": {"model": "magic", "value": 1}}, "magic"),
        ({"slippage": {"model": "fixed"}}, "value"),
        ({"feed": {"kind": "csv"}}, "path"),
        ({"leverage": 0}, "greater than 0"),
        ({"starting_balance": "lots"}, "starting_balance"),
        ({"starting_balance": True}, "boolean"),
        ({"instruments": {"XYZ": {"tick": "0.01"}}}, "XYZ needs a price"),
        ({"instruments": {"bad symbol": {"price": 1}}}, "bad symbol"),
    ],
)
def test_options_refuse_bad_tables(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PaperOptions.model_validate(data)


def test_instruments_extend_and_override_the_defaults() -> None:
    options = PaperOptions.model_validate(
        {"instruments": {"XYZ": {"price": "10", "tick": "0.05", "kind": "cfd"}, "EUR_USD": {"spread": "0.00002"}}, "currency": "EUR"}
    )
    specs = options.instrument_specs()
    assert specs["XYZ"].tick == D("0.05") and specs["XYZ"].lot == D(1) and specs["XYZ"].spread == D("0.10")
    assert specs["XYZ"].currency == "EUR" and specs["XYZ"].kind == "cfd"
    assert specs["EUR_USD"].spread == D("0.00002") and specs["EUR_USD"].tick == D("0.00001")
    only = PaperOptions.model_validate({"default_instruments": False, "instruments": {"XYZ": {"price": "10"}}})
    assert list(only.instrument_specs()) == ["XYZ"]


# ----------------------------------------------------------- basic trading


def test_default_broker_needs_no_configuration(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path)
        broker = await bench.start()
        assert broker.atomic is True
        caps = broker.capabilities
        assert caps.order_types == frozenset(OrderType) and caps.time_in_force == frozenset(TimeInForce)
        assert caps.fractional_units and caps.brackets and caps.modify and not caps.hedging and caps.trailing_stops
        assert "AAPL" in caps.instruments
        inst = broker.instrument("BTC-USD")
        assert inst is not None and (inst.price_increment, inst.quantity_increment, inst.min_quantity, inst.kind) == (D("0.01"), D("1E-8"), D("0.00001"), "crypto")
        assert broker.instrument("NOPE") is None
        quote = drive(broker.quote("AAPL"))
        assert quote.broker == "paper" and quote.bid < quote.ask and quote.ask_size == D(1_000_000)
        report = bench.submit(order("o1", instrument="BTC-USD", quantity="0.015"))
        assert report.status is S.FILLED and report.fills[0].price == drive(broker.quote("BTC-USD")).ask
        await broker.stop()

    run(scenario)


def test_market_orders_fill_at_ask_and_bid(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, feed=csv_feed(tmp_path, *FLAT_EURUSD))
        await bench.start()
        buy = bench.submit(order("b1", quantity="1000"))
        assert (buy.status, buy.raw_status, buy.broker_order_id) == (S.FILLED, "filled", "P1")
        (fill,) = buy.fills
        assert (fill.trade_id, fill.quantity, fill.price, fill.at) == ("paper-T1", D(1000), D("1.10010"), datetime.fromtimestamp(T0, UTC))
        sell = bench.submit(order("s1", side="SELL", quantity="400"))
        assert sell.fills[0].price == D("1.10000") and sell.broker_order_id == "P2" and sell.fills[0].trade_id == "paper-T2"
        await bench.broker.stop()

    run(scenario)


def test_atomic_calls_do_not_suspend_and_latency_makes_them_wait(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, latency=0.01)
        broker = await bench.start()
        assert broker.atomic is False
        coro = broker.submit(order("o1"))
        coro.send(None)  # suspends: it is sleeping out the latency
        coro.close()
        loop = asyncio.get_running_loop()
        started = loop.time()
        report = await broker.submit(order("o2"))
        assert report.status is S.FILLED and loop.time() - started >= 0.009
        assert (await broker.account()).broker == "paper"
        await broker.stop()

    run(scenario)


def test_validation_errors_name_what_was_wrong(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path)
        await bench.start()
        with pytest.raises(InvalidInstrument, match="does not trade 'NOPE'"):
            bench.submit(order("e1", instrument="NOPE"))
        with pytest.raises(InvalidQuantity, match="quantity 1.5 of EUR_USD is not a multiple of the lot size 1"):
            bench.submit(order("e2", quantity="1.5"))
        with pytest.raises(InvalidQuantity, match="quantity 0.000001 of BTC-USD is below the minimum 0.00001"):
            bench.submit(order("e3", instrument="BTC-USD", quantity="0.000001"))
        with pytest.raises(InvalidQuantity, match="must be positive"):
            bench.submit(order("e4", quantity="0"))
        with pytest.raises(InvalidPrice, match="limit price 1.000001 of EUR_USD is not a multiple of the tick 0.00001"):
            bench.submit(order("e5", type="LIMIT", limit="1.000001"))
        with pytest.raises(InvalidPrice, match="stop price -1 of EUR_USD must be positive"):
            bench.submit(order("e6", type="STOP", stop="-1"))
        # A refused order is remembered as REJECTED.
        looked = drive(bench.broker.lookup("e2"))
        assert looked is not None and (looked.status, looked.raw_status) == (S.REJECTED, "rejected: invalid quantity")
        assert looked.error is not None and looked.error.code == "INVALID_QUANTITY" and "lot size 1" in looked.error.message
        assert drive(bench.broker.lookup("never")) is None
        await bench.broker.stop()

    run(scenario)


def test_resubmitting_a_known_order_returns_its_report(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, feed=csv_feed(tmp_path, *FLAT_EURUSD))
        await bench.start()
        first = bench.submit(order("o1"))
        again = bench.submit(order("o1"))
        assert again.fills == first.fills and again.broker_order_id == "P1"
        assert len(drive(bench.broker.positions())) == 1 and drive(bench.broker.positions())[0].quantity == D(1)
        await bench.broker.stop()

    run(scenario)


# ------------------------------------------------------------ slippage etc.


@pytest.mark.parametrize(
    ("slippage", "buy", "sell"),
    [
        ({"model": "none"}, "1.10010", "1.10000"),
        ({"model": "fixed", "value": "0.0002"}, "1.10030", "1.09980"),
        ({"model": "percent", "value": "0.01"}, "1.10021", "1.09989"),  # 0.01 % of 1.1001 = 0.00011001
        ({"model": "impact", "value": "0.001"}, "1.10021", "1.09989"),  # 0.001 × 100k/1M × 1.1001 = 0.00011001
    ],
)
def test_each_slippage_model_moves_market_fills_against_the_taker(tmp_path: Path, slippage: dict[str, str], buy: str, sell: str) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, slippage=slippage, leverage=10, feed=csv_feed(tmp_path, *FLAT_EURUSD))
        await bench.start()
        assert bench.submit(order("b", quantity="100000")).fills[0].price == D(buy)
        assert bench.submit(order("s", side="SELL", quantity="100000")).fills[0].price == D(sell)
        # A limit order is not slipped: it fills at the touch.
        assert bench.submit(order("l", quantity="100000", type="LIMIT", limit="1.20000")).fills[0].price == D("1.10010")
        await bench.broker.stop()

    run(scenario)


def test_impact_grows_with_size(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, slippage={"model": "impact", "value": "0.01"}, leverage=10, feed=csv_feed(tmp_path, *FLAT_EURUSD))
        await bench.start()
        small = bench.submit(order("a", quantity="10000")).fills[0].price
        big = bench.submit(order("b", quantity="100000")).fills[0].price
        assert D("1.10010") < small < big
        await bench.broker.stop()

    run(scenario)


def test_commissions_and_minimum_are_charged_in_the_account(tmp_path: Path) -> None:
    async def scenario() -> None:
        commission = {"per_unit": "0.0001", "percent": "0.01", "minimum": "2"}
        bench = Bench(tmp_path, commission=commission, leverage=2, feed=csv_feed(tmp_path, "0,AAPL,100.00,100.02"))
        broker = await bench.start()
        big = bench.submit(order("a", instrument="AAPL", quantity="1000"))  # 0.1 + 0.01 % of 100,020 = 10.102
        small = bench.submit(order("b", instrument="AAPL", quantity="1"))  # 0.0001 + 0.010002 < 2
        assert big.fills[0].commission == D("10.102") and small.fills[0].commission == D("2")
        account = drive(broker.account())
        assert account.commission == D("12.102")
        assert account.balance == D("100000") - D("12.102")
        await broker.stop()

    run(scenario)


# ---------------------------------------------------------- resting orders


def test_limit_rests_then_fills_from_a_later_quote(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(tmp_path, "0,EUR_USD,1.10000,1.10010", "10,EUR_USD,1.09950,1.09960", "20,EUR_USD,1.09900,1.09905")
        bench = Bench(tmp_path, feed=feed)
        broker = await bench.start()
        report = bench.submit(order("l1", quantity="5", type="LIMIT", limit="1.09960"))
        assert (report.status, report.raw_status, report.fills) == (S.ACCEPTED, "working", ())
        assert [r.client_order_id for r in drive(broker.open_orders())] == ["l1"]
        bench.at(5)
        assert broker.poll() == 0
        bench.at(10)
        assert broker.poll() == 1
        (filled,) = bench.emitted
        assert filled.status is S.FILLED and filled.fills[0].price == D("1.09960") and filled.fills[0].quantity == D(5)
        assert drive(broker.open_orders()) == []
        await broker.stop()

    run(scenario)


def test_background_task_reports_fills_through_emit(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(tmp_path, "0,EUR_USD,1.10000,1.10010", "1,EUR_USD,1.09000,1.09010")
        bench = Bench(tmp_path, feed=feed)
        broker = await bench.start()
        bench.submit(order("l1", type="LIMIT", limit="1.09500"))
        bench.at(1)
        for _ in range(100):
            if bench.emitted:
                break
            await asyncio.sleep(0.01)
        assert bench.emitted and bench.emitted[0].status is S.FILLED and bench.emitted[0].fills[0].price == D("1.09010")
        await broker.stop()

    run(scenario)


def test_stop_triggers_when_the_touch_crosses_it_and_fills_as_market(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(tmp_path, "0,EUR_USD,1.10000,1.10010", "10,EUR_USD,1.10040,1.10050", "20,EUR_USD,1.10100,1.10110")
        bench = Bench(tmp_path, feed=feed)
        broker = await bench.start()
        buy_stop = bench.submit(order("bs", type="STOP", stop="1.10100"))
        sell_stop = bench.submit(order("ss", side="SELL", type="STOP", stop="1.09950"))
        assert buy_stop.status is S.ACCEPTED and sell_stop.status is S.ACCEPTED
        bench.at(10)
        broker.poll()
        assert bench.emitted == []  # ask 1.10050 < stop 1.10100
        bench.at(20)
        broker.poll()
        (fired,) = bench.emitted
        assert fired.client_order_id == "bs" and fired.status is S.FILLED and fired.fills[0].price == D("1.10110")
        await broker.stop()

    run(scenario)


def test_stop_limit_triggers_then_rests_as_a_limit(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(
            tmp_path, "0,EUR_USD,1.10000,1.10010", "10,EUR_USD,1.10100,1.10110", "20,EUR_USD,1.10060,1.10070"
        )  # fmt: skip
        bench = Bench(tmp_path, feed=feed)
        broker = await bench.start()
        bench.submit(order("sl", type="STOP_LIMIT", stop="1.10050", limit="1.10080"))
        bench.at(10)
        assert broker.poll() == 0  # triggered (ask 1.10110 >= 1.10050) but above the limit
        assert drive(broker.lookup("sl")).raw_status == "triggered"  # type: ignore[union-attr]
        bench.at(20)
        broker.poll()
        assert bench.emitted[0].status is S.FILLED and bench.emitted[0].fills[0].price == D("1.10070")
        await broker.stop()

    run(scenario)


def test_partial_fills_continue_on_following_steps(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(tmp_path, "0,EUR_USD,1.10000,1.10010", "1,EUR_USD,1.10000,1.10020", "2,EUR_USD,1.10000,1.10030")
        bench = Bench(tmp_path, liquidity="400", feed=feed)
        broker = await bench.start()
        first = bench.submit(order("big", quantity="1000"))
        assert (first.status, first.raw_status, first.fills[0].quantity) == (S.PARTIALLY_FILLED, "partially_filled", D(400))
        # The step's size is used up for everyone.
        other = bench.submit(order("other", quantity="5"))
        assert other.status is S.ACCEPTED and other.fills == ()
        bench.at(1)
        broker.poll()
        bench.at(2)
        broker.poll()
        big = [r for r in bench.emitted if r.client_order_id == "big"]
        assert [(r.status, r.fills[0].quantity, r.fills[0].price) for r in big] == [
            (S.PARTIALLY_FILLED, D(400), D("1.10020")),
            (S.FILLED, D(200), D("1.10030")),
        ]
        position = drive(broker.positions())[0]
        assert position.quantity == D(1005)
        await broker.stop()

    run(scenario)


def test_csv_sizes_limit_the_liquidity(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, feed=csv_feed(tmp_path, "0,EUR_USD,1.10000,1.10010,50,70"))
        await bench.start()
        assert bench.submit(order("b", quantity="100")).fills[0].quantity == D(70)
        assert bench.submit(order("s", side="SELL", quantity="100")).fills[0].quantity == D(50)
        await bench.broker.stop()

    run(scenario)


def test_ioc_fills_what_it_can_and_cancels_the_rest(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, liquidity="300", feed=csv_feed(tmp_path, *FLAT_EURUSD))
        await bench.start()
        report = bench.submit(order("ioc", quantity="500", tif="IOC"))
        assert (report.status, report.raw_status, sum(f.quantity for f in report.fills)) == (S.CANCELED, "cancelled: ioc remainder", D(300))
        away = bench.submit(order("ioc2", side="SELL", quantity="5", type="LIMIT", limit="1.20000", tif="IOC"))
        assert (away.status, away.fills) == (S.CANCELED, ())
        assert drive(bench.broker.open_orders()) == []
        await bench.broker.stop()

    run(scenario)


def test_fok_fills_all_or_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, liquidity="300", feed=csv_feed(tmp_path, *FLAT_EURUSD))
        await bench.start()
        killed = bench.submit(order("fok1", quantity="500", tif="FOK"))
        assert (killed.status, killed.raw_status, killed.fills) == (S.CANCELED, "cancelled: fok not fillable", ())
        filled = bench.submit(order("fok2", quantity="300", tif="FOK"))
        assert filled.status is S.FILLED and filled.fills[0].quantity == D(300)
        await bench.broker.stop()

    run(scenario)


def test_day_orders_expire_at_the_next_utc_midnight(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, feed=csv_feed(tmp_path, *FLAT_EURUSD))
        broker = await bench.start()
        bench.submit(order("day", type="LIMIT", limit="1.00000", tif="DAY"))
        bench.submit(order("gtc", type="LIMIT", limit="1.00000"))
        bench.at(11 * 3600 + 59 * 60)  # 23:59 UTC
        broker.poll()
        assert bench.emitted == []
        bench.at(12 * 3600)  # midnight
        broker.poll()
        assert [(r.client_order_id, r.status, r.raw_status) for r in bench.emitted] == [("day", S.EXPIRED, "expired")]
        assert [r.client_order_id for r in drive(broker.open_orders())] == ["gtc"]
        await broker.stop()

    run(scenario)


# ------------------------------------------------------- cancel and modify


def test_cancel_working_and_not_working_orders(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, feed=csv_feed(tmp_path, *FLAT_EURUSD))
        broker = await bench.start()
        bench.submit(order("l", type="LIMIT", limit="1.00000"))
        cancelled = drive(broker.cancel(order("l")))
        assert (cancelled.status, cancelled.raw_status) == (S.CANCELED, "cancelled")
        with pytest.raises(OrderNotFound, match="order l is not working at paper broker paper: it is CANCELED"):
            drive(broker.cancel(order("l")))
        with pytest.raises(OrderNotFound, match="order ghost is not working"):
            drive(broker.cancel(order("ghost")))
        await broker.stop()

    run(scenario)


def test_modify_changes_terms_and_may_fill_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, liquidity="100", feed=csv_feed(tmp_path, *FLAT_EURUSD))
        broker = await bench.start()
        bench.submit(order("l", quantity="10", type="LIMIT", limit="1.00000"))
        moved = drive(broker.modify(order("l"), OrderChanges(quantity=D(20), limit_price=D("1.05000"))))
        assert (moved.status, moved.quantity, moved.limit_price, moved.raw_status) == (S.ACCEPTED, D(20), D("1.05000"), "modified")
        crossed = drive(broker.modify(order("l"), OrderChanges(limit_price=D("1.10010"))))
        assert crossed.status is S.FILLED and crossed.fills[0].quantity == D(20) and crossed.limit_price == D("1.10010")
        with pytest.raises(OrderNotFound):
            drive(broker.modify(order("l"), OrderChanges(quantity=D(30))))
        # Quantity below what has filled; a stop on a limit order; an off-tick price.
        bench.submit(order("p", quantity="150", type="LIMIT", limit="1.20000"))  # 80 fill: "l" took 20 of this step's 100
        with pytest.raises(InvalidQuantity, match="below its filled quantity 80"):
            drive(broker.modify(order("p"), OrderChanges(quantity=D(50))))
        with pytest.raises(InvalidPrice, match="has no stop price"):
            drive(broker.modify(order("p"), OrderChanges(stop_price=D("1.1"))))
        with pytest.raises(InvalidPrice, match="tick"):
            drive(broker.modify(order("p"), OrderChanges(limit_price=D("1.123456"))))
        done = drive(broker.modify(order("p"), OrderChanges(quantity=D(80))))
        assert done.status is S.FILLED
        await broker.stop()

    run(scenario)


# ------------------------------------------------------------------ brackets


def test_bracket_children_follow_the_entry_and_cancel_each_other(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(tmp_path, "0,EUR_USD,1.10000,1.10010", "10,EUR_USD,1.10300,1.10310")
        bench = Bench(tmp_path, feed=feed)
        broker = await bench.start()
        entry = bench.submit(order("e", quantity="1000", stop_loss="1.09000", take_profit="1.10200"))
        assert entry.status is S.FILLED
        assert bench.emitted == []  # the children come after the entry's answer
        await asyncio.sleep(0)
        sl, tp = bench.emitted
        assert (sl.client_order_id, sl.status, sl.parent_client_order_id, sl.stop_price) == ("e-SL", S.ACCEPTED, "e", D("1.09000"))
        assert (tp.client_order_id, tp.status, tp.parent_client_order_id, tp.limit_price) == ("e-TP", S.ACCEPTED, "e", D("1.10200"))
        assert sl.terms is not None and (sl.terms.side, sl.terms.type, sl.terms.quantity, sl.terms.stop_price) == (Side.SELL, OrderType.STOP, D(1000), D("1.09000"))
        assert tp.terms is not None and (tp.terms.side, tp.terms.type, tp.terms.limit_price, tp.terms.tag) == (Side.SELL, OrderType.LIMIT, D("1.10200"), "t")
        bench.emitted.clear()
        bench.at(10)
        broker.poll()
        assert [(r.client_order_id, r.status, r.raw_status) for r in bench.emitted] == [("e-TP", S.FILLED, "filled"), ("e-SL", S.CANCELED, "cancelled: oco")]
        assert bench.emitted[0].fills[0].price == D("1.10300")
        assert drive(broker.open_orders()) == []
        position = drive(broker.positions())[0]
        assert position.quantity == 0 and position.realised_pnl == D("2.90")  # 1000 × (1.10300 − 1.10010)
        await broker.stop()

    run(scenario)


def test_bracket_prices_must_be_on_the_right_side(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, feed=csv_feed(tmp_path, *FLAT_EURUSD))
        await bench.start()
        with pytest.raises(InvalidPrice, match="stop loss 1.20000 of a BUY of EUR_USD must be below the entry price 1.10010"):
            bench.submit(order("a", stop_loss="1.20000"))
        with pytest.raises(InvalidPrice, match="take profit 1.20000 of a SELL of EUR_USD must be below the entry price 1.05000"):
            bench.submit(order("b", side="SELL", type="LIMIT", limit="1.05000", take_profit="1.20000"))
        await bench.broker.stop()

    run(scenario)


def test_a_resting_entry_gets_its_children_when_it_fills(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(tmp_path, "0,EUR_USD,1.10000,1.10010", "10,EUR_USD,1.09000,1.09010")
        bench = Bench(tmp_path, feed=feed)
        broker = await bench.start()
        bench.submit(order("e", type="LIMIT", limit="1.09500", stop_loss="1.08000"))
        bench.at(10)
        broker.poll()
        assert [(r.client_order_id, r.status) for r in bench.emitted] == [("e", S.FILLED), ("e-SL", S.ACCEPTED)]
        assert bench.emitted[1].terms is not None and bench.emitted[1].terms.quantity == D(1)
        await broker.stop()

    run(scenario)


def test_market_if_touched_triggers_on_the_favourable_side_and_fills_with_slippage(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(tmp_path, "0,EUR_USD,1.10000,1.10010", "10,EUR_USD,1.09900,1.09910", "20,EUR_USD,1.10100,1.10110")
        bench = Bench(tmp_path, slippage={"model": "fixed", "value": "0.0002"}, feed=feed)
        broker = await bench.start()
        buy = bench.submit(order("bm", type="MARKET_IF_TOUCHED", stop="1.09950"))  # ask 1.10010 above it: waits
        sell = bench.submit(order("sm", side="SELL", type="MARKET_IF_TOUCHED", stop="1.10050"))  # bid 1.10000 below it: waits
        assert (buy.status, buy.stop_price, sell.status) == (S.ACCEPTED, D("1.09950"), S.ACCEPTED)
        touched = bench.submit(order("now", type="MARKET_IF_TOUCHED", stop="1.10100"))  # ask already at or below: at once
        assert touched.status is S.FILLED and touched.fills[0].price == D("1.10030")  # ask + slippage
        bench.at(10)
        broker.poll()
        # The buy triggers as the ask falls to its trigger; the sell does not (a SELL STOP at 1.10050 would have).
        (fired,) = bench.emitted
        assert (fired.client_order_id, fired.status, fired.fills[0].price) == ("bm", S.FILLED, D("1.09930"))
        bench.emitted.clear()
        bench.at(20)
        broker.poll()
        (fired,) = bench.emitted
        assert (fired.client_order_id, fired.status, fired.fills[0].price) == ("sm", S.FILLED, D("1.10080"))  # bid − slippage
        await broker.stop()

    run(scenario)


def test_market_if_touched_honours_ioc_fok_and_day_like_a_stop(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(tmp_path, "0,EUR_USD,1.10000,1.10010", "10,EUR_USD,1.09900,1.09910")
        bench = Bench(tmp_path, liquidity="300", feed=feed)
        broker = await bench.start()
        ioc = bench.submit(order("ioc", quantity="500", type="MARKET_IF_TOUCHED", stop="1.09950", tif="IOC"))
        fok = bench.submit(order("fok", quantity="500", type="MARKET_IF_TOUCHED", stop="1.09950", tif="FOK"))
        day = bench.submit(order("day", side="SELL", type="MARKET_IF_TOUCHED", stop="1.20000", tif="DAY"))
        assert (ioc.status, fok.status, day.status) == (S.ACCEPTED, S.ACCEPTED, S.ACCEPTED)  # not triggered yet: they wait
        bench.at(10)
        broker.poll()
        got = {r.client_order_id: r for r in bench.emitted}
        assert (got["ioc"].status, got["ioc"].raw_status, sum(f.quantity for f in got["ioc"].fills)) == (S.CANCELED, "cancelled: ioc remainder", D(300))
        assert (got["fok"].status, got["fok"].raw_status, got["fok"].fills) == (S.CANCELED, "cancelled: fok not fillable", ())
        assert "day" not in got
        bench.emitted.clear()
        bench.at(12 * 3600)  # T0 is noon UTC
        broker.poll()
        assert [(r.client_order_id, r.status) for r in bench.emitted] == [("day", S.EXPIRED)]
        await broker.stop()

    run(scenario)


def test_trailing_stop_ratchets_up_for_a_long_and_fires_when_the_bid_falls_back(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(
            tmp_path, "0,EUR_USD,1.10000,1.10010", "10,EUR_USD,1.10100,1.10110", "20,EUR_USD,1.10050,1.10060",
            "30,EUR_USD,1.10200,1.10210", "40,EUR_USD,1.10100,1.10110",
        )  # fmt: skip
        bench = Bench(tmp_path, feed=feed)
        broker = await bench.start()
        entry = bench.submit(order("e", quantity="1000", trailing_stop="0.00100"))
        assert entry.status is S.FILLED
        await asyncio.sleep(0)
        (tsl,) = bench.emitted
        assert (tsl.client_order_id, tsl.status, tsl.parent_client_order_id, tsl.stop_price) == ("e-TSL", S.ACCEPTED, "e", D("1.09900"))
        assert tsl.terms is not None and (tsl.terms.side, tsl.terms.type, tsl.terms.quantity, tsl.terms.stop_price) == (Side.SELL, OrderType.STOP, D(1000), D("1.09900"))
        bench.emitted.clear()

        def stop_now() -> Decimal | None:
            (working,) = drive(broker.open_orders())
            return working.stop_price

        for seconds, stop in ((10, "1.10000"), (20, "1.10000"), (30, "1.10100")):  # up with the bid, never back down
            bench.at(seconds)
            broker.poll()
            assert bench.emitted == [] and stop_now() == D(stop)
        bench.at(40)
        broker.poll()
        (fired,) = bench.emitted
        assert (fired.client_order_id, fired.status, fired.stop_price, fired.fills[0].price) == ("e-TSL", S.FILLED, D("1.10100"), D("1.10100"))
        assert drive(broker.open_orders()) == []
        position = drive(broker.positions())[0]
        assert position.quantity == 0 and position.realised_pnl == D("0.90")  # 1000 × (1.10100 − 1.10010)
        await broker.stop()

    run(scenario)


def test_trailing_stop_of_a_short_follows_the_ask_down(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(tmp_path, "0,EUR_USD,1.10000,1.10010", "10,EUR_USD,1.09800,1.09810", "20,EUR_USD,1.09900,1.09910")
        bench = Bench(tmp_path, feed=feed)
        broker = await bench.start()
        bench.submit(order("s", side="SELL", quantity="10", trailing_stop="0.00050"))
        await asyncio.sleep(0)
        assert [(r.client_order_id, r.stop_price) for r in bench.emitted] == [("s-TSL", D("1.10060"))]
        bench.emitted.clear()
        bench.at(10)
        broker.poll()
        assert [r.stop_price for r in drive(broker.open_orders())] == [D("1.09860")]
        bench.at(20)
        broker.poll()
        (fired,) = bench.emitted
        assert (fired.client_order_id, fired.status, fired.fills[0].price) == ("s-TSL", S.FILLED, D("1.09910"))
        await broker.stop()

    run(scenario)


def test_trailing_stop_is_one_cancels_the_others_with_the_bracket(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(tmp_path, "0,EUR_USD,1.10000,1.10010", "10,EUR_USD,1.10300,1.10310")
        bench = Bench(tmp_path, feed=feed)
        broker = await bench.start()
        bench.submit(order("e", quantity="1000", stop_loss="1.09000", take_profit="1.10200", trailing_stop="0.00100"))
        await asyncio.sleep(0)
        assert [(r.client_order_id, r.status, r.parent_client_order_id) for r in bench.emitted] == [
            ("e-SL", S.ACCEPTED, "e"), ("e-TP", S.ACCEPTED, "e"), ("e-TSL", S.ACCEPTED, "e"),
        ]  # fmt: skip
        bench.emitted.clear()
        bench.at(10)
        broker.poll()
        assert sorted((r.client_order_id, r.status, r.raw_status) for r in bench.emitted) == [
            ("e-SL", S.CANCELED, "cancelled: oco"), ("e-TP", S.FILLED, "filled"), ("e-TSL", S.CANCELED, "cancelled: oco"),
        ]  # fmt: skip
        assert drive(broker.open_orders()) == []
        assert drive(broker.positions())[0].quantity == 0
        await broker.stop()

    run(scenario)


def test_trailing_stop_must_be_a_multiple_of_the_tick(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, feed=csv_feed(tmp_path, *FLAT_EURUSD))
        await bench.start()
        with pytest.raises(InvalidPrice, match="trailing stop distance 0.000015 of EUR_USD is not a multiple of the tick"):
            bench.submit(order("a", trailing_stop="0.000015"))
        await bench.broker.stop()

    run(scenario)


def test_trailing_stop_survives_a_restart(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(
            tmp_path, "0,EUR_USD,1.10000,1.10010", "10,EUR_USD,1.10100,1.10110", "20,EUR_USD,1.10150,1.10160", "30,EUR_USD,1.10050,1.10060",
        )  # fmt: skip
        bench = Bench(tmp_path, feed=feed)
        broker = await bench.start()
        bench.submit(order("e", quantity="1000", take_profit="1.10500", trailing_stop="0.00100"))
        bench.submit(order("l", quantity="7", type="LIMIT", limit="1.09000", trailing_stop="0.00200"))  # rests
        bench.at(10)
        broker.poll()
        bench.persist()
        before = drive(broker.open_orders())
        assert {r.client_order_id: r.stop_price for r in before}["e-TSL"] == D("1.10000")
        await broker.stop()

        again = bench.restarted()
        broker2 = await again.start()
        assert drive(broker2.open_orders()) == before
        assert broker2._working["l"].trailing_stop == D("0.00200") and broker2._working["e-TSL"].trailing_stop == D("0.00100")
        again.at(20)
        broker2.poll()
        assert {r.client_order_id: r.stop_price for r in drive(broker2.open_orders())}["e-TSL"] == D("1.10050")
        again.at(30)
        broker2.poll()
        assert [(r.client_order_id, r.status) for r in again.emitted] == [("e-TSL", S.FILLED), ("e-TP", S.CANCELED)]
        assert again.emitted[0].fills[0].price == D("1.10050")
        await broker2.stop()

    run(scenario)


def test_an_older_orders_table_gets_the_trailing_stop_column(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, feed=csv_feed(tmp_path, *FLAT_EURUSD))
        with bench.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE paper_orders (broker VARCHAR(64) NOT NULL, client_order_id VARCHAR(120) NOT NULL, "
                                 "broker_order_id VARCHAR(40), instrument VARCHAR(64) NOT NULL, side INTEGER NOT NULL, type VARCHAR(20) NOT NULL, "
                                 "quantity VARCHAR(40) NOT NULL, limit_price VARCHAR(40), stop_price VARCHAR(40), time_in_force VARCHAR(4) NOT NULL, "
                                 "stop_loss VARCHAR(40), take_profit VARCHAR(40), tag VARCHAR(64), parent VARCHAR(120), oco VARCHAR(120), "
                                 "triggered INTEGER NOT NULL, expires_at FLOAT, status VARCHAR(20) NOT NULL, raw_status VARCHAR(120) NOT NULL, "
                                 "filled VARCHAR(40) NOT NULL, filled_value VARCHAR(60) NOT NULL, commission VARCHAR(40) NOT NULL, fills TEXT NOT NULL, "
                                 "error TEXT, created_at FLOAT NOT NULL, updated_at FLOAT NOT NULL, PRIMARY KEY (broker, client_order_id)) WITHOUT ROWID")
        await bench.start()
        bench.submit(order("l", type="LIMIT", limit="1.09000", trailing_stop="0.00100"))
        bench.persist()
        with bench.engine.connect() as conn:
            assert conn.execute(sqlalchemy.select(orders_table.c.trailing_stop)).scalar_one() == "0.00100"
        await bench.broker.stop()

    run(scenario)


# ------------------------------------------------------------------- money


def test_leverage_limits_position_increasing_orders_only(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, starting_balance="10000", leverage="2", feed=csv_feed(tmp_path, "0,AAPL,99.99,100.00"))
        broker = await bench.start()
        bench.submit(order("a", instrument="AAPL", quantity="150"))  # 15,000; marked at 99.995, equity 9999.25
        with pytest.raises(InsufficientFunds, match=r"BUY 60 AAPL would bring gross exposure to 21000.00 USD, over equity 9999.25 USD × leverage 2"):
            bench.submit(order("b", instrument="AAPL", quantity="60"))
        assert bench.submit(order("c", instrument="AAPL", quantity="49")).status is S.FILLED  # 19,900 ≤ 19,998.50
        with pytest.raises(InsufficientFunds):
            bench.submit(order("c2", instrument="AAPL", quantity="1"))
        assert bench.submit(order("d", side="SELL", instrument="AAPL", quantity="200")).status is S.FILLED  # to −1: smaller
        assert drive(broker.lookup("b")).raw_status == "rejected: insufficient funds"  # type: ignore[union-attr]
        await broker.stop()

    run(scenario)


def test_a_resting_order_that_can_no_longer_be_afforded_is_rejected(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(tmp_path, "0,AAPL,99.99,100.00", "10,AAPL,89.99,90.00")
        bench = Bench(tmp_path, starting_balance="1000", feed=feed)
        broker = await bench.start()
        bench.submit(order("l", instrument="AAPL", quantity="10", type="LIMIT", limit="90.00"))  # 900 at submit
        bench.submit(order("m", instrument="AAPL", quantity="1"))  # the account now holds 100 of AAPL
        bench.at(10)
        broker.poll()
        (report,) = bench.emitted
        assert (report.status, report.raw_status) == (S.REJECTED, "rejected: insufficient funds")
        assert report.error is not None and report.error.code == "INSUFFICIENT_FUNDS"
        await broker.stop()

    run(scenario)


def test_realised_and_unrealised_pnl(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(tmp_path, "0,AAPL,99.99,100.00", "10,AAPL,104.99,105.00", "20,AAPL,109.99,110.00")
        bench = Bench(tmp_path, feed=feed)
        broker = await bench.start()
        bench.submit(order("a", instrument="AAPL", quantity="10"))  # at 100.00
        bench.at(10)
        bench.submit(order("b", instrument="AAPL", quantity="10"))  # at 105.00, average 102.50
        bench.at(20)
        bench.submit(order("c", side="SELL", instrument="AAPL", quantity="5"))  # at 109.99
        (position,) = drive(broker.positions())
        assert position.quantity == D(15) and position.average_price == D("102.5")
        assert position.realised_pnl == D("37.45")  # 5 × (109.99 − 102.50)
        assert position.market_price == D("109.995") and position.unrealised_pnl == D("112.425")  # 15 × 7.495
        account = drive(broker.account())
        assert account.realised_pnl == D("37.45") and account.unrealised_pnl == D("112.425")
        assert account.balance == D("100037.45") and account.equity == D("100149.875")
        await broker.stop()

    run(scenario)


def test_pnl_in_another_currency_is_converted(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(tmp_path, "0,USD_JPY,149.990,150.000", "10,USD_JPY,151.500,151.510")
        bench = Bench(tmp_path, feed=feed)
        broker = await bench.start()
        bench.submit(order("a", instrument="USD_JPY", quantity="1000"))  # at 150.000
        bench.at(10)
        bench.submit(order("b", side="SELL", instrument="USD_JPY", quantity="1000"))  # at 151.500: 1500 JPY
        (position,) = drive(broker.positions())
        assert position.realised_pnl == D("1500.000")  # in JPY, the instrument's currency
        account = drive(broker.account())
        assert abs(account.realised_pnl - D(1500) / D("151.505")) < D("0.0001")  # in USD
        await broker.stop()

    run(scenario)


# -------------------------------------------------------------- persistence


def test_restart_keeps_account_positions_working_orders_and_counters(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(tmp_path, "0,EUR_USD,1.10000,1.10010", "100,EUR_USD,1.09000,1.09010")
        bench = Bench(tmp_path, commission={"minimum": "1"}, feed=feed)
        broker = await bench.start()
        bench.submit(order("a", quantity="1000"))
        bench.submit(order("b", side="SELL", quantity="400"))
        bench.submit(order("l", quantity="7", type="LIMIT", limit="1.09500", stop_loss="1.08000"))
        bench.persist()
        before = (drive(broker.account()), drive(broker.positions()), drive(broker.open_orders()))
        await broker.stop()

        again = bench.restarted()
        broker2 = await again.start()
        assert (drive(broker2.account()), drive(broker2.positions()), drive(broker2.open_orders())) == before
        assert drive(broker2.lookup("a")) == drive(broker.lookup("a"))  # from the database
        report = again.submit(order("c", quantity="1"))
        assert report.broker_order_id == "P4" and report.fills[0].trade_id == "paper-T3"  # no id reused
        again.at(100)
        broker2.poll()
        assert [(r.client_order_id, r.status) for r in again.emitted] == [("l", S.FILLED), ("l-SL", S.ACCEPTED)]
        assert again.emitted[1].broker_order_id == "P5"
        await broker2.stop()

    run(scenario)


def test_random_walk_continues_after_a_restart(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path)
        broker = await bench.start()
        bench.persist()  # stores the feed origin
        await broker.stop()
        bench.at(3 * 86_400 + 0.5)
        expected = drive(broker.quote("EUR_USD"))
        again = bench.restarted()
        broker2 = await again.start()
        assert drive(broker2.quote("EUR_USD")) == expected
        await broker2.stop()

    run(scenario)


def test_persist_writes_only_what_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    statements: list[str] = []
    run_statement = Prepared.run

    def spy(self: Prepared, conn: Any, rows: list[Any]) -> Any:
        statements.append(self.sql)
        return run_statement(self, conn, rows)

    monkeypatch.setattr(Prepared, "run", spy)

    async def scenario() -> None:
        bench = Bench(tmp_path, feed=csv_feed(tmp_path, *FLAT_EURUSD))
        broker = await bench.start()
        statements.clear()
        bench.persist()  # account and feed origin
        assert len([s for s in statements if "paper_" in s]) == 2
        statements.clear()
        bench.persist()
        assert [s for s in statements if "paper_" in s] == []
        for i in range(50):
            bench.submit(order(f"o{i}"))
        bench.persist()
        assert len([s for s in statements if "paper_" in s]) == 3  # account, positions, history: one executemany each
        with bench.engine.connect() as conn:
            assert conn.execute(sqlalchemy.select(sqlalchemy.func.count()).select_from(history_table)).scalar() == 50
        # A resting order has a working row until it is done; then it moves to the history.
        bench.submit(order("rest", type="LIMIT", limit="1.00000"))
        bench.persist()
        drive(broker.cancel(order("rest")))
        bench.persist()
        with bench.engine.connect() as conn:
            assert conn.execute(sqlalchemy.select(sqlalchemy.func.count()).select_from(orders_table)).scalar() == 0
            assert conn.execute(sqlalchemy.select(sqlalchemy.func.count()).select_from(history_table)).scalar() == 51
        await broker.stop()

    run(scenario)


def test_lookup_reads_old_orders_back_from_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter_module, "RECENT_ORDERS", 3)

    async def scenario() -> None:
        bench = Bench(tmp_path, feed=csv_feed(tmp_path, *FLAT_EURUSD))
        broker = await bench.start()
        first = bench.submit(order("o0"))
        for i in range(1, 10):
            bench.submit(order(f"o{i}"))
        bench.persist()
        assert "o0" not in broker._recent  # evicted from memory
        looked = drive(broker.lookup("o0"))
        assert looked is not None and (looked.status, looked.fills, looked.broker_order_id) == (S.FILLED, first.fills, "P1")
        await broker.stop()

    run(scenario)


def test_csv_feed_problems_are_config_errors(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, feed={"kind": "csv", "path": str(tmp_path / "missing.csv")})
        with pytest.raises(ConfigError, match="cannot read quotes"):
            await bench.start()

    run(scenario)


def test_children_protect_only_what_the_entry_filled(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, liquidity="300", feed=csv_feed(tmp_path, *FLAT_EURUSD))
        await bench.start()
        entry = bench.submit(order("e", quantity="500", tif="IOC", stop_loss="1.09000", take_profit="1.12000"))
        assert entry.status is S.CANCELED and entry.fills[0].quantity == D(300)
        await asyncio.sleep(0)
        assert [(r.client_order_id, r.quantity) for r in bench.emitted] == [("e-SL", D(300)), ("e-TP", D(300))]
        await bench.broker.stop()

    run(scenario)


def test_cancelling_a_bracket_leg_leaves_the_other_working(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, feed=csv_feed(tmp_path, *FLAT_EURUSD))
        broker = await bench.start()
        bench.submit(order("e", stop_loss="1.09000", take_profit="1.12000"))
        drive(broker.cancel(order("e-TP")))
        assert [r.client_order_id for r in drive(broker.open_orders())] == ["e-SL"]
        await broker.stop()

    run(scenario)


def test_a_failing_emit_does_not_hold_back_other_reports(tmp_path: Path) -> None:
    async def scenario() -> None:
        feed = csv_feed(tmp_path, "0,EUR_USD,1.10000,1.10010", "10,EUR_USD,1.09000,1.09010")
        bench = Bench(tmp_path, feed=feed)
        broker = await bench.start()
        bench.submit(order("a", type="LIMIT", limit="1.09500"))
        bench.submit(order("b", type="LIMIT", limit="1.09500"))
        seen: list[str] = []

        def emit(report: ExecutionReport) -> None:
            seen.append(report.client_order_id)
            if report.client_order_id == "a":
                raise RuntimeError("router hiccup")

        broker.services.emit = emit
        bench.at(10)
        broker.poll()
        assert seen == ["a", "b"]
        await broker.stop()

    run(scenario)


def test_orders_built_without_validation_are_understood(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, feed=csv_feed(tmp_path, *FLAT_EURUSD))
        await bench.start()
        fields = order("raw", type="LIMIT", limit="1.20000", tif="IOC").model_dump()
        fields.update(side="SELL", type="LIMIT", time_in_force="IOC")  # plain strings, as model_construct may leave them
        report = bench.submit(Order.model_construct(**fields))
        assert report.status is S.CANCELED and report.fills == ()  # a SELL limit at 1.2 is not marketable
        await bench.broker.stop()

    run(scenario)


def test_an_overdue_day_order_expires_rather_than_fills_on_modify(tmp_path: Path) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, feed=csv_feed(tmp_path, *FLAT_EURUSD))
        broker = await bench.start()
        bench.submit(order("day", type="LIMIT", limit="1.00000", tif="DAY"))
        bench.at(13 * 3600)  # past midnight, before the background task looked
        report = drive(broker.modify(order("day"), OrderChanges(limit_price=D("1.20000"))))
        assert (report.status, report.fills) == (S.EXPIRED, ())
        await broker.stop()

    run(scenario)


def test_a_failed_persist_keeps_the_changes_for_the_next_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        bench = Bench(tmp_path, feed=csv_feed(tmp_path, *FLAT_EURUSD))
        broker = await bench.start()
        bench.submit(order("a"))
        real = adapter_module.history_text

        def broken(po: Any) -> str:
            raise OSError("disk full")

        monkeypatch.setattr(adapter_module, "history_text", broken)
        with pytest.raises(OSError, match="disk full"):
            bench.persist()
        monkeypatch.setattr(adapter_module, "history_text", real)
        bench.persist()
        with bench.engine.connect() as conn:
            assert conn.execute(sqlalchemy.select(history_table.c.client_order_id)).scalars().all() == ["a"]
            assert conn.execute(sqlalchemy.select(sqlalchemy.func.count()).select_from(accounts_table)).scalar() == 1
        await broker.stop()

    run(scenario)


def test_the_documented_example_validates() -> None:
    import tomllib

    from brokers.paper import options as options_module

    assert options_module.__doc__ is not None
    block = [line[4:] for line in options_module.__doc__.splitlines() if line.startswith("    ")]
    active = [line for line in block if not line.startswith("#")]
    table = tomllib.loads("\n".join(active))["brokers"]["paper"]
    assert table.pop("type") == "paper"
    base = PaperOptions.model_validate(table)
    assert base == PaperOptions()  # the example spells out the defaults
    # Each commented alternative is valid too.
    for line in block:
        if line.startswith(("# slippage", "# feed", "# default_instruments")):
            key_value = tomllib.loads(line[2:].split("  #")[0])
            PaperOptions.model_validate(table | key_value)
    extra = "\n".join(line[2:] for line in block if line.startswith("# [brokers.paper.instruments]") or line.startswith(("# XYZ", "# EUR_USD")))
    instruments = tomllib.loads(extra)["brokers"]["paper"]["instruments"]
    assert PaperOptions.model_validate({"instruments": instruments}).instrument_specs()["XYZ"].spread == D("0.02")
