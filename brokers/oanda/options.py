"""The OANDA adapter's options: the ``[brokers.NAME]`` table of a ``type = "oanda"`` broker.

::

    [brokers.fx]
    type = "oanda"
    environment = "practice"             # or "live" (with allow_live = true)
    account_id = "101-004-1234567-001"
    stream_instruments = ["EUR_USD"]     # priced from the start; others join when first quoted
    # stream_prices = true               # keep a pricing stream open for quote()
    # stream_transactions = true         # follow fills, cancels and expiries of resting orders
    # stream_timeout = 15.0              # seconds without a line (heartbeats come every 5 s) = dead stream
    # reconnect_delay = 0.5              # first wait before reconnecting a stream; doubles up to 30 s
    # base_url / stream_url / timeout / rate_limit: see brokers.remote

The token is a credential: ``tradehost credentials set NAME token``.
"""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field, field_validator

from brokers.remote import LIVE, RemoteOptions
from host.trading.model import INSTRUMENT_PATTERN

__all__ = ["DOCUMENTED_RATE", "REST_HOSTS", "STREAM_HOSTS", "OandaOptions"]

REST_HOSTS: dict[str, str] = {
    "practice": "https://api-fxpractice.oanda.com",
    LIVE: "https://api-fxtrade.oanda.com",
}
STREAM_HOSTS: dict[str, str] = {
    "practice": "https://stream-fxpractice.oanda.com",
    LIVE: "https://stream-fxtrade.oanda.com",
}
_INSTRUMENT = re.compile(INSTRUMENT_PATTERN)
DOCUMENTED_RATE = 100.0
"""Requests per second OANDA allows on one persistent connection."""


class OandaOptions(RemoteOptions):
    """An OANDA v20 account: environment, account id, streams; see the module docstring."""

    ENVIRONMENTS: ClassVar[tuple[str, ...]] = ("practice", LIVE)

    account_id: str = Field(pattern=r"^\d{1,6}-\d{1,6}-\d{1,12}-\d{1,6}$")
    """The v20 account, ``site-division-user-number`` (e.g. 101-004-1234567-001)."""
    stream_instruments: tuple[str, ...] = ()
    """Instruments whose prices are streamed from the start."""
    stream_prices: bool = True
    """Keep a pricing stream open; quote() answers from it and subscribes instruments it is asked about."""
    stream_transactions: bool = True
    """Follow the account's transaction stream so fills of resting orders are reported at once."""
    stream_timeout: float = Field(default=15.0, gt=0, le=300)
    reconnect_delay: float = Field(default=0.5, gt=0, le=60)

    @field_validator("stream_instruments")
    @classmethod
    def _instrument_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for symbol in value:
            if not _INSTRUMENT.match(symbol):
                raise ValueError(f"{symbol!r} is not an instrument name")
        return value

    @property
    def rest_url(self) -> str:
        """Where REST requests go: ``base_url`` or the environment's host."""
        return self.base_url or REST_HOSTS[self.environment]

    @property
    def stream_host(self) -> str:
        """Where the streams connect: ``stream_url`` or the environment's stream host."""
        return self.stream_url or STREAM_HOSTS[self.environment]

    @property
    def requests_per_second(self) -> float:
        return self.rate_limit or DOCUMENTED_RATE
