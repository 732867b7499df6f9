"""The one error table, word by word, and the typed errors built from OANDA's answers."""

from __future__ import annotations

import pytest

from brokers.oanda.errors import ERROR_TABLE, error_from_answer, error_from_reason, standard_code
from host.trading.errors import (
    AuthenticationFailed,
    Denied,
    ErrorCode,
    InsufficientFunds,
    InvalidInstrument,
    InvalidPrice,
    InvalidQuantity,
    InvalidRequest,
    MarketClosed,
    NotSupported,
    OrderNotFound,
    RateLimited,
    ServiceUnavailable,
)

from .server import fixture

E = ErrorCode


@pytest.mark.parametrize(
    ("word", "code"),
    [
        # OrderCancelReason: an accepted order killed at once or later.
        ("MARKET_HALTED", E.MARKET_CLOSED),
        ("INSUFFICIENT_MARGIN", E.INSUFFICIENT_FUNDS),
        ("INSUFFICIENT_LIQUIDITY", E.INVALID_QUANTITY),
        ("STOP_LOSS_ON_FILL_LOSS", E.INVALID_PRICE),
        ("TAKE_PROFIT_ON_FILL_LOSS", E.INVALID_PRICE),
        ("LOSING_TAKE_PROFIT", E.INVALID_PRICE),
        ("BOUNDS_VIOLATION", E.INVALID_PRICE),
        ("FIFO_VIOLATION", E.DENIED),
        ("POSITION_SIZE_EXCEEDED", E.INVALID_QUANTITY),
        ("ACCOUNT_LOCKED", E.DENIED),
        ("ACCOUNT_ORDER_FILL_LOCKED", E.DENIED),
        ("OPEN_TRADES_ALLOWED_EXCEEDED", E.DENIED),
        ("CLIENT_TRADE_ID_ALREADY_EXISTS", E.INVALID_REQUEST),
        ("TIME_IN_FORCE_EXPIRED", E.INVALID_REQUEST),
        ("INTERNAL_SERVER_ERROR", E.SERVICE_UNAVAILABLE),
        # TransactionRejectReason: a 400/404 with a ...RejectTransaction.
        ("INSTRUMENT_NOT_TRADEABLE", E.INVALID_INSTRUMENT),
        ("INSTRUMENT_UNKNOWN", E.INVALID_INSTRUMENT),
        ("INSTRUMENT_PRICE_UNKNOWN", E.MARKET_CLOSED),
        ("UNITS_LIMIT_EXCEEDED", E.INVALID_QUANTITY),
        ("UNITS_PRECISION_EXCEEDED", E.INVALID_QUANTITY),
        ("UNITS_MIMIMUM_NOT_MET", E.INVALID_QUANTITY),
        ("PRICE_PRECISION_EXCEEDED", E.INVALID_PRICE),
        ("PRICE_BOUND_INVALID", E.INVALID_PRICE),
        ("STOP_LOSS_ON_FILL_PRICE_PRECISION_EXCEEDED", E.INVALID_PRICE),
        ("TAKE_PROFIT_ON_FILL_PRICE_INVALID", E.INVALID_PRICE),
        ("TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_MINIMUM_NOT_MET", E.INVALID_PRICE),
        ("CLIENT_ORDER_ID_ALREADY_EXISTS", E.INVALID_REQUEST),
        ("TIME_IN_FORCE_INVALID", E.INVALID_REQUEST),
        ("ORDER_DOESNT_EXIST", E.ORDER_NOT_FOUND),
        ("ACCOUNT_NOT_ACTIVE", E.DENIED),
        ("PENDING_ORDERS_ALLOWED_EXCEEDED", E.DENIED),
        ("STOP_LOSS_ON_FILL_REQUIRED", E.DENIED),
        ("TRAILING_STOP_LOSS_ORDERS_NOT_SUPPORTED", E.NOT_SUPPORTED),
        ("INSUFFICIENT_FUNDS", E.INSUFFICIENT_FUNDS),
        # errorCode values of plain errors.
        ("NO_SUCH_ORDER", E.ORDER_NOT_FOUND),
        ("NO_SUCH_TRANSACTION", E.INVALID_REQUEST),
    ],
)
def test_each_oanda_word_has_its_standard_code(word: str, code: ErrorCode) -> None:
    assert ERROR_TABLE[word] is code
    assert standard_code(word) is code


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, E.INVALID_REQUEST), (401, E.AUTHENTICATION_FAILED), (403, E.AUTHENTICATION_FAILED), (404, E.ORDER_NOT_FOUND),
     (405, E.INVALID_REQUEST), (429, E.RATE_LIMITED), (500, E.SERVICE_UNAVAILABLE), (503, E.SERVICE_UNAVAILABLE),
     (599, E.SERVICE_UNAVAILABLE), (418, E.INVALID_REQUEST)],
)  # fmt: skip
def test_an_unknown_word_falls_back_to_the_http_status(status: int, code: ErrorCode) -> None:
    assert standard_code("A_WORD_OANDA_ADDS_LATER", status) is code
    assert standard_code(None, status) is code


