"""The paper broker's options: the ``[brokers.NAME]`` table of a ``type = "paper"`` broker.

Every key is optional; with none the broker trades the built-in instruments
(:data:`DEFAULT_INSTRUMENTS`) from a seeded random walk, with a 100,000 USD
account, no commission, no slippage and no latency::

    [brokers.paper]
    type = "paper"
    currency = "USD"                 # account currency
    starting_balance = "100000"
    leverage = "1"                   # gross exposure may reach equity × leverage
    latency = 0.0                    # seconds each call waits; 0 = atomic with the router's journal
    liquidity = "1000000"            # units at the touch per quote step and side, shared by all orders
    commission = { per_unit = "0", percent = "0", minimum = "0" }   # account currency; percent of notional
    slippage = { model = "none" }
    # slippage = { model = "fixed", value = "0.0001" }              # price units against the taker
    # slippage = { model = "percent", value = "0.01" }              # 0.01 % of the touch
    # slippage = { model = "impact", value = "0.1", exponent = "1" } # value × (qty / liquidity)^exponent × touch
    feed = { kind = "random_walk", seed = 7, interval = 1.0, volatility = 0.0001 }
    # feed = { kind = "csv", path = "quotes.csv", loop = true, speed = 1.0 }
    # default_instruments = true     # false: trade only the instruments below
    # [brokers.paper.instruments]
    # XYZ = { price = "10", tick = "0.01", lot = "1", min = "1", spread = "0.02", currency = "USD", kind = "stock" }
    # EUR_USD = { spread = "0.00005" }   # override part of a built-in instrument

Decimal-valued keys accept TOML strings (exact), integers and floats (read
through ``str()``, so ``0.1`` is 0.1). Slippage applies to MARKET orders and
triggered STOP orders, never to limit prices. A CSV ``path`` is used as given:
the router resolves a relative one against the directory of supervisor.toml,
the adapter (run on its own) against the current working directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from brokers.base import AdapterOptions, ConfigDecimal
from host.trading.model import INSTRUMENT_PATTERN, Instrument

__all__ = [
    "DEFAULT_INSTRUMENTS",
    "CommissionOptions",
    "CsvFeedOptions",
    "FeedOptions",
    "FixedSlippage",
    "ImpactSlippage",
    "InstrumentOptions",
    "InstrumentSpec",
    "NoSlippage",
    "PaperOptions",
    "PercentSlippage",
    "RandomWalkFeedOptions",
    "SlippageOptions",
    "conversion_pair",
    "merge_spec",
]


Dec = ConfigDecimal
NonNegative = Annotated[Dec, Field(ge=0)]
Positive = Annotated[Dec, Field(gt=0)]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class CommissionOptions(BaseModel):
    """Commission charged on every fill, in the account currency: ``max(minimum, per_unit × qty + percent % of notional)``."""

    model_config = _STRICT

    per_unit: NonNegative = Decimal(0)
    """Charged per unit traded (per share, per coin, per unit of base currency)."""
    percent: NonNegative = Decimal(0)
    """Percent of the fill's notional (``0.1`` = 0.1 %), converted to the account currency."""
    minimum: NonNegative = Decimal(0)
    """Least charged per fill; 0 disables it."""


class NoSlippage(BaseModel):
    """Market orders fill exactly at the touch."""

    model_config = _STRICT
    model: Literal["none"] = "none"


class FixedSlippage(BaseModel):
    """Market orders fill ``value`` price units worse than the touch (rounded to the tick)."""

    model_config = _STRICT
    model: Literal["fixed"]
    value: NonNegative


class PercentSlippage(BaseModel):
    """Market orders fill ``value`` percent of the touch worse than it (``0.01`` = 0.01 %; rounded to the tick)."""

    model_config = _STRICT
    model: Literal["percent"]
    value: NonNegative


class ImpactSlippage(BaseModel):
    """Size-dependent: ``value × (quantity / liquidity) ** exponent × touch`` worse than the touch.

    ``quantity`` is the fill's quantity and ``liquidity`` the size available at the
    touch in that quote step (the ``liquidity`` option or the CSV's size column);
    ``exponent = 0.5`` gives the usual square-root impact law.
    """

    model_config = _STRICT
    model: Literal["impact"]
    value: NonNegative
    exponent: Positive = Decimal(1)


