"""Options shared by every adapter that talks to a real broker over the network.

A ``[brokers.NAME]`` table of a remote broker names its environment (the
broker's practice, sandbox, testnet or paper account, or ``live``) and may
point the adapter at another server (a local test server, a proxy)::

    [brokers.fx]
    type = "oanda"
    environment = "practice"        # or "live", which also needs allow_live = true
    account_id = "101-004-1234567-001"
    # base_url = "http://127.0.0.1:8080"
    # stream_url = "http://127.0.0.1:8081"
    # timeout = 10.0
    # rate_limit = 50                # requests per second, below the broker's documented limit

Credentials never appear here: ``tradehost credentials set NAME FIELD`` stores
them encrypted in the state database.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, ValidationInfo, field_validator

from .base import AdapterOptions

__all__ = ["LIVE", "RemoteOptions"]

LIVE = "live"


class RemoteOptions(AdapterOptions):
    """Environment, endpoint overrides, timeout and rate limit of a network broker."""

    ENVIRONMENTS: ClassVar[tuple[str, ...]] = ("practice", LIVE)
    """The environment names this broker knows; subclasses narrow them."""

    environment: str = Field(default="", validate_default=True)
    """One of ENVIRONMENTS; empty means the first (the broker's practice account)."""
    allow_live: bool = Field(default=False, validate_default=True)
    """Trading real money needs this explicitly, besides environment = "live"."""
    base_url: str | None = None
    stream_url: str | None = None
    timeout: float = Field(default=10.0, gt=0, le=300)
    """Seconds one request may take before its outcome counts as unknown."""
    rate_limit: float | None = Field(default=None, gt=0)
    """Requests per second; None keeps the broker's documented limit."""

    @field_validator("environment")
    @classmethod
    def _known_environment(cls, value: str) -> str:
        if not value:
            return cls.ENVIRONMENTS[0]
        if value not in cls.ENVIRONMENTS:
            raise ValueError(f"must be one of {', '.join(map(repr, cls.ENVIRONMENTS))}, not {value!r}")
        return value

    @field_validator("allow_live")
    @classmethod
    def _live_is_explicit(cls, value: bool, info: ValidationInfo) -> bool:
        if info.data.get("environment") == LIVE and not value:
            raise ValueError('environment = "live" trades real money: set allow_live = true as well')
        return value

    @field_validator("base_url", "stream_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, not {value!r}")
        return value.rstrip("/") if value else value

    @property
    def live(self) -> bool:
        return self.environment == LIVE
