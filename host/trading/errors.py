"""Typed trading errors: one class per standard code, with the broker's own code and message kept beside it.

::

    TradingError (host.errors.TradehostError)
    ├── AuthenticationFailed   AUTHENTICATION_FAILED  the broker refused our credentials
    ├── InsufficientFunds      INSUFFICIENT_FUNDS
    ├── InvalidInstrument      INVALID_INSTRUMENT     unknown or untradable instrument
    ├── InvalidQuantity        INVALID_QUANTITY       zero, negative, too many decimals, over a limit
    ├── InvalidPrice           INVALID_PRICE          missing, negative or off the tick
    ├── MarketClosed           MARKET_CLOSED
    ├── RateLimited            RATE_LIMITED
    ├── ConnectionFailed       CONNECTION_ERROR       the router or broker did not answer in time
    ├── ServiceUnavailable     SERVICE_UNAVAILABLE
    ├── OrderNotFound          ORDER_NOT_FOUND
    ├── Denied                 DENIED                 a risk rule refused the order (``rule`` names it)
    ├── InvalidRequest         INVALID_REQUEST        a malformed, oversized or unknown message
    ├── Unauthorized           UNAUTHORIZED           an unknown or expired run token
    └── NotSupported           NOT_SUPPORTED          the broker cannot do this (names the capability)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from host.errors import TradehostError

__all__ = [
    "AuthenticationFailed",
    "ConnectionFailed",
    "Denied",
    "ErrorCode",
    "InsufficientFunds",
    "InvalidInstrument",
    "InvalidPrice",
    "InvalidQuantity",
    "InvalidRequest",
    "MarketClosed",
    "NotSupported",
    "OrderNotFound",
    "RateLimited",
    "ServiceUnavailable",
    "TradingError",
    "Unauthorized",
    "error_for",
    "error_from_dict",
]


class ErrorCode(StrEnum):
    AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    INVALID_INSTRUMENT = "INVALID_INSTRUMENT"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    INVALID_PRICE = "INVALID_PRICE"
    MARKET_CLOSED = "MARKET_CLOSED"
    RATE_LIMITED = "RATE_LIMITED"
    CONNECTION_ERROR = "CONNECTION_ERROR"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    DENIED = "DENIED"
    INVALID_REQUEST = "INVALID_REQUEST"
    UNAUTHORIZED = "UNAUTHORIZED"
    NOT_SUPPORTED = "NOT_SUPPORTED"


class TradingError(TradehostError):
    """An order or query failed; ``code`` is one of :class:`ErrorCode`."""

    code: ClassVar[ErrorCode]

    def __init__(
        self,
        message: str,
        *,
        broker_code: str | None = None,
        broker_message: str | None = None,
        rule: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.broker_code = broker_code
        """The broker's own error code, as it sent it."""
        self.broker_message = broker_message
        self.rule = rule
        """For DENIED: the risk rule that refused the order."""
        self.retry_after = retry_after
        """For RATE_LIMITED: seconds to wait, when known."""

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        if self.broker_code or self.broker_message:
            text += f" (broker: {self.broker_code or ''}{' ' if self.broker_code and self.broker_message else ''}{self.broker_message or ''})"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The error as it travels on the wire and into the audit trail."""
        return {
            "code": str(self.code),
            "message": self.message,
            "broker_code": self.broker_code,
            "broker_message": self.broker_message,
            "rule": self.rule,
            "retry_after": self.retry_after,
        }


class AuthenticationFailed(TradingError):
    code = ErrorCode.AUTHENTICATION_FAILED


class InsufficientFunds(TradingError):
    code = ErrorCode.INSUFFICIENT_FUNDS


class InvalidInstrument(TradingError):
    code = ErrorCode.INVALID_INSTRUMENT


class InvalidQuantity(TradingError):
    code = ErrorCode.INVALID_QUANTITY


class InvalidPrice(TradingError):
    code = ErrorCode.INVALID_PRICE


class MarketClosed(TradingError):
    code = ErrorCode.MARKET_CLOSED


class RateLimited(TradingError):
    code = ErrorCode.RATE_LIMITED


class ConnectionFailed(TradingError):
    code = ErrorCode.CONNECTION_ERROR


class ServiceUnavailable(TradingError):
    code = ErrorCode.SERVICE_UNAVAILABLE


class OrderNotFound(TradingError):
    code = ErrorCode.ORDER_NOT_FOUND


class Denied(TradingError):
    code = ErrorCode.DENIED


class InvalidRequest(TradingError):
    code = ErrorCode.INVALID_REQUEST


class Unauthorized(TradingError):
    code = ErrorCode.UNAUTHORIZED


class NotSupported(TradingError):
    code = ErrorCode.NOT_SUPPORTED


_BY_CODE: dict[str, type[TradingError]] = {cls.code: cls for cls in TradingError.__subclasses__()}


def error_for(code: ErrorCode | str, message: str, **details: Any) -> TradingError:
    """The typed error for a standard code (adapters map broker codes to these)."""
    return _BY_CODE.get(str(code), InvalidRequest)(message, **details)


def error_from_dict(data: dict[str, Any]) -> TradingError:
    """Rebuild the typed error a wire reply or audit record describes."""
    cls = _BY_CODE.get(str(data.get("code")), InvalidRequest)
    message = str(data.get("message") or data.get("code") or "error")
    retry = data.get("retry_after")
    return cls(
        message,
        broker_code=data.get("broker_code"),
        broker_message=data.get("broker_message"),
        rule=data.get("rule"),
        retry_after=float(retry) if isinstance(retry, (int, float)) else None,
    )
