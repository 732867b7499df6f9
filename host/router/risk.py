"""Pre-trade risk: limits from ``[risk]`` in supervisor.toml and the checks every new order passes (pure).

No I/O and no clock reads: the router passes the time and an :class:`Exposure`
snapshot in, persists the trading state and audits every denial itself.

Scopes
    *Strategy* limits come from ``[risk.per_strategy]`` merged field by field
    with ``[risk.strategies.NAME]``; they apply to one strategy's orders,
    position and P&L. *Global* limits are the keys set directly in ``[risk]``;
    they apply to the router as a whole: one order from any strategy, the
    position in an instrument at a broker summed over all strategies, the order
    rate of all strategies together and the day's P&L of all strategies.
    Both scopes are checked; ``instruments.SYMBOL`` sub-tables override the
    per-order and position limits of their scope for one instrument.

Rules, in the order they run (the first denial wins; cancels always pass)
    ``trading_halted``, ``reducing_only``, ``max_order_quantity``,
    ``max_order_notional``, ``max_position``, ``max_daily_loss``,
    ``max_orders_per_second``. A denial at global scope carries the rule name
    with ``.global`` appended (``max_position.global``); its message says
    "across all strategies" where a strategy-scope one says "for strategy NAME".

Reducing
    An order *reduces* a position when its fill shrinks ``|position|`` without
    flipping it past zero: the position is not zero, the order's side is
    opposite to it and ``0 < quantity <= |position|`` (closing to exactly zero
    counts). The position used is the *projected* one: the net position plus
    the remaining quantity of working orders on the order's own side, i.e. as
    if those filled first (:func:`is_reducing` itself takes a plain position).
    Strategy-scope rules (a strategy's own REDUCING state, its daily loss, its
    position limit) look at the strategy's position. Global-scope rules (the
    global REDUCING state, the global daily loss) require the order to reduce
    both the strategy's and the global position; a strategy whose position is
    netted out by another's (global position 0) therefore cannot trade while
    the router is REDUCING. ``max_position`` denies an order when the projected
    ``|position after the fill|`` exceeds the limit, unless the order reduces.

Unpriced positions
    A position with no price yet (after a restart, at a broker that could not
    quote it; see :func:`host.router.pricing.price_positions`) has an unknown
    P&L, not a zero one: a long can have lost everything since it was last
    priced. So while a scope with a ``max_daily_loss`` holds one, its daily
    loss cannot be assessed and ``max_daily_loss`` treats the limit as reached:
    only reducing orders pass, and the message names the unpriced instruments.
    The first quote (a strategy's, or the router's own retry: see
    :mod:`host.router.pricing`) or fill of the instrument prices it and lifts this.
"""

from __future__ import annotations

import re
import zoneinfo
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from host.trading.errors import Denied
from host.trading.model import INSTRUMENT_PATTERN, Side

__all__ = [
    "ALLOWED",
    "Decision",
    "Exposure",
    "ExposureView",
    "InstrumentLimits",
    "OrderIntent",
    "RiskConfig",
    "RiskEngine",
    "RiskLimits",
    "TradingState",
    "is_reducing",
]

_ZERO = Decimal(0)
_LIMIT_FIELDS = ("max_order_quantity", "max_order_notional", "max_position", "max_orders_per_second", "max_daily_loss")
_INSTRUMENT_FIELDS = ("max_order_quantity", "max_order_notional", "max_position")
_INSTRUMENT = re.compile(INSTRUMENT_PATTERN)
_DAY_START = re.compile(r"^(?:(\d{1,2}):(\d{2})\s+)?(\S+)$")
_NO_LIMIT = "none"


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    """Every order the limits allow passes."""
    REDUCING = "REDUCING"
    """Only orders that reduce a position pass (and cancels)."""
    HALTED = "HALTED"
    """No new orders; cancels still pass."""


def is_reducing(position: Decimal, side: Side, quantity: Decimal) -> bool:
    """Return True if filling ``quantity`` on ``side`` shrinks ``|position|`` without flipping it."""
    if side is Side.BUY:
        return position < 0 and _ZERO < quantity <= -position
    return position > 0 and _ZERO < quantity <= position


# ---------------------------------------------------------------- configuration


