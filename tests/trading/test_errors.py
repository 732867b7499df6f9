"""Typed trading errors: one class per code, and a lossless trip through to_dict / error_from_dict."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from host.errors import TradehostError
from host.trading import errors
from host.trading.errors import Denied, ErrorCode, InvalidRequest, RateLimited, TradingError, error_from_dict

CLASSES = list(TradingError.__subclasses__())


def test_every_code_has_exactly_one_class() -> None:
    counts = Counter(cls.code for cls in CLASSES)
    assert set(counts) == set(ErrorCode)
    assert all(count == 1 for count in counts.values()), counts


def test_every_class_is_exported_and_a_tradehost_error() -> None:
    for cls in CLASSES:
        assert cls.__name__ in errors.__all__
        assert issubclass(cls, TradehostError)


texts = st.text(min_size=1, max_size=80)
maybe = st.none() | st.text(max_size=40)


@given(
    st.sampled_from(CLASSES),
    texts,
    maybe,
    maybe,
    maybe,
    st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False),
)
def test_round_trip_keeps_type_message_broker_fields_and_rule(
    cls: type[TradingError], message: str, broker_code: str | None, broker_message: str | None, rule: str | None, retry: float | None
) -> None:
    error = cls(message, broker_code=broker_code, broker_message=broker_message, rule=rule, retry_after=retry)
    back = error_from_dict(error.to_dict())
    assert type(back) is cls
    assert back.code is cls.code
    assert (back.message, back.broker_code, back.broker_message, back.rule, back.retry_after) == (
        message, broker_code, broker_message, rule, retry,
    )
    assert str(back) == str(error)


def test_dict_shape() -> None:
    error = Denied("max_position: too big", rule="max_position")
    assert error.to_dict() == {
        "code": "DENIED",
        "message": "max_position: too big",
        "broker_code": None,
        "broker_message": None,
        "rule": "max_position",
        "retry_after": None,
    }


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (Denied("no"), "DENIED: no"),
        (RateLimited("slow down", broker_code="429"), "RATE_LIMITED: slow down (broker: 429)"),
        (RateLimited("slow down", broker_message="Too Many Requests"), "RATE_LIMITED: slow down (broker: Too Many Requests)"),
        (RateLimited("slow down", broker_code="429", broker_message="Too Many"), "RATE_LIMITED: slow down (broker: 429 Too Many)"),
    ],
)
def test_str(error: TradingError, text: str) -> None:
    assert str(error) == text


def test_unknown_or_missing_code_becomes_invalid_request() -> None:
    assert type(error_from_dict({"code": "NOPE", "message": "x"})) is InvalidRequest
    assert type(error_from_dict({})) is InvalidRequest
    assert error_from_dict({}).message == "error"


def test_empty_message_falls_back_to_the_code() -> None:
    # Not a lossless trip: an empty message comes back as the code.
    assert error_from_dict(Denied("").to_dict()).message == "DENIED"


def test_retry_after_must_be_a_number() -> None:
    assert error_from_dict({"code": "RATE_LIMITED", "message": "m", "retry_after": "5"}).retry_after is None
    assert error_from_dict({"code": "RATE_LIMITED", "message": "m", "retry_after": 5}).retry_after == 5.0
