"""The broker adapter interface: what the router asks of every broker.

An adapter translates between the unified order model (:mod:`host.trading.model`)
and one broker's API. It raises :class:`~host.trading.errors.TradingError`
subclasses for answers it understands and :class:`OutcomeUnknown` when it
cannot tell whether the broker took an order (a timeout, a dropped
connection, a 5xx): the router then looks the order up by client order id and
never sends it again.

Everything broker-side happens in the router process; strategies never load
an adapter and never see its credentials.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from host.trading.model import Account, ErrorInfo, Fill, Instrument, Order, OrderChanges, OrderRequest, OrderType, Position, Quote, TimeInForce
from host.trading.states import OrderStatus

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

__all__ = [
    "AdapterOptions",
    "AdapterServices",
    "BrokerAdapter",
    "Capabilities",
    "ConfigDecimal",
    "ExecutionReport",
    "OutcomeUnknown",
    "decimal_from_config",
]


class OutcomeUnknown(Exception):
    """The broker may or may not have the order; it must be looked up, never re-sent."""


def decimal_from_config(value: Any) -> Any:
    """A TOML number or string as a Decimal; floats through ``str()`` so that 0.1 means 0.1, booleans refused."""
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
    return value


ConfigDecimal = Annotated[Decimal, BeforeValidator(decimal_from_config), Field(allow_inf_nan=False)]
"""A decimal option: a TOML string (exact), integer or float."""


class AdapterOptions(BaseModel):
    """Base of every adapter's ``[brokers.NAME]`` options; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Capabilities:
    """What a broker can do, declared up front; the router refuses the rest with NOT_SUPPORTED."""

    order_types: frozenset[OrderType]
    time_in_force: frozenset[TimeInForce]
    fractional_units: bool
    """Quantities below one unit (e.g. 0.001 BTC) are allowed."""
    hedging: bool
    """Long and short positions in one instrument can be held at once."""
    brackets: bool
    """stop_loss / take_profit can be attached to an order."""
    modify: bool
    """Working orders can be changed in place."""
    instruments: tuple[str, ...]
    """Symbols the broker trades, as known when the adapter started."""
    trailing_stops: bool = False
    """A trailing stop-loss (``trailing_stop``, a price distance) can be attached to an order."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_types": sorted(self.order_types),
            "time_in_force": sorted(self.time_in_force),
            "fractional_units": self.fractional_units,
            "hedging": self.hedging,
            "brackets": self.brackets,
            "modify": self.modify,
            "trailing_stops": self.trailing_stops,
            "instruments": len(self.instruments),
        }


@dataclass(frozen=True)
class ExecutionReport:
    """What a broker says about one order at one moment."""

    client_order_id: str
    status: OrderStatus
    raw_status: str
    """The broker's own status word (or a short description of its answer)."""
    broker_order_id: str | None = None
    fills: tuple[Fill, ...] = ()
    """Executions, each with the broker's trade id; the router applies each trade id once."""
    error: ErrorInfo | None = None
    """Why the broker rejected or cancelled the order."""
    quantity: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    """The order's terms as the broker now holds them (after a modification), when it says."""
    at: datetime | None = None
    raw: dict[str, Any] | None = None
    """The broker's answer, trimmed to what is worth keeping in the audit trail."""
    parent_client_order_id: str | None = None
    """For an order the broker created itself from one of ours (a bracket's stop-loss or
    take-profit): the parent's client order id. The router records it as a new order of the
    parent's strategy."""
    terms: OrderRequest | None = None
    """For an order the router has not seen (a bracket child, an external order): what it is."""


@dataclass
class AdapterServices:
    """What the router lends an adapter."""

    engine: Engine
    """The state database; an adapter may keep its own tables there."""
    emit: Callable[[ExecutionReport], None]
    """Report an order change the broker pushed (a fill of a resting order, an expiry …)."""
    clock: Callable[[], float]
    """Wall-clock seconds since the epoch; tests may substitute it."""
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("tradehost.broker"))
    state_dir: str | None = None
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    """This broker's credentials (field → value), decrypted by the router from its credential
    store; never written to a log, the audit trail or a strategy process."""


class BrokerAdapter(ABC):
    """One configured broker account.

    ``type_name`` is the registry key (``type = "..."`` in ``[brokers.NAME]``),
    ``Options`` validates the rest of that table. Methods that talk to the
    broker are coroutines run on the router's event loop.
    """

    type_name: ClassVar[str]
    Options: ClassVar[type[AdapterOptions]] = AdapterOptions
    credential_fields: ClassVar[tuple[str, ...]] = ()
    """Credentials the adapter needs (``tradehost credentials set NAME FIELD``); the router
    refuses to start it while one is missing."""

    atomic: bool = False
    """True for an adapter whose whole book lives in the router's database and
    whose calls never suspend (the paper broker without latency). The router then
    applies its answer in the same transaction that journals the order, instead
    of committing the order first: either both are durable or neither is."""

    def __init__(self, name: str, options: AdapterOptions, services: AdapterServices) -> None:
        self.name = name
        self.options = options
        self.services = services

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abstractmethod
    async def start(self) -> None:
        """Connect, load instruments and whatever state the adapter keeps."""

    async def stop(self) -> None:
        """Disconnect; the default does nothing."""

    @abstractmethod
    def instrument(self, symbol: str) -> Instrument | None:
        """The instrument's trading rules, or None if the broker does not trade it (no I/O)."""

    @abstractmethod
    async def submit(self, order: Order) -> ExecutionReport:
        """Send a new order; return the broker's answer, raise TradingError or OutcomeUnknown."""

    @abstractmethod
    async def cancel(self, order: Order) -> ExecutionReport:
        """Cancel a working order; return its state after the broker answered."""

    @abstractmethod
    async def modify(self, order: Order, changes: OrderChanges) -> ExecutionReport:
        """Change a working order's quantity or prices."""

    @abstractmethod
    async def lookup(self, client_order_id: str, order: Order | None = None) -> ExecutionReport | None:
        """Find an order by our client order id; None if the broker never got it.

        ``order`` is the router's record of it (instrument, terms, creation time), for a broker that
        cannot search by client order id alone; the router always passes it.
        """

    @abstractmethod
    async def open_orders(self) -> list[ExecutionReport]:
        """Every order working at the broker, ours or not."""

    @abstractmethod
    async def positions(self) -> list[Position]: ...

    @abstractmethod
    async def account(self) -> Account: ...

    @abstractmethod
    async def quote(self, instrument: str) -> Quote: ...

    def persist(self, conn: Connection) -> None:
        """Write changed state inside the router's current transaction; the default keeps none."""

    def describe(self) -> dict[str, Any]:
        """A short description for ``tradehost brokers`` and the audit trail."""
        return {"name": self.name, "type": self.type_name, "capabilities": self.capabilities.to_dict()}
