"""Coinbase's error table, word by word, and on the body shapes Coinbase documents (fixtures/errors.json)."""

from __future__ import annotations

import pytest

from brokers.coinbase.errors import COINBASE_ERRORS, coinbase_error
from host.trading.errors import ErrorCode

from .fakeserver import fixture

C = ErrorCode


@pytest.mark.parametrize(("word", "code"), sorted(COINBASE_ERRORS.items()))
def test_every_word_in_every_field_it_can_come_in(word: str, code: ErrorCode) -> None:
    shapes = [
        {"success": False, "error_response": {"error": word, "message": "m"}},
        {"results": [], "failure_reason": word},
        {"success": False, "errors": [{"edit_failure_reason": word}]},
        {"error": word, "message": "m"},
        {"error": word.lower(), "message": "m"},  # older endpoints write the words in lower case
    ]
    for body in shapes:
        found = coinbase_error(body)
        assert found is not None and found.code is code and found.broker_code.upper() == word


@pytest.mark.parametrize(
    ("key", "code", "word"),
    [("insufficient_fund", C.INSUFFICIENT_FUNDS, "PREVIEW_INSUFFICIENT_FUND"), ("size_precision", C.INVALID_QUANTITY, "INVALID_SIZE_PRECISION"),
     ("post_only", C.INVALID_PRICE, "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY"),
     ("unknown_failure", C.INVALID_QUANTITY, "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL"), ("not_found", C.ORDER_NOT_FOUND, "NOT_FOUND"),
     ("unknown_order", C.ORDER_NOT_FOUND, "unknown"), ("unauthenticated", C.AUTHENTICATION_FAILED, "UNAUTHENTICATED"),
     ("rate_limited", C.RATE_LIMITED, "RESOURCE_EXHAUSTED"), ("invalid_argument", C.INVALID_REQUEST, "INVALID_ARGUMENT"),
     ("internal", C.SERVICE_UNAVAILABLE, "INTERNAL"), ("edit_below_filled", C.INVALID_QUANTITY, "CANNOT_EDIT_TO_BELOW_FILLED_SIZE")],
)  # fmt: skip
def test_documented_bodies(key: str, code: ErrorCode, word: str) -> None:
    found = coinbase_error(fixture("errors.json")[key])
    assert found is not None and found.code is code and found.broker_code == word


def test_the_most_precise_word_wins_and_a_vague_one_is_the_last_resort() -> None:
    vague = {"success": False, "error_response": {"error": "UNKNOWN_FAILURE_REASON", "preview_failure_reason": "UNKNOWN_PREVIEW_FAILURE_REASON"}}
    found = coinbase_error(vague)
    assert found is not None and found.code is C.INVALID_REQUEST
    assert coinbase_error(fixture("errors.json")["insufficient_fund"]).broker_message == "Insufficient balance in source account"  # type: ignore[union-attr]
    cancel = fixture("errors.json")["cancel_unknown"]["results"][0]
    assert coinbase_error(cancel).code is C.ORDER_NOT_FOUND  # type: ignore[union-attr]


def test_a_body_that_says_success_is_never_a_refusal() -> None:
    found = coinbase_error({"success": True, "error_response": {"error": "INSUFFICIENT_FUND"}})
    assert found is not None and found.code is C.SERVICE_UNAVAILABLE  # after a new order: look it up, it may be there


def test_bodies_without_a_known_word() -> None:
    assert coinbase_error({"error": "SOMETHING_NEW"}) is None
    assert coinbase_error({"error": "unknown", "message": "boom"}) is None
    assert coinbase_error("<html>") is None