SlippageOptions = Annotated[NoSlippage | FixedSlippage | PercentSlippage | ImpactSlippage, Field(discriminator="model")]


class RandomWalkFeedOptions(BaseModel):
    """A deterministic geometric random walk per instrument, starting at the instrument's ``price``.

    Step ``n = floor((now − origin) / interval)``; the origin is stored the first
    time the broker starts, so a restart continues the same path. The same seed,
    instrument and step always give the same bid and ask.
    """

    model_config = _STRICT
    kind: Literal["random_walk"] = "random_walk"
    seed: int = 7
    interval: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    """Seconds per quote step."""
    volatility: float = Field(default=0.0001, ge=0, lt=1, allow_inf_nan=False)
    """Standard deviation of the log-price change per step (0.0001 = 1 basis point)."""


class CsvFeedOptions(BaseModel):
    """Replay quotes from a CSV file: ``timestamp,instrument,bid,ask[,bid_size,ask_size]``.

    ``timestamp`` is ISO 8601 (UTC when it has no offset) or epoch seconds; a
    header row is optional. The file's first timestamp is played at the feed
    origin (stored the first time the broker starts) and time runs ``speed``
    times as fast as the wall clock. With ``loop`` the file starts over one
    average row interval after its last row; without it the last quotes stay.
    ``path`` is used as given: the router resolves a relative path against the
    directory of supervisor.toml; the adapter itself resolves one against the
    current working directory. The instruments traded are the file's symbols.
    """

    model_config = _STRICT
    kind: Literal["csv"]
    path: str = Field(min_length=1)
    loop: bool = True
    speed: float = Field(default=1.0, gt=0, allow_inf_nan=False)


FeedOptions = Annotated[RandomWalkFeedOptions | CsvFeedOptions, Field(discriminator="kind")]


class InstrumentOptions(BaseModel):
    """One instrument, new or overriding part of a built-in one; omitted keys keep the built-in value.

    A new instrument needs ``price`` with the random-walk feed; its other keys
    default to tick 0.01, lot 1, min = lot, spread = 2 ticks, the account
    currency and kind "stock".
    """

    model_config = _STRICT

    price: Positive | None = None
    """Starting price of the random walk (ignored by the CSV feed)."""
    tick: Positive | None = None
    lot: Positive | None = None
    min: Positive | None = None
    spread: Positive | None = None
    """Ask − bid of the random walk, in price units (at least one tick)."""
    currency: str | None = Field(default=None, pattern=r"^[A-Z0-9]{2,10}$")
    kind: str | None = Field(default=None, min_length=1, max_length=32)


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """An instrument's rules and random-walk parameters, resolved from defaults and options."""

    symbol: str
    price: Decimal
    tick: Decimal
    lot: Decimal
    min: Decimal
    spread: Decimal
    currency: str
    kind: str

    def to_instrument(self) -> Instrument:
        return Instrument(
            symbol=self.symbol,
            price_increment=self.tick,
            quantity_increment=self.lot,
            min_quantity=self.min,
            currency=self.currency,
            kind=self.kind,
        )


def _spec(symbol: str, price: str, tick: str, lot: str, min_: str, spread: str, currency: str, kind: str) -> InstrumentSpec:
    return InstrumentSpec(symbol, Decimal(price), Decimal(tick), Decimal(lot), Decimal(min_), Decimal(spread), currency, kind)


DEFAULT_INSTRUMENTS: dict[str, InstrumentSpec] = {
    s.symbol: s
    for s in (
        _spec("EUR_USD", "1.08500", "0.00001", "1", "1", "0.00008", "USD", "fx"),
        _spec("GBP_USD", "1.27000", "0.00001", "1", "1", "0.00012", "USD", "fx"),
        _spec("USD_JPY", "150.000", "0.001", "1", "1", "0.012", "JPY", "fx"),
        _spec("AUD_USD", "0.65500", "0.00001", "1", "1", "0.00010", "USD", "fx"),
        _spec("BTC-USD", "60000.00", "0.01", "0.00000001", "0.00001", "5.00", "USD", "crypto"),
        _spec("ETH-USD", "3000.00", "0.01", "0.00000001", "0.00001", "0.50", "USD", "crypto"),
        _spec("AAPL", "190.00", "0.01", "1", "1", "0.02", "USD", "stock"),
        _spec("MSFT", "420.00", "0.01", "1", "1", "0.02", "USD", "stock"),
        _spec("SPY", "500.00", "0.01", "1", "1", "0.01", "USD", "stock"),
    )
}
"""The instruments a paper broker trades with no configuration (fx, crypto, US stocks)."""


