"""ccxt errors → standard trading errors, with the broker's own code and message kept beside ours.

Each exchange contributes one table (its error words or numbers → :class:`ErrorCode`)
through a lookup that reads the answer's JSON body; what no table knows is
classified by HTTP status, and what came without an HTTP answer by ccxt's
exception class (except an HTTP failure ccxt calls a plain ExchangeError, such as an
answer cut off in its body: the request may have been processed, so it is a
connection error, not a refusal). On order creation CONNECTION_ERROR and SERVICE_UNAVAILABLE mean
the outcome is unknown (:func:`outcome_unknown`): the order is looked up, never resent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import ccxt

from host.trading.errors import ErrorCode, TradingError, error_for

from .exchange import HttpAnswer, answer_of

__all__ = [
    "BrokerError",
    "ErrorLookup",
    "MalformedAnswer",
    "outcome_unknown",
    "translate",
]

C = ErrorCode


@dataclass(frozen=True)
class BrokerError:
    """What an exchange's table says about an error body."""

    code: ErrorCode
    broker_code: str
    broker_message: str | None = None


ErrorLookup = Callable[[Any], BrokerError | None]
"""An exchange's table applied to a parsed JSON error body (any JSON value); None if it knows nothing."""


class MalformedAnswer(Exception):
    """The exchange answered 2xx with something that is not what the endpoint returns."""


# Most specific first: ccxt's hierarchy nests (RateLimitExceeded is a NetworkError, OrderNotFound an InvalidOrder …).
_BY_CLASS: tuple[tuple[type[BaseException], ErrorCode], ...] = (
    (ccxt.RateLimitExceeded, C.RATE_LIMITED),
    (ccxt.DDoSProtection, C.RATE_LIMITED),
    (ccxt.RequestTimeout, C.CONNECTION_ERROR),
    (ccxt.OnMaintenance, C.SERVICE_UNAVAILABLE),
    (ccxt.InvalidNonce, C.INVALID_REQUEST),
    (ccxt.NetworkError, C.CONNECTION_ERROR),
    (ccxt.AuthenticationError, C.AUTHENTICATION_FAILED),
    (ccxt.AccountSuspended, C.AUTHENTICATION_FAILED),
    (ccxt.InsufficientFunds, C.INSUFFICIENT_FUNDS),
    (ccxt.OrderNotFound, C.ORDER_NOT_FOUND),
    (ccxt.BadSymbol, C.INVALID_INSTRUMENT),
    (ccxt.MarketClosed, C.MARKET_CLOSED),
    (ccxt.NotSupported, C.NOT_SUPPORTED),
    (ccxt.InvalidOrder, C.INVALID_REQUEST),
    (ccxt.BadRequest, C.INVALID_REQUEST),
    (ccxt.ArgumentsRequired, C.INVALID_REQUEST),
    (ccxt.BadResponse, C.SERVICE_UNAVAILABLE),
    (ccxt.NullResponse, C.SERVICE_UNAVAILABLE),
    (ccxt.ExchangeError, C.INVALID_REQUEST),
    (ccxt.OperationFailed, C.SERVICE_UNAVAILABLE),
    (MalformedAnswer, C.SERVICE_UNAVAILABLE),
)

_WHY = {
    C.RATE_LIMITED: "rate limit exceeded",
    C.CONNECTION_ERROR: "no answer in time or connection lost",
    C.SERVICE_UNAVAILABLE: "the exchange could not process the request",
    C.AUTHENTICATION_FAILED: "the exchange refused the credentials",
    C.INSUFFICIENT_FUNDS: "insufficient funds",
    C.ORDER_NOT_FOUND: "no such order",
    C.INVALID_INSTRUMENT: "unknown or untradable instrument",
    C.MARKET_CLOSED: "market closed",
    C.NOT_SUPPORTED: "not supported by the exchange",
    C.INVALID_QUANTITY: "quantity refused",
    C.INVALID_PRICE: "price refused",
    C.DENIED: "refused by the exchange",
    C.INVALID_REQUEST: "request refused",
}


def _by_status(status: int) -> ErrorCode | None:
    if status in (418, 429):
        return C.RATE_LIMITED
    if status in (408, 504):
        return C.CONNECTION_ERROR
    if status >= 500:
        return C.SERVICE_UNAVAILABLE
    if status in (401, 403):
        return C.AUTHENTICATION_FAILED
    if status >= 400:
        return C.INVALID_REQUEST
    return None


def _by_class(exc: BaseException) -> ErrorCode:
    if isinstance(exc.__cause__, aiohttp.ClientError):
        # ccxt maps the aiohttp errors it does not list (ClientPayloadError: the answer broke off after the
        # status line …) to a bare ExchangeError, a refusal in its hierarchy; the exchange may have acted on it.
        return C.CONNECTION_ERROR
    for cls, code in _BY_CLASS:
        if isinstance(exc, cls):
            return code
    return C.SERVICE_UNAVAILABLE


def classify(exc: BaseException, lookup: ErrorLookup) -> tuple[ErrorCode, BrokerError | None, HttpAnswer | None]:
    """The standard code of an error, what the exchange's table found, and the HTTP answer (pure)."""
    answer = answer_of(exc)
    found = lookup(answer.body) if answer is not None and answer.body is not None else None
    if answer is not None and answer.status in (418, 429):
        return C.RATE_LIMITED, found, answer  # whatever the body says, the request was refused for its rate
    if found is not None:
        return found.code, found, answer
    if answer is not None and answer.status >= 400:
        by_status = _by_status(answer.status)
        assert by_status is not None
        if by_status is not C.INVALID_REQUEST:
            return by_status, None, answer
        # A 4xx ccxt recognised more precisely (insufficient funds, unknown order …); its class for a bare
        # 400/404 is a network error, which a 4xx is not.
        by_class = _by_class(exc)
        transient = (C.CONNECTION_ERROR, C.SERVICE_UNAVAILABLE, C.RATE_LIMITED)
        return (C.INVALID_REQUEST if by_class in transient else by_class), None, answer
    return _by_class(exc), None, answer


def translate(exc: BaseException, lookup: ErrorLookup, *, exchange: str, action: str) -> TradingError:
    """The typed error for ``exc``; its message names the exchange and the action, never a URL or a key."""
    code, found, answer = classify(exc, lookup)
    why = _WHY.get(code, "failed")
    status = f" (HTTP {answer.status})" if answer is not None else ""
    message = f"{exchange} {action}: {why}{status}"
    retry_after = answer.retry_after if answer is not None and code is C.RATE_LIMITED else None
    return error_for(
        code, message,
        broker_code=found.broker_code if found else (str(answer.status) if answer is not None else type(exc).__name__),
        broker_message=found.broker_message if found else _short(answer),
        retry_after=retry_after,
    )  # fmt: skip


def _short(answer: HttpAnswer | None) -> str | None:
    if answer is None:
        return None
    return answer.text[:200] or None


def outcome_unknown(error: TradingError) -> bool:
    """After sending a new order: True if the exchange may have it (look it up; never resend)."""
    return error.code in (C.CONNECTION_ERROR, C.SERVICE_UNAVAILABLE)
