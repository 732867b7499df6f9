"""The order model strategies and the router share: requests, orders, fills, positions, accounts, quotes.

Prices and quantities are :class:`~decimal.Decimal` everywhere; on the wire
they travel as JSON strings, so no float ever touches them. Times are UTC
``datetime`` objects.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .states import OPEN_STATES, TERMINAL_STATES, OrderStatus

__all__ = [
    "Account",
    "ErrorInfo",
    "Fill",
    "Instrument",
    "Order",
    "OrderChanges",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "Position",
    "Quote",
    "Side",
    "TimeInForce",
]

MAX_DIGITS = 28
"""Digits a price or quantity may have, before and after the point together."""
MAX_AMOUNT = Decimal("1e15")
"""No price or quantity is this large; bigger numbers are refused before any arithmetic."""
MAX_DECIMALS = 12

INSTRUMENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_./:\-]{0,63}$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"

Amount = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=MAX_DIGITS, decimal_places=MAX_DECIMALS, lt=MAX_AMOUNT, gt=-MAX_AMOUNT)]


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP = "STOP"
    STOP_LIMIT = "STOP_LIMIT"
    MARKET_IF_TOUCHED = "MARKET_IF_TOUCHED"
    """A market order placed once the market touches ``stop_price`` from the favourable side.

    The trigger travels in ``stop_price``. A buy triggers when the price falls to
    or below it, a sell when the price rises to or above it: the opposite of a
    STOP, which buys at or above and sells at or below its trigger.
    """


class TimeInForce(StrEnum):
    GTC = "GTC"
    """Good till cancelled."""
    DAY = "DAY"
    """Expires at the end of the trading day (UTC midnight for the paper broker)."""
    IOC = "IOC"
    """Immediate or cancel: what cannot fill at once is cancelled."""
    FOK = "FOK"
    """Fill or kill: fills completely at once or not at all."""


_STRICT = ConfigDict(extra="forbid", frozen=True)


class OrderRequest(BaseModel):
    """What a strategy asks for; validated by the router before anything else happens."""

    model_config = _STRICT

    instrument: str = Field(pattern=INSTRUMENT_PATTERN)
    side: Side
    quantity: Amount
    type: OrderType = OrderType.MARKET
    limit_price: Amount | None = None
    stop_price: Amount | None = None
    """The trigger price of a STOP, STOP_LIMIT or MARKET_IF_TOUCHED order."""
    time_in_force: TimeInForce = TimeInForce.GTC
    stop_loss: Amount | None = None
    """Price of a protective stop the broker attaches once the order fills."""
    take_profit: Amount | None = None
    """Price of a profit-taking limit the broker attaches once the order fills."""
    trailing_stop: Amount | None = None
    """Distance (in price, positive) of a trailing stop-loss the broker attaches once the order fills."""
    broker: str | None = Field(default=None, pattern=NAME_PATTERN)
    """A configured broker name; None means the strategy's default."""
    tag: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _prices_fit_type(self) -> OrderRequest:
        needs_limit = self.type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = self.type in (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.MARKET_IF_TOUCHED)
        if needs_limit and self.limit_price is None:
            raise ValueError(f"a {self.type} order needs limit_price")
        if needs_stop and self.stop_price is None:
            raise ValueError(f"a {self.type} order needs stop_price")
        if not needs_limit and self.limit_price is not None:
            raise ValueError(f"a {self.type} order takes no limit_price")
        if not needs_stop and self.stop_price is not None:
            raise ValueError(f"a {self.type} order takes no stop_price")
        if self.trailing_stop is not None and self.trailing_stop <= 0:
            raise ValueError(f"trailing_stop is a price distance and must be positive, got {self.trailing_stop}")
        return self


class OrderChanges(BaseModel):
    """A modification: the fields to change, the rest stays."""

    model_config = _STRICT

    quantity: Amount | None = None
    limit_price: Amount | None = None
    stop_price: Amount | None = None

    @model_validator(mode="after")
    def _something(self) -> OrderChanges:
        if self.quantity is None and self.limit_price is None and self.stop_price is None:
            raise ValueError("a modification needs quantity, limit_price or stop_price")
        return self


class ErrorInfo(BaseModel):
    """Why an order was denied or rejected, as the router and the broker said it."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    broker_code: str | None = None
    broker_message: str | None = None
    rule: str | None = None


class Fill(BaseModel):
    model_config = ConfigDict(frozen=True)

    trade_id: str
    """The broker's id of this execution; a fill seen twice is applied once."""
    quantity: Decimal
    price: Decimal
    commission: Decimal = Decimal(0)
    at: datetime


class Order(BaseModel):
    """One order as the router knows it; what ``ctx.place_order`` and friends return."""

    model_config = ConfigDict(frozen=True)

    client_order_id: str
    """The router's id for the order, ``STRATEGY-YYYYMMDD-SEQ``; sent to the broker where it has a field for it."""
    request_id: str
    strategy: str
    run_id: int | None
    broker: str
    broker_order_id: str | None
    instrument: str
    side: Side
    type: OrderType
    quantity: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    time_in_force: TimeInForce
    stop_loss: Decimal | None
    take_profit: Decimal | None
    tag: str | None
    status: OrderStatus
    raw_status: str | None
    """The broker's own word for the status, kept beside the normalised one."""
    filled_quantity: Decimal
    average_price: Decimal | None
    commission: Decimal
    error: ErrorInfo | None
    created_at: datetime
    updated_at: datetime
    fills: tuple[Fill, ...] = ()
    trailing_stop: Decimal | None = None
    """Distance of the trailing stop-loss attached once the order fills, if one was asked for."""

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATES

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATES

    @property
    def remaining_quantity(self) -> Decimal:
        return self.quantity - self.filled_quantity


class Position(BaseModel):
    """A net position in one instrument at one broker (quantity < 0 is short)."""

    model_config = ConfigDict(frozen=True)

    broker: str
    instrument: str
    quantity: Decimal
    average_price: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    market_price: Decimal | None
    strategy: str | None = None
    """The strategy the position belongs to; None for a whole broker account."""


class Account(BaseModel):
    model_config = ConfigDict(frozen=True)

    broker: str
    currency: str
    balance: Decimal
    """Cash: starting balance plus realised P&L minus commissions."""
    equity: Decimal
    """Balance plus unrealised P&L."""
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    commission: Decimal
    margin_used: Decimal = Decimal(0)
    buying_power: Decimal | None = None


class Quote(BaseModel):
    model_config = ConfigDict(frozen=True)

    broker: str
    instrument: str
    bid: Decimal
    ask: Decimal
    at: datetime
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2

    @property
    def spread(self) -> Decimal:
        return self.ask - self.bid


class Instrument(BaseModel):
    """What a broker says about one tradable instrument; the router checks orders against it."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    price_increment: Decimal
    """Tick size: every price must be a multiple of it."""
    quantity_increment: Decimal
    """Lot step: every quantity must be a multiple of it (1 means whole units only)."""
    min_quantity: Decimal
    max_quantity: Decimal | None = None
    min_notional: Decimal | None = None
    currency: str = "USD"
    """The currency prices are quoted in."""
    kind: str = "fx"
    """fx, stock, crypto, future, cfd …"""
    extra: dict[str, Any] = Field(default_factory=dict)
