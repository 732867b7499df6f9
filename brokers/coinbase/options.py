"""The ``[brokers.NAME]`` table of a ``type = "coinbase"`` broker (Coinbase Advanced Trade, spot)::

    [brokers.cb]
    type = "coinbase"
    environment = "live"             # real money: needs allow_live = true
    allow_live = true
    currency = "USD"                 # cash for account(); holdings are reported as positions against it
    # poll_interval = 2.0            # seconds between checks of working orders
    # rate_limit = 30                # requests per second (Coinbase allows 30 private, 10 public)
    # timeout = 10.0

    [brokers.cb_test]
    type = "coinbase"
    environment = "sandbox"
    base_url = "http://127.0.0.1:8080"   # required: a server speaking the Advanced Trade REST API

Coinbase has no trading sandbox for Advanced Trade: its static sandbox
(``api-sandbox.coinbase.com``) answers every call with the same canned response,
so orders could not be followed by client order id there. ``sandbox`` therefore
means "whatever server ``base_url`` names" and cannot be used without one; the
default environment is ``sandbox`` so that no configuration trades real money by
accident, and ``live`` needs ``allow_live = true`` like every live broker.

Credentials: ``tradehost credentials set NAME api_key`` (the CDP key name,
``organizations/{org}/apiKeys/{id}``, or an Ed25519 key's id) and ``… api_secret``
(the EC private key in PEM, or the base64 Ed25519 key). Instruments are ccxt's
unified spot symbols, ``BTC/USD``.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import model_validator

from brokers.ccxt.options import CcxtOptions
from brokers.remote import LIVE

__all__ = ["CoinbaseOptions", "SANDBOX"]

SANDBOX = "sandbox"


class CoinbaseOptions(CcxtOptions):
    """Coinbase Advanced Trade: ``live``, or ``sandbox`` at the server ``base_url`` names."""

    ENVIRONMENTS: ClassVar[tuple[str, ...]] = (SANDBOX, LIVE)

    @model_validator(mode="after")
    def _sandbox_needs_a_server(self) -> CoinbaseOptions:
        if self.environment == SANDBOX and not self.base_url:
            raise ValueError('environment = "sandbox" needs base_url: Coinbase has no trading sandbox for Advanced Trade')
        return self
