"""IB error codes → standard error codes: the one table, and what each code does to the order (pure).

TWS reports errors, warnings and connectivity news through one ``error``
message carrying a code. ib_async marks an order ``Cancelled`` on any code it
does not know as a warning, so the adapter decides by this table, never by
that status: a refusal ends a new order (REJECTED) but leaves a working order
working when it answers a modification or a cancel. A code the table does not
know (outside 2100–2199) proves nothing about the order: on a new order TWS
has not acknowledged its outcome is unknown, so the router looks the order up
and never sends it again; a cancel, change or data request it answers counts
as refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from brokers.base import OutcomeUnknown
from host.trading.errors import ErrorCode, TradingError, error_for
from host.trading.model import ErrorInfo

__all__ = [
    "ERRORS",
    "REASONS_201",
    "Effect",
    "IbError",
    "IbOutcomeUnknown",
    "classify",
    "describe",
    "error_info",
    "ib_error",
    "refuses",
    "trading_error",
    "unknown_outcome",
]

E = ErrorCode


class Effect(StrEnum):
    REFUSED = "refused"
    """The request (a new order, a modification, a cancel, a data request) was refused."""
    CANCELLED = "cancelled"
    """The order was cancelled (202)."""
    WARNING = "warning"
    """Information; the order (or request) goes on."""
    CONNECTIVITY = "connectivity"
    """About the link between us and TWS, or between TWS and IB."""
    UNKNOWN = "unknown"
    """A code the table does not classify: it proves nothing. A new order's outcome is unknown (looked up,
    never re-sent); a cancel, modification or data request counts as refused, the order as it was."""


@dataclass(frozen=True, slots=True)
class IbError:
    code: ErrorCode
    effect: Effect
    meaning: str


def _e(code: ErrorCode, effect: Effect, meaning: str) -> IbError:
    return IbError(code, effect, meaning)


R, C, W, L = Effect.REFUSED, Effect.CANCELLED, Effect.WARNING, Effect.CONNECTIVITY

ERRORS: dict[int, IbError] = {
    100: _e(E.RATE_LIMITED, R, "more messages a second than TWS accepts"),
    103: _e(E.INVALID_REQUEST, R, "duplicate order id"),
    104: _e(E.ORDER_NOT_FOUND, R, "a filled order cannot be modified"),
    105: _e(E.INVALID_REQUEST, R, "the modification does not match the original order"),
    106: _e(E.INVALID_REQUEST, R, "the order could not be transmitted"),
    107: _e(E.INVALID_REQUEST, R, "an incomplete order cannot be transmitted"),
    109: _e(E.INVALID_PRICE, R, "price outside the band set in the order defaults"),
    110: _e(E.INVALID_PRICE, R, "price does not conform to the minimum price variation"),
    111: _e(E.INVALID_REQUEST, R, "time in force incompatible with the order type"),
    116: _e(E.MARKET_CLOSED, R, "the order cannot be sent to a closed exchange"),
    117: _e(E.INVALID_QUANTITY, R, "a block order must be at least 50"),
    133: _e(E.INVALID_REQUEST, R, "submitting the order failed"),
    134: _e(E.INVALID_REQUEST, R, "modifying the order failed"),
    135: _e(E.ORDER_NOT_FOUND, R, "no order with that id"),
    136: _e(E.INVALID_REQUEST, R, "the order cannot be cancelled"),
    161: _e(E.ORDER_NOT_FOUND, R, "the order is not in a cancellable state"),
    200: _e(E.INVALID_INSTRUMENT, R, "no security definition found"),
    201: _e(E.INVALID_REQUEST, R, "order rejected"),
    202: _e(E.ORDER_NOT_FOUND, C, "order cancelled"),
    203: _e(E.INVALID_INSTRUMENT, R, "the security is not available or allowed for this account"),
    321: _e(E.INVALID_REQUEST, R, "the request failed validation"),
    326: _e(E.CONNECTION_ERROR, L, "the client id is already in use"),
    329: _e(E.INVALID_REQUEST, R, "the order type cannot be changed"),
    354: _e(E.SERVICE_UNAVAILABLE, R, "no market data subscription"),
    388: _e(E.INVALID_QUANTITY, R, "order size below the minimum"),
    399: _e(E.INVALID_REQUEST, W, "order message warning"),
    404: _e(E.INSUFFICIENT_FUNDS, W, "shares not available for short sale; the order is held"),
    434: _e(E.INVALID_QUANTITY, R, "the order size cannot be zero"),
    435: _e(E.INVALID_REQUEST, R, "an account must be given"),
    436: _e(E.INVALID_REQUEST, R, "an allocation must be given"),
    502: _e(E.CONNECTION_ERROR, L, "could not connect to TWS"),
    503: _e(E.SERVICE_UNAVAILABLE, L, "TWS is out of date"),
    504: _e(E.CONNECTION_ERROR, L, "not connected to TWS"),
    1100: _e(E.CONNECTION_ERROR, L, "TWS lost its connection to IB"),
    1101: _e(E.CONNECTION_ERROR, L, "TWS reconnected to IB; market data subscriptions were lost"),
    1102: _e(E.CONNECTION_ERROR, L, "TWS reconnected to IB; data maintained"),
    1300: _e(E.CONNECTION_ERROR, L, "the TWS socket port was reset"),
    10147: _e(E.ORDER_NOT_FOUND, R, "the order to cancel was not found"),
    10148: _e(E.ORDER_NOT_FOUND, R, "the order can no longer be cancelled"),
    10149: _e(E.ORDER_NOT_FOUND, R, "invalid order id"),
    10167: _e(E.SERVICE_UNAVAILABLE, W, "delayed market data is shown instead of live"),
    10168: _e(E.SERVICE_UNAVAILABLE, R, "no market data subscription and delayed data is not enabled"),
    10197: _e(E.SERVICE_UNAVAILABLE, R, "no market data during a competing live session"),
    10349: _e(E.INVALID_REQUEST, W, "the time in force was set to DAY by the order presets; the order works"),
}
"""Every IB code the adapter classifies; 2100–2199 are information, anything else is unclassified (Effect.UNKNOWN)."""

_INFORMATION = _e(E.SERVICE_UNAVAILABLE, W, "information")
_UNCLASSIFIED = _e(E.INVALID_REQUEST, Effect.UNKNOWN, "an error the adapter does not classify")

REASONS_201: tuple[tuple[str, ErrorCode], ...] = (
    ("insufficient", E.INSUFFICIENT_FUNDS),
    ("margin", E.INSUFFICIENT_FUNDS),
    ("equity with loan", E.INSUFFICIENT_FUNDS),
    ("buying power", E.INSUFFICIENT_FUNDS),
    ("available funds", E.INSUFFICIENT_FUNDS),
    ("permission", E.INVALID_INSTRUMENT),
    ("not allowed to trade", E.INVALID_INSTRUMENT),
    ("trading hours", E.MARKET_CLOSED),
    ("market is closed", E.MARKET_CLOSED),
    ("exchange is closed", E.MARKET_CLOSED),
    ("price", E.INVALID_PRICE),
    ("size", E.INVALID_QUANTITY),
    ("quantity", E.INVALID_QUANTITY),
)
"""A 201 reject says why in its text ("Order rejected - reason: …"); the first phrase found decides."""


def ib_error(code: int) -> IbError:
    """The table's row for ``code``."""
    row = ERRORS.get(code)
    if row is not None:
        return row
    return _INFORMATION if 2100 <= code < 2200 else _UNCLASSIFIED