class PaperOptions(AdapterOptions):
    """The paper broker's options; see the module docstring for a commented example."""

    currency: str = Field(default="USD", pattern=r"^[A-Z0-9]{2,10}$")
    """Account currency; P&L of an instrument quoted in another currency is converted
    at the mid of a traded pair linking the two (e.g. JPY through USD_JPY)."""
    starting_balance: NonNegative = Decimal(100000)
    """Cash the account starts with. Changing it later moves the balance by the difference
    (realised P&L and commissions are kept in the state database)."""
    leverage: Positive = Decimal(1)
    """An order that increases a position is rejected (INSUFFICIENT_FUNDS) if the account's
    gross exposure would exceed equity × leverage; reducing orders are always allowed."""
    latency: float = Field(default=0.0, ge=0, le=60, allow_inf_nan=False)
    """Seconds every broker call waits before it acts. 0 makes the broker atomic: the router
    applies its answers in the same transaction as its journal."""
    liquidity: Positive = Decimal(1_000_000)
    """Units available at the touch per quote step and side, shared by all orders; a bigger
    order fills partially and continues on the following steps."""
    commission: CommissionOptions = CommissionOptions()
    slippage: SlippageOptions = NoSlippage()
    feed: FeedOptions = RandomWalkFeedOptions()
    instruments: dict[str, InstrumentOptions] = Field(default_factory=dict)
    """Extra instruments, or overrides of built-in ones, by symbol."""
    default_instruments: bool = True
    """Trade the built-in instruments too; false keeps only those under ``instruments``."""

    @field_validator("instruments")
    @classmethod
    def _symbols_valid(cls, value: dict[str, InstrumentOptions]) -> dict[str, InstrumentOptions]:
        import re

        pattern = re.compile(INSTRUMENT_PATTERN)
        for symbol in value:
            if not pattern.match(symbol):
                raise ValueError(f"instrument symbol {symbol!r} is not valid (letters, digits and _ . / : - only)")
        return value

    @model_validator(mode="after")
    def _new_instruments_have_prices(self) -> PaperOptions:
        if isinstance(self.feed, RandomWalkFeedOptions):
            known = DEFAULT_INSTRUMENTS if self.default_instruments else {}
            for symbol, opts in self.instruments.items():
                if symbol not in known and opts.price is None:
                    raise ValueError(f"instrument {symbol} needs a price (the random walk's starting price)")
        return self

    def instrument_specs(self) -> dict[str, InstrumentSpec]:
        """Every configured instrument: the built-in ones (unless disabled) with the overrides applied."""
        specs = dict(DEFAULT_INSTRUMENTS) if self.default_instruments else {}
        for symbol, opts in self.instruments.items():
            specs[symbol] = merge_spec(symbol, specs.get(symbol), opts, self.currency)
        return specs


def merge_spec(symbol: str, base: InstrumentSpec | None, opts: InstrumentOptions, currency: str) -> InstrumentSpec:
    """Apply ``opts`` over ``base`` (or over the defaults of a new instrument)."""
    tick = opts.tick if opts.tick is not None else base.tick if base else Decimal("0.01")
    lot = opts.lot if opts.lot is not None else base.lot if base else Decimal(1)
    return InstrumentSpec(
        symbol=symbol,
        price=opts.price if opts.price is not None else base.price if base else Decimal(1),
        tick=tick,
        lot=lot,
        min=opts.min if opts.min is not None else base.min if base else lot,
        spread=opts.spread if opts.spread is not None else base.spread if base else 2 * tick,
        currency=opts.currency or (base.currency if base else currency),
        kind=opts.kind or (base.kind if base else "stock"),
    )


def conversion_pair(currency: str, account: str, specs: dict[str, InstrumentSpec]) -> tuple[str, bool] | None:
    """An instrument quoting ``currency`` against ``account``: (its symbol, True if its mid must be inverted); None if none is traded."""
    for sep in ("_", "/", "-", ""):
        if f"{currency}{sep}{account}" in specs:
            return f"{currency}{sep}{account}", False
        if f"{account}{sep}{currency}" in specs:
            return f"{account}{sep}{currency}", True
    return None
