"""The paper broker's quote feeds: a deterministic random walk and a CSV replay."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brokers.paper.feed import (
    CsvReplayFeed,
    CsvRow,
    RandomWalkFeed,
    WalkSpec,
    brownian_value,
    infer_tick,
    parse_quote_rows,
    read_quotes_csv,
    reflect,
)

EURUSD = WalkSpec(Decimal("1.08500"), Decimal("0.00001"), Decimal("0.00008"))
PENNY = WalkSpec(Decimal("0.05"), Decimal("0.01"), Decimal("0.01"))


def walk(seed: int = 7, origin: float = 1_000.0, interval: float = 1.0, volatility: float = 0.0001, **specs: WalkSpec) -> RandomWalkFeed:
    return RandomWalkFeed(specs or {"EUR_USD": EURUSD}, seed=seed, interval=interval, volatility=volatility, origin=origin)


def test_random_walk_starts_at_the_instrument_price_with_its_spread() -> None:
    q = walk().quote("EUR_USD", 1_000.0)
    assert q.step == 0
    assert (q.bid, q.ask) == (Decimal("1.08496"), Decimal("1.08504"))
    assert q.at == 1_000.0


def test_random_walk_step_is_floor_of_elapsed_over_interval() -> None:
    feed = walk(interval=0.5)
    assert feed.quote("EUR_USD", 1_000.49).step == 0
    assert feed.quote("EUR_USD", 1_000.5).step == 1
    assert feed.quote("EUR_USD", 1_010.2).step == 20
    assert feed.quote("EUR_USD", 1_010.2).at == 1_010.0
    assert feed.quote("EUR_USD", 900.0).step == 0  # before the origin: the first step


def test_random_walk_moves() -> None:
    feed = walk(volatility=0.001)
    mids = {feed.quote("EUR_USD", 1_000.0 + k).bid for k in range(50)}
    assert len(mids) > 20


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=30))
def test_random_walk_is_deterministic_whatever_the_access_order(steps: list[int]) -> None:
    cached = walk(seed=11)
    for step in steps:
        fresh = walk(seed=11).quote("EUR_USD", 1_000.0 + step)
        assert cached.quote("EUR_USD", 1_000.0 + step) == fresh


def test_bridge_value_matches_a_sequential_walk() -> None:
    feed = walk(volatility=0.001)
    sequential = [feed.quote("EUR_USD", 1_000.0 + k) for k in range(300)]
    for k in (0, 1, 2, 77, 128, 255, 299):
        assert walk(volatility=0.001).quote("EUR_USD", 1_000.0 + k) == sequential[k]
    assert brownian_value(7, "EUR_USD", 0) == 0.0


def test_random_walk_depends_on_seed_and_instrument() -> None:
    a = [walk(seed=1).quote("EUR_USD", 1_000.0 + k).bid for k in range(1, 40)]
    b = [walk(seed=2).quote("EUR_USD", 1_000.0 + k).bid for k in range(1, 40)]
    c = [walk(seed=1, X=EURUSD).quote("X", 1_000.0 + k).bid for k in range(1, 40)]
    assert a != b
    assert a != c


def test_random_walk_increments_have_unit_variance() -> None:
    values = [brownian_value(3, "AAPL", k) for k in range(0, 4000)]
    increments = [b - a for a, b in zip(values, values[1:], strict=False)]
    mean = sum(increments) / len(increments)
    variance = sum((x - mean) ** 2 for x in increments) / len(increments)
    assert abs(mean) < 0.1
    assert 0.9 < variance < 1.1


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2**40), st.integers(min_value=0, max_value=1000))
def test_random_walk_prices_are_on_tick_positive_and_bid_below_ask(step: int, seed: int) -> None:
    feed = walk(seed=seed, volatility=0.05, PENNY=PENNY, EUR_USD=EURUSD)
    for symbol, spec in (("PENNY", PENNY), ("EUR_USD", EURUSD)):
        q = feed.quote(symbol, 1_000.0 + step)
        assert 0 < q.bid < q.ask
        assert q.bid % spec.tick == 0 and q.ask % spec.tick == 0
        assert q.ask - q.bid == spec.spread


def test_random_walk_jumps_days_ahead_quickly() -> None:
    feed = walk()
    feed.quote("EUR_USD", 1_000.0)
    started = time.perf_counter()
    for day in range(1, 31):
        feed.quote("EUR_USD", 1_000.0 + day * 86_400)
    assert time.perf_counter() - started < 0.1  # 30 restarts' worth of catching up


def test_random_walk_restart_continues_the_same_path() -> None:
    first = walk(origin=5_000.0)
    seen = first.quote("EUR_USD", 5_000.0 + 86_400 * 3 + 17)
    second = walk(origin=5_000.0)  # a restart with the stored origin
    assert second.quote("EUR_USD", 5_000.0 + 86_400 * 3 + 17) == seen


def test_random_walk_unknown_symbol_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        walk().quote("NOPE", 1_000.0)


# ------------------------------------------------------------------ CSV


def test_parse_quote_rows_accepts_header_iso_and_epoch_times_and_sizes() -> None:
    rows = parse_quote_rows(
        [
            ["timestamp", "instrument", "bid", "ask", "bid_size", "ask_size"],
            ["2024-01-01T00:00:00Z", "EUR_USD", "1.1", "1.2", "5", "6"],
            ["2024-01-01T00:00:01", "EUR_USD", "1.1", "1.2", "5", "6"],
            ["1704067202.5", "EUR_USD", "1.1", "1.2", "5", "6"],
            [],
            ["# a comment"],
        ]
    )
    assert [r.timestamp for r in rows] == [1704067200.0, 1704067201.0, 1704067202.5]
    assert rows[0] == CsvRow(1704067200.0, "EUR_USD", Decimal("1.1"), Decimal("1.2"), Decimal(5), Decimal(6))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (["x", "EUR_USD", "1.1", "1.2"], "line 1: timestamp 'x'"),
        (["1", "EUR_USD", "abc", "1.2"], "line 1: bid 'abc' is not a number"),
        (["1", "EUR_USD", "1.3", "1.2"], "line 1: bid 1.3 is not below ask 1.2"),
        (["1", "EUR_USD", "1.1"], "line 1: expected timestamp,instrument,bid,ask"),
        (["1", "EUR_USD", "-1", "1.2"], "bid '-1' must be a positive number"),
    ],
)
def test_parse_quote_rows_names_the_bad_line(line: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_quote_rows([line], source="q.csv")


def test_read_quotes_csv_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text("timestamp,instrument,bid,ask\n10,AAA,1.00,1.02\n11,AAA,1.01,1.03\n")
    assert [r.bid for r in read_quotes_csv(path)] == [Decimal("1.00"), Decimal("1.01")]


def rows(*items: tuple[float, str, str, str]) -> list[CsvRow]:
    return [CsvRow(t, s, Decimal(b), Decimal(a)) for t, s, b, a in items]


REPLAY = rows((100, "A", "1.00", "1.02"), (101, "A", "1.01", "1.03"), (102, "B", "5.0", "5.1"), (103, "A", "1.04", "1.06"))


def test_csv_replay_maps_the_first_timestamp_to_the_origin() -> None:
    feed = CsvReplayFeed(REPLAY, origin=5_000.0, loop=False)
    assert feed.quote("A", 5_000.0).bid == Decimal("1.00")
    assert feed.quote("A", 5_000.9).bid == Decimal("1.00")
    assert feed.quote("A", 5_001.0).bid == Decimal("1.01")
    assert feed.quote("A", 5_002.5).bid == Decimal("1.01")
    q = feed.quote("A", 5_003.0)
    assert (q.bid, q.ask, q.at) == (Decimal("1.04"), Decimal("1.06"), 5_003.0)
    assert feed.quote("B", 5_000.0).bid == Decimal("5.0")  # before its first row: the first row
    assert feed.quote("A", 9_999.0).bid == Decimal("1.04")  # no loop: the last quote stays
    assert set(feed.symbols) == {"A", "B"}


def test_csv_replay_speed_and_loop() -> None:
    feed = CsvReplayFeed(REPLAY, origin=0.0, loop=True, speed=2.0)
    assert feed.quote("A", 0.5).bid == Decimal("1.01")  # replay second 1
    # One cycle is the 3-second file plus one average gap (1 s) = 4 replay seconds = 2 wall seconds.
    assert feed.quote("A", 2.0).bid == Decimal("1.00")
    assert feed.quote("A", 2.0).step != feed.quote("A", 0.0).step
    assert feed.quote("A", 2.0).at == 2.0
    assert feed.quote("A", 3.6).bid == Decimal("1.04")
    assert feed.poll_interval == 0.5


def test_csv_replay_puts_prices_on_the_tick() -> None:
    feed = CsvReplayFeed(rows((0, "A", "1.004", "1.006")), origin=0.0, ticks={"A": Decimal("0.01")})
    q = feed.quote("A", 0.0)
    assert (q.bid, q.ask) == (Decimal("1.00"), Decimal("1.01"))


def test_infer_tick_uses_the_finest_decimal() -> None:
    data = rows((0, "A", "1.5", "1.75"), (1, "A", "2", "3"), (0, "B", "100", "101"))
    assert infer_tick(data, "A") == Decimal("0.01")
    assert infer_tick(data, "B") == Decimal(1)


@pytest.mark.parametrize("x", [0.0, 1.0, -1.0, 2.3, 2.31, 5.0, -7.5, 1e6, -123456.789])
def test_reflect_folds_into_the_band(x: float) -> None:
    y = reflect(x, 2.0)
    assert -2.0 <= y <= 2.0
    if -2.0 <= x <= 2.0:
        assert y == x
    assert reflect(2.5, 2.0) == pytest.approx(1.5)
    assert reflect(-2.5, 2.0) == pytest.approx(-1.5)


def test_random_walk_stays_within_a_factor_of_ten() -> None:
    feed = walk(volatility=0.5)
    for k in range(0, 10**6, 997):
        q = feed.quote("EUR_USD", 1_000.0 + k)
        assert Decimal("0.108") <= q.bid and q.ask <= Decimal("10.86")
