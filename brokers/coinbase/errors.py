"""Coinbase Advanced Trade error words → standard codes: the one table, whichever field carries the word.

A rejected order is HTTP 200 with ``success: false`` and ``error_response.error``
(``INSUFFICIENT_FUND`` …), often with a more precise
``error_response.preview_failure_reason``; a refused cancel is HTTP 200 with
``results[].failure_reason``; a refused edit HTTP 200 with ``errors[].edit_failure_reason``;
other failures are non-2xx with ``{"error": "NOT_FOUND", "message": …}``. ccxt maps
only a few of these, so every word is looked up here, the most precise field first.
A body that says ``success: true`` is no refusal whatever else it holds (ccxt raises on
any ``error_response`` object): the exchange acted, and its answer could not be read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from brokers.ccxt.errors import BrokerError
from host.trading.errors import ErrorCode

__all__ = ["COINBASE_ERRORS", "coinbase_error"]

C = ErrorCode

COINBASE_ERRORS: dict[str, ErrorCode] = {
    # new-order failure reasons (error_response.error)
    "UNSUPPORTED_ORDER_CONFIGURATION": C.NOT_SUPPORTED,
    "INVALID_SIDE": C.INVALID_REQUEST,
    "INVALID_PRODUCT_ID": C.INVALID_INSTRUMENT,
    "INVALID_SIZE_PRECISION": C.INVALID_QUANTITY,
    "INVALID_PRICE_PRECISION": C.INVALID_PRICE,
    "INSUFFICIENT_FUND": C.INSUFFICIENT_FUNDS,
    "INSUFFICIENT_FUNDS": C.INSUFFICIENT_FUNDS,
    "INVALID_LEDGER_BALANCE": C.INSUFFICIENT_FUNDS,
    "ORDER_ENTRY_DISABLED": C.MARKET_CLOSED,
    "INELIGIBLE_PAIR": C.INVALID_INSTRUMENT,
    "INVALID_LIMIT_PRICE_POST_ONLY": C.INVALID_PRICE,
    "INVALID_LIMIT_PRICE": C.INVALID_PRICE,
    "INVALID_NO_LIQUIDITY": C.INVALID_REQUEST,
    "INVALID_REQUEST": C.INVALID_REQUEST,
    "COMMANDER_REJECTED_NEW_ORDER": C.DENIED,
    "UNKNOWN_FAILURE_REASON": C.INVALID_REQUEST,
    # preview failure reasons (error_response.preview_failure_reason, more precise than the above)
    "PREVIEW_INSUFFICIENT_FUND": C.INSUFFICIENT_FUNDS,
    "PREVIEW_INSUFFICIENT_FUNDS_FOR_FUTURES": C.INSUFFICIENT_FUNDS,
    "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL": C.INVALID_QUANTITY,
    "PREVIEW_INVALID_BASE_SIZE_TOO_LARGE": C.INVALID_QUANTITY,
    "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL": C.INVALID_QUANTITY,
    "PREVIEW_INVALID_QUOTE_SIZE_TOO_LARGE": C.INVALID_QUANTITY,
    "PREVIEW_INVALID_QUOTE_SIZE_PRECISION": C.INVALID_QUANTITY,
    "PREVIEW_INVALID_PRICE_PRECISION": C.INVALID_PRICE,
    "PREVIEW_INVALID_LIMIT_PRICE": C.INVALID_PRICE,
    "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY": C.INVALID_PRICE,
    "PREVIEW_INVALID_STOP_PRICE": C.INVALID_PRICE,
    "PREVIEW_STOP_PRICE_ABOVE_LAST_TRADE_PRICE": C.INVALID_PRICE,
    "PREVIEW_STOP_PRICE_BELOW_LAST_TRADE_PRICE": C.INVALID_PRICE,
    "PREVIEW_INSUFFICIENT_LIQUIDITY": C.INVALID_REQUEST,
    "PREVIEW_INVALID_ORDER_CONFIG": C.NOT_SUPPORTED,
    "PREVIEW_PRODUCT_NOT_TRADABLE": C.MARKET_CLOSED,
    "UNKNOWN_PREVIEW_FAILURE_REASON": C.INVALID_REQUEST,
    # cancel failure reasons (results[].failure_reason)
    "UNKNOWN_CANCEL_ORDER": C.ORDER_NOT_FOUND,
    "DUPLICATE_CANCEL_REQUEST": C.ORDER_NOT_FOUND,
    "INVALID_CANCEL_REQUEST": C.INVALID_REQUEST,
    "INVALID_CANCEL_PRODUCT_ID": C.INVALID_INSTRUMENT,
    "COMMANDER_REJECTED_CANCEL_ORDER": C.DENIED,
    "NOT_ALLOWED_TO_CANCEL": C.DENIED,
    "UNKNOWN_CANCEL_FAILURE_REASON": C.INVALID_REQUEST,
    # edit failure reasons (errors[].edit_failure_reason)
    "ORDER_NOT_FOUND": C.ORDER_NOT_FOUND,
    "ONLY_OPEN_ORDERS_CAN_BE_EDITED": C.ORDER_NOT_FOUND,
    "ONLY_LIMIT_ORDER_EDITS_SUPPORTED": C.NOT_SUPPORTED,
    "CANNOT_EDIT_TO_BELOW_FILLED_SIZE": C.INVALID_QUANTITY,
    "INVALID_EDITED_SIZE": C.INVALID_QUANTITY,
    "INVALID_EDITED_PRICE": C.INVALID_PRICE,
    "EDIT_REQUEST_EQUAL_TO_ORIGINAL_REQUEST": C.INVALID_REQUEST,
    "COMMANDER_REJECTED_EDIT_ORDER": C.DENIED,
    "UNKNOWN_EDIT_ORDER_FAILURE_REASON": C.INVALID_REQUEST,
    # non-2xx "error" words
    "INVALID_ARGUMENT": C.INVALID_REQUEST,
    "NOT_FOUND": C.ORDER_NOT_FOUND,
    "PERMISSION_DENIED": C.AUTHENTICATION_FAILED,
    "UNAUTHENTICATED": C.AUTHENTICATION_FAILED,
    "UNAUTHORIZED": C.AUTHENTICATION_FAILED,
    "AUTHENTICATION_ERROR": C.AUTHENTICATION_FAILED,
    "INVALID_TOKEN": C.AUTHENTICATION_FAILED,
    "EXPIRED_TOKEN": C.AUTHENTICATION_FAILED,
    "RATE_LIMIT_EXCEEDED": C.RATE_LIMITED,
    "RESOURCE_EXHAUSTED": C.RATE_LIMITED,
    "INTERNAL": C.SERVICE_UNAVAILABLE,
    "INTERNAL_SERVER_ERROR": C.SERVICE_UNAVAILABLE,
    "UNAVAILABLE": C.SERVICE_UNAVAILABLE,
    "DEADLINE_EXCEEDED": C.SERVICE_UNAVAILABLE,
}

_VAGUE = frozenset({"UNKNOWN_FAILURE_REASON", "UNKNOWN_PREVIEW_FAILURE_REASON", "UNKNOWN_CANCEL_FAILURE_REASON", "UNKNOWN_EDIT_ORDER_FAILURE_REASON", ""})


def _words(body: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    """Every error word in a body with the message beside it, most precise first."""
    response = body.get("error_response")
    if isinstance(response, dict):
        message = response.get("message") or response.get("error_details")
        for key in ("preview_failure_reason", "new_order_failure_reason", "error"):
            yield str(response.get(key) or ""), message
    for entry in body.get("errors") or []:
        if isinstance(entry, dict):
            for key in ("edit_failure_reason", "preview_failure_reason", "id"):
                yield str(entry.get(key) or ""), entry.get("message")
    yield str(body.get("failure_reason") or ""), None
    yield str(body.get("error") or ""), body.get("message") or body.get("error_details")


def coinbase_error(body: Any) -> BrokerError | None:
    """The table's answer for a Coinbase body; a vague word only when nothing more precise is there."""
    if not isinstance(body, dict):
        return None
    if body.get("success") is True:
        return BrokerError(C.SERVICE_UNAVAILABLE, "success", "the answer says success but could not be read")
    vague: BrokerError | None = None
    for word, message in _words(body):
        code = COINBASE_ERRORS.get(word.upper())
        if code is None:
            if word.lower() == "unknown" and "not found" in str(message or "").lower():
                return BrokerError(C.ORDER_NOT_FOUND, word, str(message))
            continue
        found = BrokerError(code, word, str(message) if message else None)
        if word.upper() not in _VAGUE:
            return found
        vague = vague or found
    return vague
