"""Quote feeds for the paper broker: a seeded random walk and a CSV replay.

A feed is a function of time: ``quote(symbol, now)`` depends only on the
feed's parameters, its origin and ``now`` (caches only make it fast). Quotes
are numbered by step; the broker lets each step's size at the touch be taken
once.

The random walk is a Brownian motion sampled at integer steps and built by
dyadic Brownian-bridge refinement: the value at step ``k`` follows from
``LEVELS`` midpoint draws, each a hash of (seed, symbol, node). Any step is
thus reachable directly, in O(LEVELS), so a restart days later costs nothing
extra, and consecutive steps share all but the last few draws (amortised O(1)).
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple, Protocol

__all__ = [
    "CsvReplayFeed",
    "CsvRow",
    "Feed",
    "FeedQuote",
    "RandomWalkFeed",
    "WalkSpec",
    "brownian_value",
    "read_quotes_csv",
]

LEVELS = 32
"""Depth of the bridge: one block covers 2**32 steps (136 years at one step a second); later blocks chain on."""

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
# Irwin–Hall: the sum of four 16-bit uniforms, centred and scaled to unit variance.
_IH_MEAN = 4 * 65535 / 2
_IH_SCALE = 1 / math.sqrt(4 * (65536**2 - 1) / 12)
# Standard deviation of a bridge midpoint at depth d: the half-width sqrt(2**(LEVELS-d)) / 2.
_MID_STD = [math.sqrt(2 ** (LEVELS - d)) / 2 for d in range(LEVELS)]
_BLOCK_STD = math.sqrt(2**LEVELS)
BAND = math.log(10)
"""The walk's log-price is reflected into ±BAND around the start: prices stay within a factor of 10 of it."""


class FeedQuote(NamedTuple):
    """One quote step of one instrument."""

    step: int
    bid: Decimal
    ask: Decimal
    at: float
    """Wall-clock seconds at which this step began."""
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None


class Feed(Protocol):
    """What the broker needs from a feed."""

    @property
    def symbols(self) -> tuple[str, ...]: ...

    @property
    def poll_interval(self) -> float:
        """Seconds between quote steps (the least gap, for a replay)."""
        ...

    def quote(self, symbol: str, now: float) -> FeedQuote:
        """The quote in force at ``now``; KeyError for a symbol the feed has no quotes for."""
        ...


def _normal(key: int, node: int) -> float:
    """An approximately standard normal draw for ``node``: exact float arithmetic, so identical everywhere."""
    # splitmix64: the node-th output of the generator seeded with ``key``.
    x = (key + node * _GOLDEN) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    h = x ^ (x >> 31)
    total = (h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF) + (h >> 48)
    return (total - _IH_MEAN) * _IH_SCALE