def test_every_entry_is_a_standard_code() -> None:
    assert all(isinstance(code, ErrorCode) for code in ERROR_TABLE.values())
    assert all(isinstance(key, int) or key == key.upper() for key in ERROR_TABLE)


def test_a_reject_keeps_the_reason_and_the_message() -> None:
    error = error_from_answer(400, fixture("order_reject_units_limit.json"), "POST /orders")
    assert isinstance(error, InvalidQuantity)
    assert (error.broker_code, error.broker_message) == ("UNITS_LIMIT_EXCEEDED", "Order units specified exceed maximum order units allowed")
    assert error.message == "OANDA refused POST /orders (HTTP 400)"
    assert str(error) == "INVALID_QUANTITY: OANDA refused POST /orders (HTTP 400) (broker: UNITS_LIMIT_EXCEEDED Order units specified exceed maximum order units allowed)"


@pytest.mark.parametrize(
    ("status", "name", "kind", "broker_code"),
    [
        (401, "error_unauthorized.json", AuthenticationFailed, "HTTP 401"),
        (400, "error_invalid_instrument.json", InvalidRequest, "HTTP 400"),
        (404, "order_not_found.json", OrderNotFound, "NO_SUCH_ORDER"),
        (404, "order_cancel_not_found.json", OrderNotFound, "ORDER_DOESNT_EXIST"),
    ],
)
def test_plain_errors_and_cancel_rejects(status: int, name: str, kind: type, broker_code: str) -> None:
    error = error_from_answer(status, fixture(name), "a request")
    assert isinstance(error, kind) and error.broker_code == broker_code and error.broker_message


def test_an_unlisted_reason_lets_the_error_code_speak_then_the_status() -> None:
    body = {"orderRejectTransaction": {"rejectReason": "SOMETHING_NEW"}, "errorCode": "INSUFFICIENT_MARGIN", "errorMessage": "m"}
    error = error_from_answer(400, body, "x")
    assert isinstance(error, InsufficientFunds) and error.broker_code == "SOMETHING_NEW"
    assert isinstance(error_from_answer(400, {"orderRejectTransaction": {"rejectReason": "SOMETHING_NEW"}}, "x"), InvalidRequest)


def test_rate_limits_and_outages_carry_what_retrying_needs() -> None:
    limited = error_from_answer(429, {}, "GET /summary", retry_after=2.5)
    assert isinstance(limited, RateLimited) and limited.retry_after == 2.5 and limited.broker_code == "HTTP 429"
    assert isinstance(error_from_answer(502, {"errorMessage": "bad gateway"}, "x"), ServiceUnavailable)


def test_a_cancel_reason_becomes_a_typed_error() -> None:
    for reason, kind in (("MARKET_HALTED", MarketClosed), ("STOP_LOSS_ON_FILL_LOSS", InvalidPrice), ("ACCOUNT_LOCKED", Denied),
                         ("TRAILING_STOP_LOSS_ORDERS_NOT_SUPPORTED", NotSupported), ("INSTRUMENT_NOT_TRADEABLE", InvalidInstrument)):  # fmt: skip
        error = error_from_reason(reason, "the order")
        assert isinstance(error, kind) and error.broker_code == reason and error.message == "OANDA cancelled the order"
