"""ccxt errors → standard codes: the exchange's table first, then the HTTP status, then ccxt's class."""

from __future__ import annotations

from typing import Any

import ccxt
import pytest

from brokers.ccxt.errors import BrokerError, MalformedAnswer, classify, outcome_unknown, translate
from brokers.ccxt.exchange import HttpAnswer
from host.trading.errors import ConnectionFailed, ErrorCode, InvalidRequest, RateLimited, ServiceUnavailable

C = ErrorCode


def with_answer(exc: BaseException, status: int, body: Any = None, retry_after: float | None = None, text: str = "") -> BaseException:
    exc.tradehost_answer = HttpAnswer(status, retry_after, body, text)  # type: ignore[attr-defined]
    return exc


def table(body: Any) -> BrokerError | None:
    """A one-row exchange table: {"code": 7} means insufficient funds."""
    if isinstance(body, dict) and body.get("code") == 7:
        return BrokerError(C.INSUFFICIENT_FUNDS, "7", body.get("msg"))
    return None


def test_the_exchange_table_wins_over_status_and_class() -> None:
    exc = with_answer(ccxt.ExchangeNotAvailable("x"), 400, {"code": 7, "msg": "no money"})
    code, found, _ = classify(exc, table)
    assert code is C.INSUFFICIENT_FUNDS and found is not None and found.broker_message == "no money"


def test_429_is_a_rate_limit_with_retry_after_whatever_the_body_says() -> None:
    exc = with_answer(ccxt.DDoSProtection("x"), 429, {"code": 7}, retry_after=3.0)
    error = translate(exc, table, exchange="Ex", action="new order")
    assert isinstance(error, RateLimited) and error.retry_after == 3.0
    assert error.broker_code == "7"  # the body's code is still kept beside ours


@pytest.mark.parametrize(
    ("status", "code"),
    [(418, C.RATE_LIMITED), (408, C.CONNECTION_ERROR), (504, C.CONNECTION_ERROR), (500, C.SERVICE_UNAVAILABLE),
     (503, C.SERVICE_UNAVAILABLE), (401, C.AUTHENTICATION_FAILED), (403, C.AUTHENTICATION_FAILED), (400, C.INVALID_REQUEST),
     (404, C.INVALID_REQUEST)],
)  # fmt: skip
def test_an_unknown_body_is_classified_by_status(status: int, code: ErrorCode) -> None:
    # ccxt raises ExchangeNotAvailable (a network error) for a bare 400/404: the status knows better.
    exc = with_answer(ccxt.ExchangeNotAvailable("x"), status, {"unexpected": True})
    assert classify(exc, table)[0] is code


def test_a_4xx_ccxt_recognised_keeps_its_class() -> None:
    assert classify(with_answer(ccxt.InsufficientFunds("x"), 400, None), table)[0] is C.INSUFFICIENT_FUNDS
    assert classify(with_answer(ccxt.OrderNotFound("x"), 400, None), table)[0] is C.ORDER_NOT_FOUND


def test_a_2xx_business_reject_unknown_to_the_table_is_refused_by_class() -> None:
    assert classify(with_answer(ccxt.ExchangeError("x"), 200, {"success": False}), table)[0] is C.INVALID_REQUEST
    assert classify(with_answer(ccxt.InsufficientFunds("x"), 200, {"success": False}), table)[0] is C.INSUFFICIENT_FUNDS


@pytest.mark.parametrize(
    ("exc", "code"),
    [(ccxt.RequestTimeout("t"), C.CONNECTION_ERROR), (ccxt.ExchangeNotAvailable("dropped"), C.CONNECTION_ERROR),
     (ccxt.NetworkError("n"), C.CONNECTION_ERROR), (ccxt.OnMaintenance("m"), C.SERVICE_UNAVAILABLE),
     (ccxt.RateLimitExceeded("r"), C.RATE_LIMITED), (ccxt.AuthenticationError("a"), C.AUTHENTICATION_FAILED),
     (ccxt.PermissionDenied("p"), C.AUTHENTICATION_FAILED), (ccxt.BadSymbol("s"), C.INVALID_INSTRUMENT),
     (ccxt.NotSupported("n"), C.NOT_SUPPORTED), (ccxt.InvalidNonce("n"), C.INVALID_REQUEST),
     (ccxt.BadResponse("b"), C.SERVICE_UNAVAILABLE), (ccxt.OperationFailed("o"), C.SERVICE_UNAVAILABLE),
     (MalformedAnswer("m"), C.SERVICE_UNAVAILABLE), (ccxt.InvalidOrder("i"), C.INVALID_REQUEST)],
)  # fmt: skip
def test_without_an_http_answer_the_class_decides(exc: BaseException, code: ErrorCode) -> None:
    assert classify(exc, table)[0] is code


def test_messages_name_exchange_and_action_never_the_url() -> None:
    exc = ccxt.RequestTimeout("binance GET https://api.example/api/v3/order?signature=abc")
    error = translate(exc, table, exchange="Binance", action="lookup")
    assert isinstance(error, ConnectionFailed)
    assert "Binance lookup" in error.message and "signature" not in str(error) and "https" not in str(error)
    assert error.broker_code == "RequestTimeout"


def test_the_answer_text_is_kept_short_when_no_table_knows_it() -> None:
    exc = with_answer(ccxt.ExchangeError("x"), 400, None, text="<html>" + "x" * 500)
    error = translate(exc, table, exchange="Ex", action="quote")
    assert isinstance(error, InvalidRequest) and error.broker_code == "400"
    assert error.broker_message is not None and len(error.broker_message) == 200


def test_after_a_new_order_only_connection_and_service_errors_mean_unknown() -> None:
    assert outcome_unknown(ConnectionFailed("x")) and outcome_unknown(ServiceUnavailable("x"))
    assert not outcome_unknown(RateLimited("x")) and not outcome_unknown(InvalidRequest("x"))


def test_an_http_failure_ccxt_calls_a_plain_exchange_error_is_a_connection_error() -> None:
    # ccxt turns every aiohttp.ClientError it does not know (an answer cut off in its body …) into a bare
    # ExchangeError with no HTTP answer; the request may have been processed, so it is no refusal.
    import aiohttp

    cut = ccxt.ExchangeError("binance POST https://api/order")
    cut.__cause__ = aiohttp.ClientPayloadError("Response payload is not completed")
    error = translate(cut, table, exchange="Ex", action="new order")
    assert isinstance(error, ConnectionFailed) and outcome_unknown(error)
    assert classify(ccxt.ExchangeError("refused by ccxt itself"), table)[0] is C.INVALID_REQUEST