def refuses(code: int) -> bool:
    """Whether ``code`` says no to a cancel, a modification or a data request.

    An unclassified code counts as a no: the order is left as it was, and if the change took after
    all, TWS's own status messages report it. A new order is another matter (:func:`unknown_outcome`).
    """
    return ib_error(code).effect in (Effect.REFUSED, Effect.UNKNOWN)


def classify(code: int, message: str) -> ErrorCode:
    """The standard code of an IB error; a 201 by its reason text."""
    if code == 201:
        text = message.lower()
        for phrase, standard in REASONS_201:
            if phrase in text:
                return standard
    return ib_error(code).code


def describe(code: int) -> str:
    return f"{ib_error(code).meaning} (IB error {code})"


def trading_error(code: int, message: str) -> TradingError:
    """The typed error for an IB error; IB's code and text are kept beside ours."""
    return error_for(classify(code, message), describe(code), broker_code=str(code), broker_message=message)


def error_info(code: int, message: str) -> ErrorInfo:
    """The same, as it is stored with an order."""
    return ErrorInfo(code=str(classify(code, message)), message=describe(code), broker_code=str(code), broker_message=message)


class IbOutcomeUnknown(OutcomeUnknown):
    """TWS answered a new order with an unclassified error: the order may be working at IB."""

    def __init__(self, client_order_id: str, code: int, message: str) -> None:
        super().__init__(
            f"TWS answered order {client_order_id} with {describe(code)}: {message}; "
            "it may be working at IB, so it is looked up, not re-sent"
        )
        self.broker_code = str(code)
        self.broker_message = message


def unknown_outcome(client_order_id: str, errors: Iterable[tuple[int, str]]) -> IbOutcomeUnknown | None:
    """The unknown outcome of a new order TWS has not acknowledged, from the (code, text) errors it sent for it.

    None if none of them is unclassified.
    """
    for code, text in errors:
        if ib_error(code).effect is Effect.UNKNOWN:
            return IbOutcomeUnknown(client_order_id, code, text)
    return None
