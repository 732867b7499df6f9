"""The router's part of supervisor.toml: ``[router]``, ``[risk]`` and ``[brokers.NAME]``.

::

    [router]
    default_broker = "paper"          # where an order goes when neither it nor its strategy names a broker
    request_timeout = 10              # seconds a strategy waits for an answer before CONNECTION_ERROR
    lookup_delays = [0.5, 2, 5, 15]   # lookups of an order whose outcome is unknown, before "never received"
    price_retry_seconds = 30          # pricing positions left unpriced at start is retried after 5, 15, then every this
    max_requests_per_second = 5000    # per strategy; more are answered RATE_LIMITED, unhandled
    audited_refusals_per_second = 20  # per strategy: refusals audited a row each; more are audited as a count

    [brokers.paper]                   # the default when no [brokers.*] table exists
    type = "paper"
    starting_balance = 100000

Each ``[brokers.NAME]`` table is validated by its adapter type's options
model, so a misspelt option fails at start with its key named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from host.settings import whole_to_float

__all__ = ["DEFAULT_BROKERS", "BrokerEntry", "RouterConfig"]

DEFAULT_BROKERS: dict[str, dict[str, Any]] = {"paper": {"type": "paper"}}


class RouterConfig(BaseModel):
    """The ``[router]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    """Whether ``tradehost run`` starts and supervises the router."""
    endpoint: str | None = None
    """Where strategies reach the router; default ``ipc://STATE_DIR/router.sock``. A ``tcp://`` endpoint serves a host on another machine."""
    key_file: Path | None = None
    """For a router that ``tradehost run`` does not start: the file holding the run-token key both sides share."""
    default_broker: str = "paper"
    request_timeout: float = Field(default=10.0, gt=0, le=600)
    idempotency_hours: float = Field(default=48.0, gt=0)
    """How long a request id is remembered: a repeat within it returns the first order."""
    batch_max: int = Field(default=1024, ge=1, le=100_000)
    """The most messages handled before one commit."""
    restart_delay_max: float = Field(default=10.0, gt=0)
    """The longest pause before the supervisor restarts a router that died."""
    lookup_delays: tuple[float, ...] = Field(default=(0.5, 2.0, 5.0, 15.0), min_length=1, max_length=20)
    """Seconds before each lookup of an order whose outcome is unknown (a timeout, a dropped connection). An
    order the broker still does not know after the last lookup is REJECTED as never received; it is never re-sent."""
    price_retry_seconds: float = Field(default=30.0, gt=0, le=3600)
    """The longest pause between retries of pricing the positions a broker could not quote at start (the first
    two come after 5 and 15 s, or this if shorter); they stop once every position is priced (see .pricing)."""

    max_requests_per_second: float = Field(default=5000.0, gt=0, le=10_000_000)
    """Requests one strategy (all its runs and connections), or all unauthenticated senders together, may send a
    second. More are answered RATE_LIMITED, unhandled, with the seconds to wait (see .admission)."""
    request_burst: float | None = Field(default=None, ge=1, le=10_000_000)
    """How many requests a strategy may send at once, above that rate; default twice the rate (at least 1)."""
    audited_refusals_per_second: float = Field(default=20.0, gt=0, le=1_000_000)
    """Refusals per strategy (malformed, unauthorized, failed or unhandled requests) audited in a row each, in
    bursts of up to five times this. The rest are answered all the same and audited as a count: one
    request.suppressed row per strategy (or shared class) and second."""

    @property
    def request_bucket(self) -> tuple[float, float]:
        """(rate, burst) of each connection's requests."""
        return self.max_requests_per_second, self.request_burst or max(1.0, 2 * self.max_requests_per_second)

    @property
    def refusal_bucket(self) -> tuple[float, float]:
        """(rate, burst) of each connection's refusals audited a row each."""
        return self.audited_refusals_per_second, max(1.0, 5 * self.audited_refusals_per_second)

    @field_validator(
        "request_timeout", "idempotency_hours", "restart_delay_max", "price_retry_seconds", "max_requests_per_second", "request_burst",
        "audited_refusals_per_second", mode="before",
    )
    @classmethod
    def _number(cls, value: Any) -> Any:
        return whole_to_float(value)

    @field_validator("lookup_delays")
    @classmethod
    def _delays(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 <= d <= 3600 for d in value):
            raise ValueError("each delay is 0 to 3600 seconds")
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("ipc://", "tcp://")):
            raise ValueError(f"expected an ipc:// or tcp:// endpoint, got {value!r}")
        return value

    @field_validator("key_file", mode="before")
    @classmethod
    def _path(cls, value: Any) -> Any:
        if isinstance(value, str):
            return Path(value).expanduser()
        return value


class BrokerEntry(BaseModel):
    """One ``[brokers.NAME]`` table: the adapter type and its validated options."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    type: str
    options: Any