def walk_key(seed: int, symbol: str) -> int:
    """The 64-bit key of one instrument's walk."""
    digest = hashlib.blake2b(f"{seed}\x00{symbol}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _block_start(key: int, block: int) -> float:
    # Block b's walk starts where block b−1 ended; node (b << 34) | 0 is block b's whole increment
    # (heap indices of bridge nodes start at 1). Chaining is O(blocks), and blocks are 2**32 steps long.
    value = 0.0
    for b in range(block):
        value += _BLOCK_STD * _normal(key, b << 34)
    return value


class _Bridge:
    """The walk of one instrument, W(0) = 0 and unit variance per step, with the last path cached."""

    __slots__ = ("block", "key", "offset", "stack")

    def __init__(self, key: int) -> None:
        self.key = key
        self.block = -1
        self.offset = 0
        # stack[d] = (W(lo), W(hi)) of the depth-d interval containing ``offset``.
        self.stack: list[tuple[float, float]] = []

    def value(self, step: int) -> float:
        block, offset = divmod(step, 1 << LEVELS)
        if block != self.block:
            start = _block_start(self.key, block)
            end = start + _BLOCK_STD * _normal(self.key, block << 34)
            self.block, self.stack, depth = block, [(start, end)], 0
        else:
            # Intervals above the highest bit where the two offsets differ are the same: keep them.
            depth = min(LEVELS - (offset ^ self.offset).bit_length(), len(self.stack) - 1)
            del self.stack[depth + 1 :]
        self.offset = offset
        stack, key, base = self.stack, self.key, block << 34
        lo, hi = stack[depth]
        for d in range(depth, LEVELS):
            shift = LEVELS - d - 1
            node = base | (1 << d) | (offset >> (shift + 1))
            mid = (lo + hi) * 0.5 + _MID_STD[d] * _normal(key, node)
            if (offset >> shift) & 1:
                lo = mid
            else:
                hi = mid
            stack.append((lo, hi))
        return lo


def reflect(x: float, band: float = BAND) -> float:
    """``x`` folded into [−band, band] by reflection at both edges (a reflected random walk)."""
    y = (x + band) % (4 * band)
    return (4 * band - y if y > 2 * band else y) - band


def brownian_value(seed: int, symbol: str, step: int) -> float:
    """W(step) of the instrument's walk, computed from scratch (what the cached feed must agree with)."""
    return _Bridge(walk_key(seed, symbol)).value(step)


@dataclass(frozen=True, slots=True)
class WalkSpec:
    """One instrument's random-walk parameters."""

    price: Decimal
    tick: Decimal
    spread: Decimal


class _WalkState:
    __slots__ = ("bridge", "last", "log_price", "spread_ticks", "tick", "tick_f")

    def __init__(self, seed: int, symbol: str, spec: WalkSpec) -> None:
        self.bridge = _Bridge(walk_key(seed, symbol))
        self.log_price = math.log(spec.price)
        self.tick = spec.tick
        self.tick_f = float(spec.tick)
        self.spread_ticks = max(1, int((spec.spread / spec.tick).to_integral_value()))
        self.last: FeedQuote | None = None


class RandomWalkFeed:
    """A geometric random walk per instrument: mid = price × exp(volatility × W(step)), W a Brownian motion.

    The exponent is reflected into ±ln 10 (see :func:`reflect`), so the mid stays
    within a factor of 10 of the starting price however long the broker runs.
    Bid and ask are on the tick, ``spread`` apart (at least one tick), centred on
    the mid and never below one tick.
    """

    def __init__(
        self,
        specs: Mapping[str, WalkSpec],
        *,
        seed: int,
        interval: float,
        volatility: float,
        origin: float,
        size: Decimal | None = None,
    ) -> None:
        self.seed = seed
        self.interval = interval
        self.volatility = volatility
        self.origin = origin
        self.size = size
        self._states = {symbol: _WalkState(seed, symbol, spec) for symbol, spec in specs.items()}

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._states)

    @property
    def poll_interval(self) -> float:
        return self.interval

    def step(self, now: float) -> int:
        """The step in force at ``now`` (0 before the origin)."""
        return max(0, int((now - self.origin) // self.interval))

    def quote(self, symbol: str, now: float) -> FeedQuote:
        state = self._states[symbol]
        step = max(0, int((now - self.origin) // self.interval))
        last = state.last
        if last is not None and last.step == step:
            return last
        mid = math.exp(state.log_price + reflect(self.volatility * state.bridge.value(step)))
        bid_ticks = max(1, math.floor(mid / state.tick_f - state.spread_ticks / 2 + 0.5))
        quote = FeedQuote(
            step,
            state.tick * bid_ticks,
            state.tick * (bid_ticks + state.spread_ticks),
            self.origin + step * self.interval,
            self.size,
            self.size,
        )
        state.last = quote
        return quote


class CsvRow(NamedTuple):
    """One line of a quotes file."""

    timestamp: float
    symbol: str
    bid: Decimal
    ask: Decimal
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None


def _parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _parse_amount(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{what} {text!r} must be a positive number")
    return value


def parse_quote_rows(lines: Iterable[Sequence[str]], source: str = "quotes") -> list[CsvRow]:
    """Rows of ``timestamp,instrument,bid,ask[,bid_size,ask_size]``; an optional header is skipped; ValueError names the line."""
    rows: list[CsvRow] = []
    for number, cells in enumerate(lines, start=1):
        cells = [c.strip() for c in cells]
        if not cells or all(not c for c in cells) or cells[0].startswith("#"):
            continue
        if number == 1 and cells[0].lower() == "timestamp":
            continue
        where = f"{source} line {number}"
        if len(cells) not in (4, 6):
            raise ValueError(f"{where}: expected timestamp,instrument,bid,ask[,bid_size,ask_size], got {len(cells)} columns")
        try:
            timestamp = _parse_time(cells[0])
        except ValueError:
            raise ValueError(f"{where}: timestamp {cells[0]!r} is neither ISO 8601 nor epoch seconds") from None
        try:
            bid, ask = _parse_amount(cells[2], "bid"), _parse_amount(cells[3], "ask")
            sizes = (_parse_amount(cells[4], "bid_size"), _parse_amount(cells[5], "ask_size")) if len(cells) == 6 else (None, None)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if bid >= ask:
            raise ValueError(f"{where}: bid {bid} is not below ask {ask}")
        if not cells[1]:
            raise ValueError(f"{where}: instrument is empty")
        rows.append(CsvRow(timestamp, cells[1], bid, ask, *sizes))
    if not rows:
        raise ValueError(f"{source}: no quotes")
    return rows


def read_quotes_csv(path: str | Path) -> list[CsvRow]:
    """Read and parse a quotes file (the feed's only I/O)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return parse_quote_rows(csv.reader(fh), source=str(path))


def _round_to(value: Decimal, tick: Decimal, rounding: str) -> Decimal:
    return (value / tick).to_integral_value(rounding=rounding) * tick


class _Series:
    __slots__ = ("quotes", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.quotes: list[CsvRow] = []


class CsvReplayFeed:
    """Replays quote rows: the first row's time is played at ``origin``, ``speed`` times as fast as the wall clock.

    An instrument's quote is its latest row at or before the replay time (its
    first row before that). Prices are put on the instrument's tick, bid down
    and ask up, when ``ticks`` gives one.
    """

    def __init__(
        self,
        rows: Sequence[CsvRow],
        *,
        origin: float,
        loop: bool = True,
        speed: float = 1.0,
        ticks: Mapping[str, Decimal] | None = None,
    ) -> None:
        ordered = sorted(rows, key=lambda r: r.timestamp)
        self.origin = origin
        self.loop = loop
        self.speed = speed
        self.start = ordered[0].timestamp
        stamps = sorted({r.timestamp for r in ordered})
        gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        self._min_gap = min(gaps) if gaps else 1.0
        # One cycle lasts the file plus one average row interval, so the last row is shown for a while too.
        span = stamps[-1] - stamps[0]
        self.period = span + (span / len(gaps) if gaps else 1.0)
        self._series: dict[str, _Series] = {}
        ticks = ticks or {}
        for row in ordered:
            series = self._series.setdefault(row.symbol, _Series())
            tick = ticks.get(row.symbol)
            if tick is not None:
                bid = _round_to(row.bid, tick, ROUND_FLOOR)
                ask = max(_round_to(row.ask, tick, ROUND_CEILING), bid + tick)
                row = row._replace(bid=bid, ask=ask)
            series.times.append(row.timestamp)
            series.quotes.append(row)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._series)

    @property
    def poll_interval(self) -> float:
        return self._min_gap / self.speed

    def quote(self, symbol: str, now: float) -> FeedQuote:
        series = self._series[symbol]
        elapsed = max(0.0, (now - self.origin) * self.speed)
        cycle = 0
        if self.loop:
            cycle_f, elapsed = divmod(elapsed, self.period)
            cycle = int(cycle_f)
        index = bisect.bisect_right(series.times, self.start + elapsed) - 1
        if index < 0:
            # Before the instrument's first row: the previous cycle's last row, or the first row on the first cycle.
            if cycle > 0:
                cycle, index = cycle - 1, len(series.quotes) - 1
            else:
                index = 0
        row = series.quotes[index]
        at = self.origin + (row.timestamp - self.start + cycle * self.period) / self.speed
        return FeedQuote(cycle * len(series.quotes) + index, row.bid, row.ask, at, row.bid_size, row.ask_size)


def infer_tick(rows: Iterable[CsvRow], symbol: str) -> Decimal:
    """The finest decimal step among an instrument's prices in a file (its tick when none is configured)."""
    places = 0
    for row in rows:
        if row.symbol == symbol:
            for price in (row.bid, row.ask):
                exponent = price.normalize().as_tuple().exponent
                if isinstance(exponent, int):
                    places = max(places, -exponent)
    return Decimal(1).scaleb(-places)