def _positive_decimal(value: Any) -> Any:
    """Turn a TOML int, float or string into a Decimal > 0; ``"none"`` means no limit."""
    if value is None or isinstance(value, Decimal):
        amount = value
    elif isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(str(value))
    elif isinstance(value, str):
        if value.strip().lower() == _NO_LIMIT:
            return None
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"expected a number, got {value!r}") from None
    else:
        raise ValueError(f"expected a number, got {value!r}")
    if amount is not None and not amount.is_finite():
        raise ValueError(f"must be a finite number, got {value!r}")
    if amount is not None and amount <= 0:
        raise ValueError(f"must be greater than 0, got {value!r}")
    return amount


def _positive_count(value: Any) -> Any:
    """Turn a TOML int (or whole float or numeric string) into an int > 0; ``"none"`` means no limit."""
    if isinstance(value, str) and value.strip().lower() == _NO_LIMIT:
        return None
    if value is None:
        return None
    number = _positive_decimal(value)
    if number != number.to_integral_value():
        raise ValueError(f"must be a whole number of orders, got {value!r}")
    return int(number)


class InstrumentLimits(BaseModel):
    """``instruments.SYMBOL``: per-order and position limits for one instrument, overriding its scope's."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    max_order_quantity: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_position: Decimal | None = None

    @field_validator(*_INSTRUMENT_FIELDS, mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Any:
        return _positive_decimal(value)


class RiskLimits(BaseModel):
    """One scope's limits; None (unset, or ``"none"``) means no limit."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    max_order_quantity: Decimal | None = None
    """Largest quantity of one order."""
    max_order_notional: Decimal | None = None
    """Largest quantity × reference price of one order, in the instrument's quote currency."""
    max_position: Decimal | None = None
    """Largest absolute net quantity per instrument and broker."""
    max_orders_per_second: int | None = None
    """Most orders allowed in any one-second window (a sliding window)."""
    max_daily_loss: Decimal | None = None
    """Positive amount: orders that do not reduce are denied once the day's P&L is at or below minus this."""
    instruments: dict[str, InstrumentLimits] = Field(default_factory=dict)

    @field_validator("max_order_quantity", "max_order_notional", "max_position", "max_daily_loss", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Any:
        return _positive_decimal(value)

    @field_validator("max_orders_per_second", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        return _positive_count(value)

    @field_validator("instruments")
    @classmethod
    def _symbols(cls, value: dict[str, InstrumentLimits]) -> dict[str, InstrumentLimits]:
        for symbol in value:
            if not _INSTRUMENT.match(symbol):
                raise ValueError(f"not an instrument name: {symbol!r}")
        return value

    def merged(self, override: RiskLimits) -> RiskLimits:
        """Return these limits with every key ``override`` sets replacing ours (instruments merged per key)."""
        data = {name: getattr(self, name) for name in _LIMIT_FIELDS}
        data.update({name: getattr(override, name) for name in _LIMIT_FIELDS if name in override.model_fields_set})
        instruments = dict(self.instruments)
        for symbol, limits in override.instruments.items():
            base = instruments.get(symbol)
            if base is None:
                instruments[symbol] = limits
            else:
                update = {name: getattr(limits, name) for name in limits.model_fields_set}
                instruments[symbol] = InstrumentLimits.model_construct(
                    base.model_fields_set | limits.model_fields_set, **{**base.model_dump(), **update}
                )
        fields_set = self.model_fields_set | override.model_fields_set
        return RiskLimits.model_construct(fields_set, **data, instruments=instruments)


class RiskConfig(RiskLimits):
    """The ``[risk]`` table: global limits, ``per_strategy`` defaults, ``strategies.NAME`` overrides, ``day_start``."""

    per_strategy: RiskLimits = Field(default_factory=RiskLimits)
    """Limits every strategy gets unless ``strategies.NAME`` overrides them."""
    strategies: dict[str, RiskLimits] = Field(default_factory=dict)
    day_start: str = "UTC"
    """When the trading day (and the daily loss) starts: an IANA zone, optionally after ``HH:MM`` (default 00:00)."""

    @field_validator("day_start")
    @classmethod
    def _day_start(cls, value: str) -> str:
        _parse_day_start(value)
        return value

    @property
    def global_limits(self) -> RiskLimits:
        """Return the global scope's limits (the keys set directly in ``[risk]``)."""
        fields_set = self.model_fields_set & set((*_LIMIT_FIELDS, "instruments"))
        return RiskLimits.model_construct(
            fields_set, instruments=self.instruments, **{name: getattr(self, name) for name in _LIMIT_FIELDS}
        )

    def limits_for(self, strategy: str) -> RiskLimits:
        """Return the strategy scope's limits of ``strategy``: ``per_strategy`` merged with ``strategies.NAME``."""
        override = self.strategies.get(strategy)
        return self.per_strategy if override is None else self.per_strategy.merged(override)

    def trading_day(self, now: float) -> date:
        """Return the trading day that contains ``now`` (epoch seconds), named by the date it starts on."""
        start_time, zone = _parse_day_start(self.day_start)
        local = datetime.fromtimestamp(now, zone)
        return local.date() if local.time() >= start_time else local.date() - timedelta(days=1)

    def day_bounds(self, now: float) -> tuple[float, float]:
        """Return the epoch seconds ``[start, end)`` of the trading day that contains ``now`` (epoch seconds)."""
        start_time, zone = _parse_day_start(self.day_start)
        day = self.trading_day(now)
        start = datetime.combine(day, start_time, zone)
        end = datetime.combine(day + timedelta(days=1), start_time, zone)
        return start.timestamp(), end.timestamp()


def _parse_day_start(value: str) -> tuple[time, zoneinfo.ZoneInfo]:
    match = _DAY_START.match(value.strip())
    if match is None:
        raise ValueError(f"expected a timezone such as 'UTC' or 'HH:MM America/New_York', got {value!r}")
    hour, minute, name = match.groups()
    start = time(0, 0)
    if hour is not None:
        if int(hour) > 23 or int(minute) > 59:
            raise ValueError(f"not a time of day: {hour}:{minute}")
        start = time(int(hour), int(minute))
    try:
        return start, zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None


# ---------------------------------------------------------------- inputs and outputs


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """A new order (or a cancel) as the risk engine sees it."""

    strategy: str
    broker: str
    instrument: str
    side: Side
    quantity: Decimal
    """Positive; the router has validated it already."""
    price: Decimal | None
    """Reference price: the limit price, else the stop price or current touch; None if unknown (a notional limit then denies)."""
    is_cancel: bool = False
    currency: str | None = None
    """The quote currency, only for messages."""


class ExposureView(Protocol):
    """What the router knows about the order's instrument at its broker when it checks the order."""

    @property
    def strategy_position(self) -> Decimal: ...
    @property
    def global_position(self) -> Decimal: ...
    @property
    def strategy_day_pnl(self) -> Decimal: ...
    @property
    def global_day_pnl(self) -> Decimal: ...
    @property
    def strategy_pending_buy(self) -> Decimal: ...
    @property
    def strategy_pending_sell(self) -> Decimal: ...
    @property
    def global_pending_buy(self) -> Decimal: ...
    @property
    def global_pending_sell(self) -> Decimal: ...
    @property
    def strategy_unpriced(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def global_unpriced(self) -> tuple[tuple[str, str], ...]: ...


@dataclass(frozen=True, slots=True)
class Exposure:
    """A snapshot the router fills; positions are per instrument at the order's broker, P&L since the day started."""

    strategy_position: Decimal = _ZERO
    """The strategy's net position (negative is short)."""
    global_position: Decimal = _ZERO
    """The net position summed over all strategies."""
    strategy_day_pnl: Decimal = _ZERO
    """The strategy's realised + unrealised P&L today, all instruments and brokers."""
    global_day_pnl: Decimal = _ZERO
    """Realised + unrealised P&L today of all strategies."""
    strategy_pending_buy: Decimal = _ZERO
    """Remaining quantity of the strategy's working buy orders (positive)."""
    strategy_pending_sell: Decimal = _ZERO
    global_pending_buy: Decimal = _ZERO
    global_pending_sell: Decimal = _ZERO
    strategy_unpriced: tuple[tuple[str, str], ...] = ()
    """(broker, instrument) of the strategy's open positions with no price yet (their P&L is unknown)."""
    global_unpriced: tuple[tuple[str, str], ...] = ()
    """The same over all strategies, EXTERNAL included."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer: allowed, or denied by ``rule`` with a one-line ``message``."""

    allowed: bool
    rule: str | None = None
    message: str = ""

    def to_error(self) -> Denied:
        """Return the DENIED error that reports this decision to the strategy."""
        if self.allowed:
            raise ValueError("an allowed decision is not an error")
        return Denied(self.message, rule=self.rule)


ALLOWED = Decision(True)


# ---------------------------------------------------------------- the checks


@dataclass(frozen=True, slots=True)
class _Scope:
    """One scope's limits for one (strategy, instrument), resolved once and cached."""

    suffix: str
    """Appended to rule names: "" or ".global"."""
    where: str
    """"for strategy NAME" or "across all strategies"."""
    max_order_quantity: Decimal | None
    max_order_notional: Decimal | None
    max_position: Decimal | None
    max_orders_per_second: int | None
    max_daily_loss: Decimal | None
    per_instrument: frozenset[str]
    """Names of the limits an ``instruments.SYMBOL`` table set."""


def _resolve(limits: RiskLimits, instrument: str, suffix: str, where: str) -> _Scope:
    values: dict[str, Any] = {name: getattr(limits, name) for name in _LIMIT_FIELDS}
    override = limits.instruments.get(instrument)
    fields: frozenset[str] = frozenset()
    if override is not None:
        fields = frozenset(override.model_fields_set)
        values.update({name: getattr(override, name) for name in fields})
    return _Scope(suffix, where, per_instrument=fields, **values)


def _num(value: Decimal) -> str:
    """Format an amount without exponent or trailing zeros (150000, 1.5)."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _limit(scope: _Scope, name: str, value: Decimal | int, instrument: str) -> str:
    qualifier = f" {instrument}" if name in scope.per_instrument else ""
    return f"the{qualifier} limit {_num(Decimal(value))} {scope.where}"


def _deny(rule: str, scope: _Scope, text: str) -> Decision:
    name = rule + scope.suffix
    return Decision(False, name, f"{name}: {text}")


def _projected(position: Decimal, pending_buy: Decimal, pending_sell: Decimal, side: Side) -> Decimal:
    """The position if every working order on ``side`` filled first."""
    return position + pending_buy if side is Side.BUY else position - pending_sell


def _order(intent: OrderIntent) -> str:
    return f"{intent.side} {_num(intent.quantity)} {intent.instrument}"


def _check_quantity(intent: OrderIntent, scope: _Scope) -> Decision | None:
    limit = scope.max_order_quantity
    if limit is None or intent.quantity <= limit:
        return None
    text = f"order quantity {_num(intent.quantity)} exceeds {_limit(scope, 'max_order_quantity', limit, intent.instrument)}"
    return _deny("max_order_quantity", scope, text)


def _check_notional(intent: OrderIntent, scope: _Scope) -> Decision | None:
    limit = scope.max_order_notional
    if limit is None:
        return None
    if intent.price is None:
        return _deny("max_order_notional", scope, f"no reference price for {intent.instrument} to check the order notional against")
    notional = intent.quantity * intent.price
    if notional <= limit:
        return None
    currency = f" {intent.currency}" if intent.currency else ""
    text = f"order notional {_num(notional)}{currency} exceeds {_limit(scope, 'max_order_notional', limit, intent.instrument)}"
    return _deny("max_order_notional", scope, text)


def _check_position(intent: OrderIntent, scope: _Scope, projected: Decimal, kind: str) -> Decision | None:
    limit = scope.max_position
    if limit is None:
        return None
    after = projected + intent.quantity if intent.side is Side.BUY else projected - intent.quantity
    if abs(after) <= limit or is_reducing(projected, intent.side, intent.quantity):
        return None
    text = (
        f"{_order(intent)} would take the {kind} position from {_num(projected)} to {_num(after)}"
        f" (counting working orders), over {_limit(scope, 'max_position', limit, intent.instrument)}"
    )
    return _deny("max_position", scope, text)


def _unpriced_names(unpriced: tuple[tuple[str, str], ...], shown: int = 5) -> str:
    """Name the first few unpriced positions: "EUR_USD at fx, DE30_EUR at fx and 3 more"."""
    names = ", ".join(f"{instrument} at {broker}" for broker, instrument in unpriced[:shown])
    rest = len(unpriced) - shown
    return names + (f" and {rest} more" if rest > 0 else "")


def _not_reducing(intent: OrderIntent, strategy: Decimal, overall: Decimal | None) -> str | None:
    """Say which position the order does not reduce, or None if it reduces (both, when ``overall`` is given)."""
    if not is_reducing(strategy, intent.side, intent.quantity):
        return f"{_order(intent)} does not reduce the strategy position {_num(strategy)} without flipping it"
    if overall is not None and not is_reducing(overall, intent.side, intent.quantity):
        return f"{_order(intent)} does not reduce the global position {_num(overall)} without flipping it"
    return None


# ---------------------------------------------------------------- the engine


class RiskEngine:
    """Checks new orders against the limits and the trading state; keeps the order-rate windows.

    ``check`` is called for every order the router receives: it must stay a few
    microseconds, so limits are resolved once per (strategy, instrument) and
    cached, and nothing is validated or allocated that an allowed order does not need.
    Not thread-safe: call it from the one thread that handles orders.
    """

    def __init__(
        self,
        config: RiskConfig,
        *,
        state: TradingState = TradingState.ACTIVE,
        strategy_states: Mapping[str, TradingState] | None = None,
    ) -> None:
        self._config = config
        self._state = state
        self._strategy_states: dict[str, TradingState] = {
            name: value for name, value in (strategy_states or {}).items() if value is not TradingState.ACTIVE
        }
        self._scopes: dict[tuple[str, str], tuple[_Scope, _Scope]] = {}
        self._windows: dict[str, deque[float]] = {}
        self._global_window: deque[float] = deque()

    @property
    def config(self) -> RiskConfig:
        return self._config

    def reconfigure(self, config: RiskConfig) -> None:
        """Apply new limits (a config reload); trading states and rate windows are kept."""
        self._config = config
        self._scopes.clear()

    @property
    def state(self) -> TradingState:
        """The global trading state."""
        return self._state

    @property
    def strategy_states(self) -> dict[str, TradingState]:
        """The strategies whose own state is not ACTIVE."""
        return dict(self._strategy_states)

    def state_of(self, strategy: str) -> TradingState:
        """Return the strategy's own state (the global one applies on top of it)."""
        return self._strategy_states.get(strategy, TradingState.ACTIVE)

    def set_state(self, state: TradingState, strategy: str | None = None) -> TradingState:
        """Set the global state, or one strategy's; return the previous one (for the audit record)."""
        if strategy is None:
            previous, self._state = self._state, state
            return previous
        previous = self._strategy_states.pop(strategy, TradingState.ACTIVE)
        if state is not TradingState.ACTIVE:
            self._strategy_states[strategy] = state
        return previous

    def check(self, intent: OrderIntent, exposure: ExposureView, now: float) -> Decision:
        """Return whether the order may go to the broker; ``now`` is monotonic seconds (it feeds the rate windows).

        An allowed order counts towards the order-rate windows; a denied one does not.
        """
        if intent.is_cancel:
            return ALLOWED
        scopes = self._scopes.get((intent.strategy, intent.instrument))
        if scopes is None:
            scopes = self._resolve(intent.strategy, intent.instrument)
        ours, overall = scopes
        side = intent.side
        if side is Side.BUY:
            strategy_position = exposure.strategy_position + exposure.strategy_pending_buy
            global_position = exposure.global_position + exposure.global_pending_buy
        else:
            strategy_position = exposure.strategy_position - exposure.strategy_pending_sell
            global_position = exposure.global_position - exposure.global_pending_sell
        return (
            self._check_state(intent, strategy_position, global_position)
            or _check_quantity(intent, ours)
            or _check_quantity(intent, overall)
            or _check_notional(intent, ours)
            or _check_notional(intent, overall)
            or _check_position(intent, ours, strategy_position, "strategy")
            or _check_position(intent, overall, global_position, "global")
            or self._check_daily_loss(intent, exposure, ours, overall, strategy_position, global_position)
            or self._check_rate(intent.strategy, ours, overall, now)
        )

    def _resolve(self, strategy: str, instrument: str) -> tuple[_Scope, _Scope]:
        scopes = (
            _resolve(self._config.limits_for(strategy), instrument, "", f"for strategy {strategy}"),
            _resolve(self._config.global_limits, instrument, ".global", "across all strategies"),
        )
        self._scopes[(strategy, instrument)] = scopes
        return scopes

    def _check_state(self, intent: OrderIntent, strategy_position: Decimal, global_position: Decimal) -> Decision | None:
        overall = self._state
        own = self._strategy_states.get(intent.strategy, TradingState.ACTIVE) if self._strategy_states else TradingState.ACTIVE
        if overall is TradingState.ACTIVE and own is TradingState.ACTIVE:
            return None
        if overall is TradingState.HALTED:
            return Decision(False, "trading_halted.global", "trading_halted.global: trading is halted; only cancels pass")
        if own is TradingState.HALTED:
            return Decision(False, "trading_halted", f"trading_halted: trading is halted for strategy {intent.strategy}; only cancels pass")
        if overall is TradingState.REDUCING:
            reason = _not_reducing(intent, strategy_position, global_position)
            if reason is not None:
                return Decision(False, "reducing_only.global", f"reducing_only.global: trading is reducing-only; {reason}")
        if own is TradingState.REDUCING:
            reason = _not_reducing(intent, strategy_position, None)
            if reason is not None:
                text = f"reducing_only: trading is reducing-only for strategy {intent.strategy}; {reason}"
                return Decision(False, "reducing_only", text)
        return None

    @staticmethod
    def _check_daily_loss(
        intent: OrderIntent,
        exposure: ExposureView,
        ours: _Scope,
        overall: _Scope,
        strategy_position: Decimal,
        global_position: Decimal,
    ) -> Decision | None:
        if ours.max_daily_loss is None and overall.max_daily_loss is None:
            return None
        for scope, is_global in ((ours, False), (overall, True)):
            limit = scope.max_daily_loss
            if limit is None:
                continue  # a scope without a limit never has its P&L computed
            pnl = exposure.global_day_pnl if is_global else exposure.strategy_day_pnl
            if pnl <= -limit:
                problem = f"day P&L {_num(pnl)} has reached the loss limit {_num(limit)} {scope.where}"
            else:
                # An unpriced position's P&L is unknown, and a loss of unknown size may already be past the
                # limit: a real-money router must not let exposure grow on a limit it cannot assess.
                unpriced = exposure.global_unpriced if is_global else exposure.strategy_unpriced
                if not unpriced:
                    continue
                problem = (
                    f"day P&L cannot be checked against the loss limit {_num(limit)} {scope.where}:"
                    f" no price yet for {_unpriced_names(unpriced)} (a quote or a fill prices it)"
                )
            reason = _not_reducing(intent, strategy_position, global_position if is_global else None)
            if reason is not None:
                return _deny("max_daily_loss", scope, f"{problem}; only reducing orders pass, and {reason}")
        return None

    def _check_rate(self, strategy: str, ours: _Scope, overall: _Scope, now: float) -> Decision:
        """Deny if either one-second window is full; otherwise count the order in both and allow it."""
        window = None
        limit = ours.max_orders_per_second
        if limit is not None:
            window = self._windows.get(strategy)
            if window is None:
                window = self._windows[strategy] = deque()
            if _full(window, limit, now):
                return _deny("max_orders_per_second", ours, f"{len(window)} orders in the last second reach the limit {limit} {ours.where}")
        global_limit = overall.max_orders_per_second
        if global_limit is not None:
            if _full(self._global_window, global_limit, now):
                text = f"{len(self._global_window)} orders in the last second reach the limit {global_limit} {overall.where}"
                return _deny("max_orders_per_second", overall, text)
            self._global_window.append(now)
        if window is not None:
            window.append(now)
        return ALLOWED


def _full(window: deque[float], limit: int, now: float) -> bool:
    """Drop the times that left the window ``(now - 1, now]``; return True if ``limit`` orders remain in it."""
    horizon = now - 1.0
    while window and window[0] <= horizon:
        window.popleft()
    return len(window) >= limit
