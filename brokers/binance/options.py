"""The ``[brokers.NAME]`` table of a ``type = "binance"`` broker (Binance spot)::

    [brokers.bn]
    type = "binance"
    environment = "testnet"          # spot testnet (testnet.binance.vision); "live" also needs allow_live = true
    currency = "USDT"                # cash for account(); holdings are reported as positions against it
    # poll_interval = 2.0            # seconds between checks of working orders
    # rate_limit = 100               # request weight per second (Binance allows 6000 a minute)
    # timeout = 10.0
    # base_url = "http://127.0.0.1:8080"   # another server speaking Binance's REST API

Credentials: ``tradehost credentials set NAME api_key`` and ``… api_secret`` (an
HMAC key pair; an Ed25519 or RSA private key in PEM also works as the secret).
Instruments are ccxt's unified spot symbols, ``BTC/USDT``.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from brokers.ccxt.options import CURRENCY_PATTERN, CcxtOptions
from brokers.remote import LIVE

__all__ = ["BinanceOptions"]


class BinanceOptions(CcxtOptions):
    """Binance spot: the testnet by default."""

    ENVIRONMENTS: ClassVar[tuple[str, ...]] = ("testnet", LIVE)
    currency: str = Field(default="USDT", pattern=CURRENCY_PATTERN)
    """The account currency; ``rate_limit`` here counts request weight per second (default 100 = 6000 a minute)."""
