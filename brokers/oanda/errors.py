"""OANDA's error words → our standard codes: one table, and the typed errors built from it (pure).

OANDA explains a refusal in one of three places: an ``OrderCancelReason``
(an order accepted, then killed at once or later), a ``TransactionRejectReason``
(``rejectReason`` of a ``...RejectTransaction`` in a 400/404 body) or a plain
``errorCode``. The three vocabularies share their words (``INSUFFICIENT_MARGIN``
is both a cancel and a reject reason, with one meaning), so one table holds
them all, with the HTTP status as the fallback for a word it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from host.trading.errors import ErrorCode, TradingError, error_for

__all__ = ["ERROR_TABLE", "MalformedAnswer", "error_from_answer", "error_from_reason", "standard_code"]


class MalformedAnswer(ValueError):
    """OANDA answered with a body that is not the JSON its documentation describes."""


def _words(code: ErrorCode, *words: str) -> dict[str | int, ErrorCode]:
    return dict.fromkeys(words, code)


E = ErrorCode

ERROR_TABLE: dict[str | int, ErrorCode] = {
    # HTTP status, used when the body names no word the table knows.
    400: E.INVALID_REQUEST,
    401: E.AUTHENTICATION_FAILED,
    403: E.AUTHENTICATION_FAILED,  # "The provided request was forbidden": the token does not reach this account
    404: E.ORDER_NOT_FOUND,
    405: E.INVALID_REQUEST,
    429: E.RATE_LIMITED,
    500: E.SERVICE_UNAVAILABLE,
    502: E.SERVICE_UNAVAILABLE,
    503: E.SERVICE_UNAVAILABLE,
    504: E.SERVICE_UNAVAILABLE,
    **_words(E.AUTHENTICATION_FAILED, "INSUFFICIENT_AUTHORIZATION", "INVALID_AUTHORIZATION", "UNAUTHORIZED"),
    **_words(
        E.INSUFFICIENT_FUNDS,
        "INSUFFICIENT_MARGIN", "INSUFFICIENT_FUNDS", "MARGIN_CHECK_VIOLATION", "REGULATORY_MARGIN_CALL_VIOLATION",
    ),
    **_words(E.INVALID_INSTRUMENT, "INSTRUMENT_MISSING", "INSTRUMENT_UNKNOWN", "INSTRUMENT_NOT_TRADEABLE", "INVALID_INSTRUMENT"),
    **_words(
        E.INVALID_QUANTITY,
        "UNITS_MISSING", "UNITS_INVALID", "UNITS_PRECISION_EXCEEDED", "UNITS_LIMIT_EXCEEDED", "UNITS_MIMIMUM_NOT_MET",
        "UNITS_MINIMUM_NOT_MET", "POSITION_SIZE_EXCEEDED", "ACCOUNT_POSITION_VALUE_LIMIT_EXCEEDED", "INSUFFICIENT_LIQUIDITY",
        "CLOSE_TRADE_UNITS_EXCEED_TRADE_SIZE", "CLOSEOUT_POSITION_UNITS_EXCEED_POSITION_SIZE",
    ),
    **_words(
        E.INVALID_PRICE,
        "PRICE_MISSING", "PRICE_INVALID", "PRICE_PRECISION_EXCEEDED", "PRICE_DISTANCE_MISSING", "PRICE_DISTANCE_INVALID",
        "PRICE_DISTANCE_PRECISION_EXCEEDED", "PRICE_DISTANCE_MAXIMUM_EXCEEDED", "PRICE_DISTANCE_MINIMUM_NOT_MET",
        "PRICE_BOUND_INVALID", "PRICE_BOUND_PRECISION_EXCEEDED", "BOUNDS_VIOLATION", "LOSING_TAKE_PROFIT",
        "STOP_LOSS_ON_FILL_LOSS", "TAKE_PROFIT_ON_FILL_LOSS",
        "STOP_LOSS_ON_FILL_PRICE_MISSING", "STOP_LOSS_ON_FILL_PRICE_INVALID", "STOP_LOSS_ON_FILL_PRICE_PRECISION_EXCEEDED",
        "STOP_LOSS_ON_FILL_DISTANCE_INVALID", "STOP_LOSS_ON_FILL_DISTANCE_PRECISION_EXCEEDED",
        "STOP_LOSS_ON_FILL_PRICE_DISTANCE_MAXIMUM_EXCEEDED", "STOP_LOSS_ON_FILL_PRICE_AND_DISTANCE_BOTH_SPECIFIED",
        "STOP_LOSS_ON_FILL_PRICE_AND_DISTANCE_BOTH_MISSING", "STOP_LOSS_ON_FILL_GUARANTEED_MINIMUM_DISTANCE_NOT_MET",
        "STOP_LOSS_ON_FILL_GUARANTEED_LEVEL_RESTRICTION_EXCEEDED",
        "TAKE_PROFIT_ON_FILL_PRICE_MISSING", "TAKE_PROFIT_ON_FILL_PRICE_INVALID", "TAKE_PROFIT_ON_FILL_PRICE_PRECISION_EXCEEDED",
        "TAKE_PROFIT_ON_FILL_PRICE_DISTANCE_MAXIMUM_EXCEEDED",
        "TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_MISSING", "TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_INVALID",
        "TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_PRECISION_EXCEEDED", "TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_MAXIMUM_EXCEEDED",
        "TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_MINIMUM_NOT_MET",
    ),
    **_words(E.MARKET_CLOSED, "MARKET_HALTED", "INSTRUMENT_PRICE_UNKNOWN"),
    **_words(E.ORDER_NOT_FOUND, "ORDER_DOESNT_EXIST", "NO_SUCH_ORDER", "ORDER_IDENTIFIER_INCONSISTENCY"),
    **_words(
        # The broker's own controls refused the order: the account, not the request, is the problem.
        E.DENIED,
        "ACCOUNT_NOT_ACTIVE", "ACCOUNT_LOCKED", "ACCOUNT_NEW_POSITIONS_LOCKED", "ACCOUNT_ORDER_CREATION_LOCKED",
        "ACCOUNT_ORDER_FILL_LOCKED", "ACCOUNT_ORDER_CANCEL_LOCKED", "ACCOUNT_NOT_TRADABLE", "OPEN_TRADES_ALLOWED_EXCEEDED",
        "PENDING_ORDERS_ALLOWED_EXCEEDED", "FIFO_VIOLATION", "HEDGING_GSLO_VIOLATION", "STOP_LOSS_ON_FILL_REQUIRED",
        "STOP_LOSS_ON_FILL_REQUIRED_FOR_PENDING_ORDER", "STOP_LOSS_ON_FILL_GUARANTEED_REQUIRED",
        "STOP_LOSS_ON_FILL_GUARANTEED_HEDGING_NOT_ALLOWED",
    ),
    **_words(
        E.NOT_SUPPORTED,
        "TRAILING_STOP_LOSS_ORDERS_NOT_SUPPORTED", "TRADE_ON_FILL_CLIENT_EXTENSIONS_NOT_SUPPORTED",
        "STOP_LOSS_ON_FILL_GUARANTEED_NOT_ALLOWED",
    ),
    **_words(E.SERVICE_UNAVAILABLE, "INTERNAL_SERVER_ERROR"),
    **_words(
        E.INVALID_REQUEST,
        "CLIENT_ORDER_ID_ALREADY_EXISTS", "CLIENT_ORDER_ID_INVALID", "CLIENT_ORDER_TAG_INVALID", "CLIENT_ORDER_COMMENT_INVALID",
        "CLIENT_TRADE_ID_ALREADY_EXISTS", "CLIENT_TRADE_ID_INVALID", "ORDERS_ON_FILL_DUPLICATE_CLIENT_ORDER_IDS",
        "TAKE_PROFIT_ON_FILL_CLIENT_ORDER_ID_ALREADY_EXISTS", "STOP_LOSS_ON_FILL_CLIENT_ORDER_ID_ALREADY_EXISTS",
        "TRAILING_STOP_LOSS_ON_FILL_CLIENT_ORDER_ID_ALREADY_EXISTS", "TIME_IN_FORCE_MISSING", "TIME_IN_FORCE_INVALID",
        "TIME_IN_FORCE_GTD_TIMESTAMP_MISSING", "TIME_IN_FORCE_GTD_TIMESTAMP_IN_PAST", "TIME_IN_FORCE_EXPIRED",
        "STOP_LOSS_ON_FILL_TIME_IN_FORCE_INVALID", "TAKE_PROFIT_ON_FILL_TIME_IN_FORCE_INVALID",
        "TRIGGER_CONDITION_MISSING", "TRIGGER_CONDITION_INVALID", "ORDER_PARTIAL_FILL_OPTION_MISSING",
        "ORDER_PARTIAL_FILL_OPTION_INVALID", "ORDER_FILL_POSITION_ACTION_MISSING", "ORDER_FILL_POSITION_ACTION_INVALID",
        "ORDER_ID_UNSPECIFIED", "REPLACING_ORDER_INVALID", "STOP_LOSS_ORDER_NOT_CANCELABLE", "STOP_LOSS_ORDER_NOT_REPLACEABLE",
        "TAKE_PROFIT_ORDER_ALREADY_EXISTS", "STOP_LOSS_ORDER_ALREADY_EXISTS", "TRAILING_STOP_LOSS_ORDER_ALREADY_EXISTS",
        "NO_SUCH_TRADE", "TRADE_DOESNT_EXIST", "NO_SUCH_TRANSACTION", "INVALID_ACCOUNT_ID", "MALFORMED_REQUEST",
        # Cancel reasons that name no fault of the order's terms (the order was simply cancelled or replaced).
        "CLIENT_REQUEST", "CLIENT_REQUEST_REPLACED", "LINKED_TRADE_CLOSED", "MIGRATION", "POSITION_CLOSEOUT_FAILED",
    ),
}  # fmt: skip
"""Every OANDA word (cancel reason, reject reason, errorCode) and HTTP status we map, to our standard code."""


def standard_code(broker_code: str | None, status: int | None = None) -> ErrorCode:
    """The standard code of an OANDA word, else of the HTTP status, else INVALID_REQUEST."""
    if broker_code is not None and broker_code in ERROR_TABLE:
        return ERROR_TABLE[broker_code]
    if status is not None:
        if status in ERROR_TABLE:
            return ERROR_TABLE[status]
        if status >= 500:
            return ErrorCode.SERVICE_UNAVAILABLE
    return ErrorCode.INVALID_REQUEST


def _reject_transaction(body: Mapping[str, Any]) -> Mapping[str, Any]:
    # orderRejectTransaction, orderCancelRejectTransaction, ...: whichever the endpoint sent.
    for key, value in body.items():
        if key.endswith("RejectTransaction") and isinstance(value, Mapping):
            return value
    return {}


def error_from_answer(status: int, body: Mapping[str, Any], what: str, *, retry_after: float | None = None) -> TradingError:
    """The typed error of a non-2xx answer; OANDA's reason (or errorCode) and errorMessage are kept."""
    reason = _reject_transaction(body).get("rejectReason")
    error_code = body.get("errorCode")
    broker_code = str(reason or error_code or f"HTTP {status}")
    message = body.get("errorMessage")
    broker_message = str(message)[:500] if message else None
    code = standard_code(str(reason) if reason else str(error_code) if error_code else None, status)
    if code is ErrorCode.INVALID_REQUEST and reason and error_code:
        code = standard_code(str(error_code), status)  # an unlisted reason; the errorCode may still say more
    # The broker's code and message travel beside ours (TradingError shows them), not inside it.
    return error_for(code, f"OANDA refused {what} (HTTP {status})", broker_code=broker_code, broker_message=broker_message, retry_after=retry_after)


def error_from_reason(reason: str, what: str) -> TradingError:
    """The typed error of an order OANDA accepted and then cancelled, from its OrderCancelReason."""
    return error_for(standard_code(reason), f"OANDA cancelled {what}", broker_code=reason)
