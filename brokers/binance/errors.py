"""Binance spot error codes → standard codes: the one table, read from the ``{"code": -2010, "msg": "…"}`` body.

Some codes carry several failures told apart only by the message: -1013 names the
filter that failed, -2010 why a new order was rejected. Those rows are keyed
``"code/fragment"`` and matched on the message (case-insensitive) before the bare
code. -1007 (timeout) and the -100x internal errors mean the execution status is
unknown: SERVICE_UNAVAILABLE, which after a new order means "look it up".
"""

from __future__ import annotations

from typing import Any

from brokers.ccxt.errors import BrokerError
from host.trading.errors import ErrorCode

__all__ = ["BINANCE_ERRORS", "binance_error"]

C = ErrorCode

BINANCE_ERRORS: dict[str, ErrorCode] = {
    "-1000": C.SERVICE_UNAVAILABLE,  # UNKNOWN: an unknown error occurred while processing the request
    "-1001": C.SERVICE_UNAVAILABLE,  # DISCONNECTED: internal error; unable to process your request
    "-1002": C.AUTHENTICATION_FAILED,  # UNAUTHORIZED
    "-1003": C.RATE_LIMITED,  # TOO_MANY_REQUESTS: request weight or IP ban
    "-1006": C.SERVICE_UNAVAILABLE,  # UNEXPECTED_RESP: execution status unknown
    "-1007": C.SERVICE_UNAVAILABLE,  # TIMEOUT: execution status unknown
    "-1008": C.SERVICE_UNAVAILABLE,  # SERVER_BUSY
    "-1013": C.INVALID_REQUEST,  # INVALID_MESSAGE: filter failures, refined below
    "-1013/LOT_SIZE": C.INVALID_QUANTITY,
    "-1013/MARKET_LOT_SIZE": C.INVALID_QUANTITY,
    "-1013/MIN_NOTIONAL": C.INVALID_QUANTITY,
    "-1013/NOTIONAL": C.INVALID_QUANTITY,
    "-1013/PRICE_FILTER": C.INVALID_PRICE,
    "-1013/PERCENT_PRICE": C.INVALID_PRICE,
    "-1013/MAX_NUM_ORDERS": C.DENIED,
    "-1013/MAX_NUM_ALGO_ORDERS": C.DENIED,
    "-1013/MAX_POSITION": C.DENIED,
    "-1014": C.NOT_SUPPORTED,  # UNKNOWN_ORDER_COMPOSITION
    "-1015": C.RATE_LIMITED,  # TOO_MANY_ORDERS: order count limit
    "-1016": C.SERVICE_UNAVAILABLE,  # SERVICE_SHUTTING_DOWN
    "-1020": C.NOT_SUPPORTED,  # UNSUPPORTED_OPERATION
    "-1021": C.INVALID_REQUEST,  # INVALID_TIMESTAMP: our clock is outside recvWindow
    "-1022": C.AUTHENTICATION_FAILED,  # INVALID_SIGNATURE
    "-1100": C.INVALID_REQUEST,  # ILLEGAL_CHARS
    "-1101": C.INVALID_REQUEST,  # TOO_MANY_PARAMETERS
    "-1102": C.INVALID_REQUEST,  # MANDATORY_PARAM_EMPTY_OR_MALFORMED
    "-1103": C.INVALID_REQUEST,  # UNKNOWN_PARAM
    "-1104": C.INVALID_REQUEST,  # UNREAD_PARAMETERS
    "-1105": C.INVALID_REQUEST,  # PARAM_EMPTY
    "-1106": C.INVALID_REQUEST,  # PARAM_NOT_REQUIRED
    "-1111": C.INVALID_REQUEST,  # BAD_PRECISION
    "-1115": C.NOT_SUPPORTED,  # INVALID_TIF
    "-1116": C.NOT_SUPPORTED,  # INVALID_ORDER_TYPE
    "-1117": C.INVALID_REQUEST,  # INVALID_SIDE
    "-1121": C.INVALID_INSTRUMENT,  # BAD_SYMBOL
    "-2010": C.INVALID_REQUEST,  # NEW_ORDER_REJECTED, refined below
    "-2010/insufficient balance": C.INSUFFICIENT_FUNDS,
    "-2010/market is closed": C.MARKET_CLOSED,
    "-2010/would immediately match": C.INVALID_PRICE,
    "-2010/would trigger immediately": C.INVALID_PRICE,
    "-2010/action is disabled": C.DENIED,
    "-2010/not whitelisted": C.DENIED,
    "-2010/unsupported order combination": C.NOT_SUPPORTED,
    "-2011": C.ORDER_NOT_FOUND,  # CANCEL_REJECTED: unknown order sent
    "-2013": C.ORDER_NOT_FOUND,  # NO_SUCH_ORDER
    "-2014": C.AUTHENTICATION_FAILED,  # BAD_API_KEY_FMT
    "-2015": C.AUTHENTICATION_FAILED,  # REJECTED_MBX_KEY: bad key, IP or permissions
    "-2016": C.MARKET_CLOSED,  # NO_TRADING_WINDOW
    "-2026": C.ORDER_NOT_FOUND,  # ORDER_ARCHIVED
}


def binance_error(body: Any) -> BrokerError | None:
    """The table's answer for a Binance error body; None if the body is not one or its code is not listed."""
    if not isinstance(body, dict) or "code" not in body:
        return None
    code = str(body.get("code"))
    message = str(body.get("msg") or "")
    lowered = message.lower()
    for key, standard in BINANCE_ERRORS.items():
        prefix, _, fragment = key.partition("/")
        if fragment and prefix == code and _matches(fragment, message, lowered):
            return BrokerError(standard, code, message or None)
    plain_code = BINANCE_ERRORS.get(code)
    return None if plain_code is None else BrokerError(plain_code, code, message or None)


def _matches(fragment: str, message: str, lowered: str) -> bool:
    # Filter names are matched as whole words in capitals ("NOTIONAL" must not match "MIN_NOTIONAL").
    if fragment.isupper():
        return f"Filter failure: {fragment}" in message and not message.split(f"Filter failure: {fragment}", 1)[1][:1].isalnum()
    return fragment in lowered
