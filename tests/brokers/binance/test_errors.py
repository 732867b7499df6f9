"""Binance's error table, row by row, and on the bodies Binance documents (tests/brokers/binance/fixtures/errors.json)."""

from __future__ import annotations

import pytest

from brokers.binance.errors import BINANCE_ERRORS, binance_error
from host.trading.errors import ErrorCode

from .fakeserver import fixture

C = ErrorCode


@pytest.mark.parametrize(("key", "code"), sorted(BINANCE_ERRORS.items()))
def test_every_row(key: str, code: ErrorCode) -> None:
    number, _, fragment = key.partition("/")
    message = f"Filter failure: {fragment}" if fragment.isupper() else f"Some text; {fragment} here." if fragment else "whatever"
    found = binance_error({"code": int(number), "msg": message})
    assert found is not None and found.code is code and found.broker_code == number and found.broker_message == message


@pytest.mark.parametrize(
    ("key", "code"),
    [("-1003", C.RATE_LIMITED), ("-1007", C.SERVICE_UNAVAILABLE), ("-1001", C.SERVICE_UNAVAILABLE),
     ("-1013_lot", C.INVALID_QUANTITY), ("-1013_market_lot", C.INVALID_QUANTITY), ("-1013_price", C.INVALID_PRICE),
     ("-1013_notional", C.INVALID_QUANTITY), ("-1013_min_notional", C.INVALID_QUANTITY), ("-1013_percent", C.INVALID_PRICE),
     ("-1013_max_orders", C.DENIED), ("-1015", C.RATE_LIMITED), ("-1021", C.INVALID_REQUEST), ("-1022", C.AUTHENTICATION_FAILED),
     ("-1121", C.INVALID_INSTRUMENT), ("-2010_balance", C.INSUFFICIENT_FUNDS), ("-2010_take", C.INVALID_PRICE),
     ("-2010_duplicate", C.INVALID_REQUEST), ("-2010_closed", C.MARKET_CLOSED), ("-2011", C.ORDER_NOT_FOUND),
     ("-2013", C.ORDER_NOT_FOUND), ("-2015", C.AUTHENTICATION_FAILED)],
)  # fmt: skip
def test_documented_bodies(key: str, code: ErrorCode) -> None:
    body = fixture("errors.json")[key]
    found = binance_error(body)
    assert found is not None and found.code is code and found.broker_message == body["msg"]


def test_notional_is_not_taken_for_min_notional_nor_lot_size_for_market_lot_size() -> None:
    # ccxt reports NOTIONAL as BadRequest and the other filters as InvalidOrder; here both are quantity problems.
    assert binance_error({"code": -1013, "msg": "Filter failure: MIN_NOTIONAL"}).broker_message.endswith("MIN_NOTIONAL")  # type: ignore[union-attr]
    assert binance_error({"code": -1013, "msg": "Filter failure: ICEBERG_PARTS"}).code is C.INVALID_REQUEST  # type: ignore[union-attr]


def test_unknown_codes_and_other_bodies_are_left_to_the_status() -> None:
    assert binance_error({"code": -9999, "msg": "new"}) is None
    assert binance_error({"msg": "no code"}) is None
    assert binance_error("<html>") is None
    assert binance_error([{"code": -2010}]) is None
