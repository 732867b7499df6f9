"""The Interactive Brokers options: the ``[brokers.NAME]`` table of a ``type = "ibkr"`` broker.

The adapter talks to a running Trader Workstation (TWS) or IB Gateway over
the TWS API socket; that program holds the login, so the broker needs no
credentials in tradehost. IB has no cheap "every instrument" call: the
table declares the instruments the router may trade, and the adapter asks
TWS for each one's contract details (id, tick, size rules) when it connects::

    [brokers.ib]
    type = "ibkr"
    environment = "paper"            # or "live" (with allow_live = true)
    host = "127.0.0.1"
    # port = 7497                    # default: TWS 7497 paper / 7496 live; IB Gateway 4002 / 4001
    gateway = false                  # true: the IB Gateway default ports
    client_id = 17                   # this router owns the client id; no other program may use it
    # account = "DU1234567"          # needed when the login manages several accounts
    connect_timeout = 10.0
    timeout = 10.0                   # seconds TWS may take to acknowledge an order or answer a request
    market_data = "live"             # or "delayed", "frozen", "delayed_frozen"
    quotes = "stream"                # or "snapshot" (one request per quote)
    # rate_limit = 45                # messages per second to TWS (IB allows 50)

    [brokers.ib.instruments]
    EUR_USD = { kind = "forex" }                                    # EUR.USD on IDEALPRO
    AAPL = { kind = "stock", exchange = "SMART", currency = "USD", primary_exchange = "NASDAQ" }
    BTC_USD = { kind = "crypto", exchange = "PAXOS" }              # BTC in USD

``base_url`` and ``stream_url`` do not apply: TWS is reached at ``host:port``.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from brokers.base import ConfigDecimal
from brokers.remote import LIVE, RemoteOptions
from host.trading.model import INSTRUMENT_PATTERN

__all__ = [
    "DEFAULT_EXCHANGES",
    "DEFAULT_RATE",
    "MARKET_DATA_TYPES",
    "IbkrInstrument",
    "IbkrOptions",
    "default_port",
]

DEFAULT_RATE = 45.0
"""Messages per second: IB disconnects clients that send more than 50; 45 plus a small burst stays below."""

DEFAULT_PORTS = {("tws", "paper"): 7497, ("tws", LIVE): 7496, ("gateway", "paper"): 4002, ("gateway", LIVE): 4001}
DEFAULT_EXCHANGES = {"forex": "IDEALPRO", "stock": "SMART", "crypto": "PAXOS"}
MARKET_DATA_TYPES = {"live": 1, "frozen": 2, "delayed": 3, "delayed_frozen": 4}
"""``reqMarketDataType`` codes."""

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_PAIR_SEPARATORS = re.compile(r"[_/.\-]")


Positive = Annotated[ConfigDecimal, Field(gt=0)]


def default_port(environment: str, gateway: bool) -> int:
    """The port TWS or IB Gateway listens on by default for ``environment``."""
    return DEFAULT_PORTS[("gateway" if gateway else "tws", environment)]


def split_pair(name: str) -> tuple[str, str] | None:
    """``EUR_USD``, ``EUR/USD``, ``EUR.USD`` or ``EURUSD`` → ("EUR", "USD"); None if it is no currency pair."""
    parts = _PAIR_SEPARATORS.split(name.upper())
    if len(parts) == 1 and len(name) == 6:
        parts = [name[:3].upper(), name[3:].upper()]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    return None


class IbkrInstrument(BaseModel):
    """One tradable instrument: what IB calls it, and optional overrides of its trading rules.

    ``symbol`` and ``currency`` default from the name: a forex or crypto name is
    a pair (``EUR_USD`` → EUR in USD, ``BTC_USD`` → BTC in USD); a stock's
    symbol is its name and its currency USD. ``tick``, ``lot`` and ``min``
    replace what TWS's contract details say (they are used as they are when
    TWS cannot be asked).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["forex", "stock", "crypto"]
    symbol: str | None = Field(default=None, min_length=1, max_length=32)
    """IB's symbol (the base currency of a pair); default from the name."""
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    exchange: str | None = Field(default=None, min_length=1, max_length=32)
    """Default: IDEALPRO (forex), SMART (stock), PAXOS (crypto)."""
    primary_exchange: str | None = Field(default=None, min_length=1, max_length=32)
    """A stock's listing exchange, which tells apart symbols listed in several places."""
    con_id: int | None = Field(default=None, gt=0)
    """IB's contract id, if you want to pin it."""
    tick: Positive | None = None
    lot: Positive | None = None
    min: Positive | None = None


class IbkrOptions(RemoteOptions):
    """Where TWS / IB Gateway listens, the client id and account, and the instruments; see the module docstring."""

    ENVIRONMENTS: ClassVar[tuple[str, ...]] = ("paper", LIVE)

    host: str = Field(default="127.0.0.1", min_length=1)
    gateway: bool = False
    """True: the default port is IB Gateway's (4002 paper, 4001 live) rather than TWS's (7497, 7496)."""
    port: int = Field(default=0, ge=0, le=65535, validate_default=True)
    """0 or absent: the default port of TWS or IB Gateway for the environment."""
    client_id: int = Field(default=1, ge=0, le=2**31 - 1)
    account: str | None = Field(default=None, min_length=1, max_length=32)
    connect_timeout: float = Field(default=10.0, gt=0, le=300)
    market_data: Literal["live", "frozen", "delayed", "delayed_frozen"] = "live"
    quotes: Literal["stream", "snapshot"] = "stream"
    outside_rth: bool = False
    """Let stock orders work outside regular trading hours."""
    reconnect_max_delay: float = Field(default=30.0, gt=0, le=3600)
    """Longest wait between two reconnection attempts (the waits double up to it)."""
    link_grace: float = Field(default=60.0, gt=0, le=3600)
    """Seconds to wait after TWS reports lost connectivity to IB (1100) before reconnecting the socket."""
    commission_wait: float = Field(default=0.5, ge=0, le=10)
    """Seconds a fill may wait for its commission report before it is reported without one."""
    instruments: dict[str, IbkrInstrument] = Field(default_factory=dict)

    @field_validator("base_url", "stream_url")
    @classmethod
    def _no_urls(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("does not apply to ibkr: TWS / IB Gateway is reached at host and port")
        return value

    @field_validator("instruments")
    @classmethod
    def _instruments_valid(cls, value: dict[str, IbkrInstrument]) -> dict[str, IbkrInstrument]:
        pattern = re.compile(INSTRUMENT_PATTERN)
        for name, spec in value.items():
            if not pattern.match(name):
                raise ValueError(f"instrument name {name!r} is not valid (letters, digits and _ . / : - only)")
            if spec.kind != "stock" and (spec.symbol is None or spec.currency is None):
                pair = split_pair(name)
                if pair is None or not all(_CURRENCY.match(p) or spec.kind == "crypto" for p in pair):
                    raise ValueError(f"instrument {name}: name it as a pair like EUR_USD, or give symbol and currency")
        return value

    @field_validator("port")
    @classmethod
    def _default_port(cls, value: int, info: ValidationInfo) -> int:
        environment = info.data.get("environment")
        if value or environment not in cls.ENVIRONMENTS:
            return value
        return default_port(environment, bool(info.data.get("gateway")))

    @property
    def rate(self) -> float:
        """Messages per second to TWS."""
        return self.rate_limit if self.rate_limit is not None else DEFAULT_RATE
